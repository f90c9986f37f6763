"""The request page's timeline in Python: ``{% load request_page %}``.

Its loop over the events rendered each one through a dozen template nodes (two date
filters, three choice labels, the actor's name, the texts' look-ups), about 95 µs an
event and a third of the page's own markup; a request that went through its steps has
ten or more. Here the same markup (tests/test_request_page.py renders the loop it
replaced, kept there, and compares), the dates through one DateFormatter per page.
"""

import datetime

from django import template
from django.conf import settings
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.timezone import get_current_timezone
from django.utils.translation import gettext

from itportal.formatting import DateFormatter

register = template.Library()


@register.simple_tag
def timeline_items(events):
    """The ``<li>`` of each event of ``events`` (a request's timeline, oldest first)."""
    formatter = DateFormatter.of("SHORT_DATETIME_FORMAT")
    local = get_current_timezone() if settings.USE_TZ else None
    system = conditional_escape(gettext("system"))
    approved_step = conditional_escape(gettext("Step approved"))
    items = []
    for event in events:
        moment = event.created_at
        # As the template's date filter gets it (template_localtime).
        if (
            local is not None
            and type(moment) is datetime.datetime
            and moment.utcoffset() is not None
        ):
            moment = moment.astimezone(local)
        if event.kind == "approve" and event.to_state == "awaiting_approval":
            kind = approved_step
        else:
            kind = conditional_escape(event.get_kind_display())
        if event.from_state and event.from_state != event.to_state:
            states = (
                f"({conditional_escape(event.get_from_state_display())} → "
                f"{conditional_escape(event.get_to_state_display())})"
            )
        elif not event.from_state:
            states = f"({conditional_escape(event.get_to_state_display())})"
        else:
            states = ""
        if event.actor:
            actor = event.actor
            who = f"– {conditional_escape(actor.get_full_name() or actor.username)}"
            if event.on_behalf_of:
                name = conditional_escape(event.on_behalf_of.get_full_name())
                who += " " + gettext("on behalf of %(name)s") % {"name": name}
        else:
            who = f"– {system}"
        comment = f'<p class="pre">{conditional_escape(event.comment)}</p>' if event.comment else ""
        items.append(
            "\n    <li>\n"
            f'      <time datetime="{conditional_escape(moment.isoformat())}">'
            f"{conditional_escape(formatter(moment))}</time>\n"
            f"      <strong>{kind}</strong>\n"
            f"      {states}\n"
            f"      {who}\n"
            f"      {comment}\n"
            "    </li>\n    "
        )
    return mark_safe("".join(items))  # every value is escaped above
