"""``{% kept_queue_page %}…{% endkept_queue_page %}``: the fulfilment queue's content (its
title, tabs, open tasks, filter form, table and pager), kept per process under everything
it is rendered from.

Its parts were each kept already (the tasks' section, the filter form, the rows, the
header row, the pager), but finding them ran the page's some hundred template nodes, the
table's template and a look-up per row: 2.5 ms of the queue's 11 ms CPU per view at 10k
requests (bench/bench_cpu.py), for the same markup view after view. The key holds what
each part's own key holds: the rows' values and what they show of the clock
(``QueueTable.row_clock``), the tasks' values, the filter form's key (its options read as
before), the sort, the pager's figures, the query string, the path, the language, time
zone and formats, and the viewer. So the page makes the same statements kept or not, and a
request or task changed, a category renamed or an hour passed makes another key: nothing
is invalidated. The CSRF field of each task's form is the response's own, put in per view.
"""

from django import template
from django.utils.safestring import mark_safe
from django_tables2.rows import BoundRows

from itportal.memo import Memo, values_row_key
from itportal.templatetags.portal_forms import fields_key
from itportal.templatetags.portal_tables import _has_callables, _head_key, _pager_key
from requests_app import selectors
from requests_app.templatetags.queue_tasks import _CSRF_GAP, _csrf_field, section_key

register = template.Library()

# A few pages per viewer, tab, sort and page; 50-100 KB each with 50 open tasks: 16 MB at
# most.
PAGE_MEMO = Memo(512, 16 << 20)


def _rows_key(table) -> tuple | None:
    """The rows' values and what each shows of the clock, in their order (their even and
    odd classes are the same for the same place); None where the table's rows are not kept
    by their values (``{% table_rows %}``), or a row is not plain values."""
    if not (
        getattr(table, "rows_are_values", False)
        and getattr(table, "head_is_static", False)
        and not _has_callables(table.row_attrs)
        and not _has_callables(table.attrs)
    ):
        return None
    bound = table.paginated_rows
    if type(bound) is not BoundRows or any(bound.pinned_data.values()):
        return None
    clock = getattr(table, "row_clock", None)
    rows = []
    # The records, not their BoundRows: making one counts it on the table's counter,
    # which gives the rows rendered after it their even and odd classes.
    for record in bound.data:
        values = values_row_key(record)
        if values is None:
            return None
        rows.append((values, clock(record) if clock is not None else None))
    return tuple(rows)


def page_key(context, csrf: str) -> tuple | None:
    """What the queue's content is rendered from (see above); None where a part is not
    kept by its values."""
    request = context.get("request")
    table = context.get("table")
    filterset = context.get("filter")
    if request is None or table is None or filterset is None:
        return None
    tasks = section_key(context, context.get("task_values") or (), csrf)
    rows = _rows_key(table)
    head = _head_key(context, table)
    pager = _pager_key(context, table) if getattr(table, "page", None) else ()
    if tasks is None or rows is None or head is None or pager is None:
        return None
    user = request.user
    return (
        type(table),
        user.pk,
        selectors.fulfilment_groups(user),
        request.path,
        context.get("current_tab"),
        head,  # the sort, the query string, the language, escaping and localisation
        pager,
        tasks,  # _page_key(): formats, time zone, URLs' prefix and URLconf; the tasks
        fields_key(filterset)[0],
        rows,
    )


class KeptQueuePageNode(template.Node):
    def __init__(self, nodelist):
        self.nodelist = nodelist

    def render(self, context):
        csrf = _csrf_field(context)  # as {% task_section %} (the token is asked for)
        key = page_key(context, csrf)
        parts = None if key is None else PAGE_MEMO.get(key)
        if parts is None:
            if csrf:
                with context.push(csrf_token=_CSRF_GAP):
                    marked = _csrf_field(context)
                    parts = tuple(self.nodelist.render(context).split(marked))
            else:
                parts = (self.nodelist.render(context),)
            if key is not None:
                PAGE_MEMO.put(key, parts)
        return mark_safe(csrf.join(parts))  # the template's output, escaped as it rendered


@register.tag
def kept_queue_page(parser, token):
    """``{% kept_queue_page %}…{% endkept_queue_page %}``: the fulfilment queue's content,
    kept per process under ``page_key``."""
    if len(token.split_contents()) != 1:
        raise template.TemplateSyntaxError("kept_queue_page takes no arguments.")
    nodelist = parser.parse(("endkept_queue_page",))
    parser.delete_first_token()
    return KeptQueuePageNode(nodelist)
