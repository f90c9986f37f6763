import datetime
from decimal import Decimal
from urllib.parse import quote

from django import template
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.html import conditional_escape, escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from catalogue import markdown
from itportal.formatting import format_money
from itportal.templatetags.portal_layout import render_kept

register = template.Library()


@register.filter
def render_markdown(text):
    return markdown.render(text)


@register.filter
def money(value):
    """An amount in euros as the active language writes it: "1.149,00 €", "€1,149.00"."""
    return format_money(value)


@register.filter
def answer_display(value, field_type=""):
    """A stored form answer as text: people by name, lists joined, booleans as words,
    dates and numbers in the active language's format (``field_type`` from the snapshot)."""
    from django.utils.translation import gettext as _

    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if field_type == "date" and isinstance(value, str):
        try:
            return date_format(datetime.date.fromisoformat(value), "SHORT_DATE_FORMAT")
        except ValueError:
            return value
    if field_type == "number" and isinstance(value, str):
        try:
            return number_format(Decimal(value), force_grouping=True)
        except (ArithmeticError, ValueError):
            return value
    if isinstance(value, dict):
        return f"{value.get('name', '')} ({value.get('uid', '')})"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.simple_tag
def item_price(item):
    """An item's price in words ("12,00 € once, 3,00 € per month", "free of charge").

    In Python rather than a template: the catalogue shows it on every card, and a template
    include per card cost more than the rest of the card.
    """
    once, monthly = item.price_once, item.price_monthly
    if not (once or monthly):
        return conditional_escape(gettext("free of charge"))
    parts = []
    if once:
        parts.append(gettext("%(price)s once") % {"price": escape(format_money(once))})
    if monthly:
        parts.append(gettext("%(price)s per month") % {"price": escape(format_money(monthly))})
    return mark_safe(", ".join(parts))  # the amounts are escaped above


_SLUG = "--slug--"


@register.simple_tag
def item_cards(items, heading="h3"):
    """The catalogue's cards (``<li class="card">``) of ``items``, rendered in one go: one
    URL reversed for all cards, no template include per card."""
    url = reverse("catalogue:item", args=[_SLUG])
    heading = escape(heading)
    cards = []
    for item in items:
        summary = f"<p>{escape(item.summary)}</p>" if item.summary else ""
        href = escape(url.replace(_SLUG, quote(item.slug)))
        cards.append(
            f'<li class="card">\n'
            f'  <{heading} class="card-title"><a href="{href}">'
            f"{escape(item.name)}</a></{heading}>\n"
            f"  {summary}\n"
            f'  <p class="price">{item_price(item)}\n</p>\n'
            f"</li>\n"
        )
    return mark_safe("".join(cards))  # every value is escaped above


@register.simple_tag(takes_context=True)
def catalogue_sections(context, sections):
    """The catalogue page's categories with their cards (templates/catalogue/sections.html)
    for ``sections`` (``catalogue.selectors.catalogue_sections``: plain values), the markup
    kept under them and the language (``render_kept``): the people who may order the same
    items see the same markup, and rendering it was a third of the page's CPU."""
    return render_kept(context, "catalogue/sections.html", {"sections": sections}, {})
