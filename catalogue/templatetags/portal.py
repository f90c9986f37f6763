import datetime
from decimal import Decimal

from django import template
from django.utils.formats import date_format, number_format

from catalogue import markdown
from itportal.formatting import format_money

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
