"""The request page's timeline, progress line and approval steps in Python, and its rating
form kept per process: ``{% load request_page %}``.

The timeline's loop over the events rendered each one through a dozen template nodes (two date
filters, three choice labels, the actor's name, the texts' look-ups), about 95 µs an
event and a third of the page's own markup; a request that went through its steps has
ten or more. Here the same markup (tests/test_request_page.py renders the loop it
replaced, kept there, and compares), the dates through one DateFormatter per page. The
progress line and the approval steps likewise (their loops are kept in the same test).
"""

import datetime

from django import template
from django.conf import settings
from django.dispatch import receiver
from django.template.loader import get_template
from django.urls import get_script_prefix, get_urlconf
from django.utils.autoreload import file_changed
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.timezone import get_current_timezone
from django.utils.translation import get_language, gettext

from itportal.formatting import DateFormatter
from itportal.memo import Memo
from requests_app.templatetags.queue_tasks import _csrf_field

register = template.Library()

# The rating form's fields as offered (unbound) per language and the rating they start
# from: a few hundred short entries at most.
RATING_MEMO = Memo(256, 1 << 20)
# The request page's own markup but its CSRF fields (the texts between them), per request
# and viewer as shown: about 10 kB with its key, the pages people look at again.
CONTENT_MEMO = Memo(512, 8 << 20)
# Stands in for the CSRF token while the markup is rendered to be kept: no value of a
# request holds it (texts are escaped, and posted ones refuse NUL) and escaping keeps it.
_CSRF_GAP = "\x00csrf\x00"


def _localtime(moment, local):
    """``moment`` as the template's date filter gets it (template_localtime)."""
    if local is not None and type(moment) is datetime.datetime and moment.utcoffset() is not None:
        return moment.astimezone(local)
    return moment


@register.simple_tag
def timeline_items(events):
    """The ``<li>`` of each event of ``events`` (a request's timeline, oldest first)."""
    formatter = DateFormatter.of("SHORT_DATETIME_FORMAT")
    local = get_current_timezone() if settings.USE_TZ else None
    system = conditional_escape(gettext("system"))
    approved_step = conditional_escape(gettext("Step approved"))
    items = []
    for event in events:
        moment = _localtime(event.created_at, local)
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


@register.simple_tag
def progress_items(steps):
    """The ``<li>`` of each step of the progress line (``progress.steps``): the markup of
    the template loop it replaced, which went through a dozen nodes a step."""
    done = " ({})".format(conditional_escape(gettext("done")))
    todo = " ({})".format(conditional_escape(gettext("still to come")))
    items = []
    for step in steps:
        status = step.status
        current = ' aria-current="step"' if status == "current" else ""
        if status == "done":
            hidden = f'<span class="visually-hidden">{done}</span>'
        elif status == "todo":
            hidden = f'<span class="visually-hidden">{todo}</span>'
        else:
            hidden = ""
        items.append(
            f'<li class="is-{conditional_escape(status)}"{current}>'
            f"{conditional_escape(step.label)}{hidden}</li>"
        )
    return mark_safe("".join(items))  # every value is escaped above


@register.simple_tag
def approval_rows(approvals):
    """The ``<tr>`` of each approval step of the request page's table, first step first:
    the markup of the template loop it replaced (about 20 nodes a step, two of them
    ``blocktranslate`` with a date filter), the dates through one DateFormatter."""
    if not approvals:
        return ""
    formatter = DateFormatter.of("SHORT_DATETIME_FORMAT")
    local = get_current_timezone() if settings.USE_TZ else None
    step = conditional_escape(gettext("Step"))
    approver = conditional_escape(gettext("Approver"))
    status = conditional_escape(gettext("Status"))
    decision = conditional_escape(gettext("Decision"))
    rows = []
    for approval in approvals:
        label = approval.label or approval.get_approver_kind_display()
        note = approval.routing_note
        note = f"<br><small>{conditional_escape(note)}</small>" if note else ""
        decided = ""
        decider = approval.decided_by
        if decider:
            when = approval.decided_at
            values = {
                "by": conditional_escape(decider.get_full_name()),
                "when": conditional_escape(
                    "" if when is None else formatter(_localtime(when, local))
                ),
            }
            principal = approval.on_behalf_of
            if principal:
                values["for"] = conditional_escape(principal.get_full_name())
                decided = gettext("decided by %(by)s on behalf of %(for)s on %(when)s") % values
            else:
                decided = gettext("decided by %(by)s on %(when)s") % values
            if approval.comment:
                decided += f": „{conditional_escape(approval.comment)}“"
        rows.append(
            "\n      <tr>\n"
            f'        <td data-label="{step}">{conditional_escape(approval.position)}. '
            f"{conditional_escape(label)}</td>\n"
            f'        <td data-label="{approver}">'
            f"{conditional_escape(approval.approver_display)}{note}</td>\n"
            f'        <td data-label="{status}">'
            f"{conditional_escape(approval.get_status_display())}</td>\n"
            f'        <td data-label="{decision}">{decided}</td>\n'
            "      </tr>"
        )
    return mark_safe("".join(rows))  # every value is escaped above


def _rating_fields_key(form) -> tuple:
    return (
        type(form),
        form.prefix,
        form.auto_id,
        tuple(sorted((name, repr(value)) for name, value in form.initial.items())),
        get_language(),
    )


@register.simple_tag
def rating_fields(form):
    """The rating form's errors and fields (``requests/rating_fields.html``): an unbound
    form (as offered, from the rating given so far) kept per process for its initial
    values and language (its labels, choices and help are the class's, in that language):
    rendering its radio buttons, text area, labels and help through the field template
    was about a tenth of a fulfilled request's page. A bound one (with errors) as is."""
    if form.is_bound:
        return mark_safe(get_template("requests/rating_fields.html").render({"form": form}))
    html = RATING_MEMO.kept(
        _rating_fields_key(form),
        lambda: get_template("requests/rating_fields.html").render({"form": form}),
    )
    return mark_safe(html)  # the template's output, escaped as it rendered


@register.simple_tag(takes_context=True)
def request_content(context, key):
    """The request page's own markup (``templates/requests/detail_content.html``), kept
    (``CONTENT_MEMO``) under ``key`` (``views.render_detail``: the rows shown as read and
    what the viewer may do) and what else it depends on (language, time zone, URL prefix),
    the CSRF token put in per response, never kept. On a miss, ``content_values()`` adds
    the values only the markup needs (the timeline's events, the progress line).

    Rendering its fifty-odd nodes, two includes and the timeline's events was half of the
    page's own CPU, for the same markup on every view of an unchanged request: any change
    (a comment, a decision, a new name) changes a row and so the key."""
    csrf = _csrf_field(context)
    if key is not None:
        key = (key, get_language(), str(get_current_timezone()), get_script_prefix(),
               get_urlconf(), context.autoescape, context.use_l10n, bool(csrf))  # fmt: skip
        try:
            parts = CONTENT_MEMO.get(key)
        except TypeError:  # a value that cannot be a key: rendered, not kept
            key = parts = None
    else:
        parts = None
    if parts is None:
        with context.push(context.get("content_values")()):
            if csrf:
                with context.push(csrf_token=_CSRF_GAP):
                    marked = _csrf_field(context)
                    parts = tuple(_render_content(context).split(marked))
            else:  # {% csrf_token %} renders nothing
                parts = (_render_content(context),)
        if key is not None:
            CONTENT_MEMO.put(key, parts)
    return mark_safe(csrf.join(parts))  # the template's output, escaped as it rendered


def _render_content(context) -> str:
    return get_template("requests/detail_content.html").template.render(context)


@receiver(file_changed, dispatch_uid="request_page_template_changed")
def _template_changed(sender, file_path, **kwargs):
    """runserver re-reads a changed template without a restart: so does the kept page."""
    if file_path.suffix == ".html":
        CONTENT_MEMO.clear()
