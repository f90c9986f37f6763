"""``{% task_rows tasks %}``: the rows of the open tasks above the fulfilment queue, as the
template loop rendered them (tests/test_queue_tasks.py compares the two).

Up to 50 tasks a page, each a form: the loop ran about forty template nodes per task (two
URLs reversed, translated labels, the CSRF field, the date filter), a larger part of the
queue's CPU than its own table once there are that many open tasks. Here the texts and the
URLs' parts are looked up once per page, and each row's markup is kept per process for the
task's values (``ROW_MEMO``).
"""

import datetime
import html
import operator

from django import template
from django.conf import settings
from django.template.base import render_value_in_context
from django.template.defaultfilters import date as date_filter
from django.template.loader import get_template
from django.urls import get_script_prefix, get_urlconf
from django.utils import timezone, translation
from django.utils.formats import get_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from itportal.memo import Memo, weight
from itportal.reversing import number_reverser

register = template.Library()


# Each task's row but the CSRF field (the page's own), as the two texts around it, by
# what the row depends on besides the task (``_page_key``) and the task's values: the open
# tasks are the same on view after view, and with 50 of them escaping and formatting their
# 500 values was about 1 ms of the queue's CPU at 1M requests (8.5 -> 7.4 ms per view,
# bench/bench_cpu.py). A task done or changed has other values, so nothing is invalidated.
# A few thousand rows, 4 MB at most.
ROW_MEMO = Memo(4096, 4 << 20)

# The task's values a row shows, in one C call.
_SHOWN = operator.itemgetter(
    "id", "kind", "reason", "request_id", "created_at", "item_name", "person_name",
    "personnel_number", "department_code", "fulfilment_group_name",
)  # fmt: skip
# Values the rows' key holds as they are: equal values of these types render alike (a
# moment converted to the local zone; a safe text or a bool would not, so such a row is
# not kept).
_KEY_TYPES = frozenset({str, int, type(None), datetime.datetime, datetime.date})


@register.simple_tag(takes_context=True)
def task_rows(context, tasks):
    """The ``<tr>`` of each task (dicts of ``selectors.TASK_ROW_COLUMNS`` and
    ``person_name``), the values escaped and localised as ``{{ }}`` does; each row's markup
    kept in ``ROW_MEMO``."""
    csrf = _csrf_field(context)
    page = _page_key(context)
    render = None  # made for the first row not kept
    rows = []
    for task in tasks:
        values = _SHOWN(task)
        key = (page, *values) if _KEY_TYPES.issuperset(map(type, values)) else None
        parts = None if key is None else ROW_MEMO.get(key)
        if parts is None:
            if render is None:
                render = _renderer(context)
            parts = render(task)
            if key is not None:
                ROW_MEMO.put(key, parts, weight(values) + weight(parts))
        rows.append(f"{parts[0]}{csrf}{parts[1]}")
    return mark_safe("".join(rows))


def _page_key(context) -> tuple:
    """What a task's row depends on besides the task: the language (texts, date and number
    formats), the escaping, localisation and time zone, and the URLs' prefix and URLconf."""
    return (
        translation.get_language(),
        get_format("SHORT_DATE_FORMAT"),
        settings.USE_THOUSAND_SEPARATOR,
        context.autoescape,
        context.use_l10n,
        settings.USE_TZ if context.use_tz is None else context.use_tz,
        timezone.get_current_timezone_name(),
        get_script_prefix(),
        get_urlconf() or settings.ROOT_URLCONF,
    )


def _renderer(context):
    """task -> the texts of its row before and after the CSRF field."""
    autoescape = context.autoescape
    grouped = settings.USE_THOUSAND_SEPARATOR

    def text(value):
        # What render_value_in_context() makes of a plain text and, without thousands
        # separators, of an integer, without its calls per value (a tenth of the page).
        kind = type(value)
        if kind is str:
            return html.escape(value) if autoescape else value
        if kind is int and not grouped:
            return str(value)
        return render_value_in_context(value, context)

    convert = settings.USE_TZ if context.use_tz is None else context.use_tz
    zone = timezone.get_current_timezone()
    date_key = _date_key()

    def opened(moment):
        # template_localtime(), then the date filter's text, kept per local day.
        if convert and isinstance(moment, datetime.datetime) and timezone.is_aware(moment):
            moment = moment.astimezone(zone)
        if date_key is None:
            return text(date_filter(moment, "SHORT_DATE_FORMAT"))
        key = (*date_key, moment.date() if isinstance(moment, datetime.datetime) else moment)
        shown = _DAYS.get(key)
        if shown is None:
            if len(_DAYS) >= 4096:
                _DAYS.clear()
            shown = _DAYS[key] = text(date_filter(moment, "SHORT_DATE_FORMAT"))
        return shown

    detail = number_reverser("requests:detail", "pk")
    task_done = number_reverser("requests:task_done", "pk")
    collect = gettext("Collect %(item)s")
    remove = gettext("Remove %(item)s by hand")
    request_number = gettext("Request #%(number)s")
    note = text(gettext("Note (optional)"))
    done = text(gettext("Mark done"))

    def render(task) -> tuple[str, str]:
        what = (collect if task["kind"] == "collect" else remove) % {
            "item": text(task["item_name"])
        }
        if task["reason"]:
            what = f"{what}<br><small>{text(task['reason'])}</small>"
        task_id = text(task["id"])
        request_id = task["request_id"]
        link = text(detail(request_id))
        action = text(task_done(task["id"]))
        before = (
            "\n      <tr>"
            f"\n        <td>{what}</td>"
            f"\n        <td>{text(task['person_name'])} ({text(task['personnel_number'])}),"
            f" {text(task['department_code'])}</td>"
            f'\n        <td><a href="{link}">{request_number % {"number": text(request_id)}}'
            f"</a><br><small>{text(task['fulfilment_group_name'])}</small></td>"
            f"\n        <td>{opened(task['created_at'])}</td>"
            "\n        <td>"
            f'\n          <form method="post" action="{action}" class="inline-form">'
        )
        after = (
            f'\n            <label for="task-note-{task_id}">{note}</label>'
            f'\n            <input type="text" name="note" id="task-note-{task_id}"'
            ' maxlength="500">'
            f'\n            <button type="submit" class="button">{done}</button>'
            "\n          </form>"
            "\n        </td>"
            "\n      </tr>"
        )
        return before, after

    return render


# The date texts of the days tasks were opened on, by language, format and day.
_DAYS: dict[tuple, str] = {}
# Format characters of the date alone (``django.utils.dateformat``): with only these, the
# text of a moment is the text of its day.
_DAY_CHARACTERS = frozenset("dDjlLNStwWyYzFmMnbEo")


def _date_key() -> tuple | None:
    """What a day's text depends on besides the day; None where the format shows more."""
    pattern = get_format("SHORT_DATE_FORMAT")
    if "\\" in pattern or any(c.isalpha() and c not in _DAY_CHARACTERS for c in pattern):
        return None
    return (translation.get_language(), pattern)


def _csrf_field(context) -> str:
    """``{% csrf_token %}``'s output: the same token in every form of the page."""
    token = context.get("csrf_token")
    if not token or token == "NOTPROVIDED":  # noqa: S105 (Django's marker, no secret)
        return ""
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)


# The whole section of open tasks (templates/requests/queue_tasks.html) but the CSRF
# fields, as the texts between them, by what it depends on besides the tasks
# (``_page_key``) and the tasks' values as read (``selectors.open_task_values``): the open
# tasks are the same on view after view, and making each task's dict and name and
# looking up each row's markup (above) was an eighth of the queue's CPU at 1M requests
# with 50 tasks shown. Kept for a few lists of tasks (groups, languages), 4 MB at most.
SECTION_MEMO = Memo(256, 4 << 20)
# Stands in for the CSRF token while the section is rendered to be kept: no value of a
# task holds it and escaping leaves it as it is.
_CSRF_GAP = "\x00csrf\x00"


@register.simple_tag(takes_context=True)
def task_section(context, rows):
    """The open tasks above the queue (``templates/requests/queue_tasks.html``) from
    ``rows`` (``selectors.open_task_values``, one more than it shows, which then says that
    the oldest are shown), kept per process (``SECTION_MEMO``)."""
    csrf = _csrf_field(context)
    key = section_key(context, rows, csrf)
    parts = None if key is None else SECTION_MEMO.get(key)
    if parts is None:
        if csrf:
            with context.push(csrf_token=_CSRF_GAP):
                marked = _csrf_field(context)
                parts = tuple(_render_section(context, rows).split(marked))
        else:  # {% csrf_token %} renders nothing
            parts = (_render_section(context, rows),)
        if key is not None:
            SECTION_MEMO.put(key, parts)
    return mark_safe(csrf.join(parts))  # the template's output, escaped as it rendered


def section_key(context, rows, csrf: str) -> tuple | None:
    """What the section of ``rows`` renders from: the page's key (``_page_key``), whether
    there is a CSRF field, and the tasks' values; None where a value is not plain."""
    # The person's columns come as a list: as a tuple, to be part of the key.
    values = tuple((*row[:-2], tuple(row[-2] or ()), row[-1]) for row in rows)
    plain = all(
        _KEY_TYPES.issuperset(map(type, row[:-2]))
        and _KEY_TYPES.issuperset(map(type, row[-2]))
        and type(row[-1]) in _KEY_TYPES
        for row in values
    )
    return (_page_key(context), bool(csrf), values) if plain else None


def _render_section(context, rows) -> str:
    from requests_app.selectors import task_row_dicts
    from requests_app.tables import person_name
    from requests_app.views import TASKS_SHOWN

    tasks = task_row_dicts(rows)
    for task in tasks:
        task["person_name"] = person_name(task, "person")
    with context.push(tasks=tasks[:TASKS_SHOWN], more_tasks=len(tasks) > TASKS_SHOWN):
        return get_template("requests/queue_tasks.html").template.render(context)
