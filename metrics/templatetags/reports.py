"""``{% report_table table %}``: ``{% render_table %}`` of django-tables2 for the controlling
reports, the markup kept per process while what it shows stays the same.

A report's figures change only when the roll-up or today's requests change, but a page is
rendered on every view: header, 50 rows of 8–10 cells, the pager. A table that declares
``rows_are_values`` (``metrics.controlling.tables.CaptionedTable``) is rendered once for
a key made of everything its template reads: the rows of the page (``value_key``: the
reprs of their fields), the columns and their headers, the pager's position, the query
string its links keep, the language, the time zone and the script prefix. Changed figures
make a new key; nothing needs invalidating. Other tables render as ``{% render_table %}``.
"""

import itertools

from django import template
from django.db import connection
from django.db.models import QuerySet
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django_tables2 import Table

from itportal.memo import Memo, kept_value_key
from itportal.templatetags.portal_layout import render_kept

register = template.Library()

TABLE_MEMO = Memo(512, 8 << 20)
_RECORD_KEYS = object()  # the render context's rows -> keys (the row kept: its id is the key)


def table_key(context, table) -> tuple | None:
    """The key of a value table's markup, or None if it has to be rendered."""
    if not getattr(table, "rows_are_values", False):
        return None
    rows = table.paginated_rows
    if any(rows.pinned_data.values()) or table.row_attrs != table._meta.row_attrs:
        return None  # pinned rows, or row attributes given to this table only
    if table.has_footer() or type(table).before_render is not Table.before_render:
        return None  # a footer sums every row, not only the page's; a table's own preparation
    # The rows' keys, once per render for rows two tables show (lead times and automation).
    known = context.render_context.setdefault(_RECORD_KEYS, {})
    records = []
    for record in rows.data:
        seen = known.get(id(record))
        if seen is not None and seen[0] is record:
            key = seen[1]
        else:
            key = kept_value_key(record)
            known[id(record)] = (record, key)
        if key is None:
            return None
        records.append(key)
    # The rows' attributes are the Meta's (a function of the record) and their even/odd
    # class, counted on from the table's row counter: where it stands is part of the key.
    start = next(table._counter)
    table._counter = itertools.count(start)
    request = context.get("request")
    page = table.page if getattr(table, "page", None) else None
    paginator = table.paginator if page is not None else None
    pager = None
    if page is not None:
        exact = getattr(paginator, "count_is_exact", None)
        pager = (page.number, paginator.num_pages, paginator.count, exact)
    columns = _columns_key(table)
    return (
        type(table),
        table.prefix,
        table.show_header,
        str(table.empty_text),
        str(table.attrs.as_html()),
        columns,
        pager,
        request.get_full_path() if request is not None else None,
        translation.get_language(),
        timezone.get_current_timezone_name(),
        get_script_prefix(),
        start % 2,
        tuple(records),
    )


# ``_columns_key`` of the tables whose head is their class's: those that declare
# ``head_is_static`` (columns, headers and attributes as their class declares them, see
# itportal/templatetags/portal_tables.py) and the report tables made without columns or
# attributes of their own (``head_is_declared``: metrics.controlling.tables.CaptionedTable),
# per class, shown columns, language and sort: each column's attributes are worked out anew
# on every read, for the anomalies page's two tables a tenth of the page's time, and a fifth
# of a report table's key.
_COLUMNS = Memo(256, 1 << 20)


def _columns_key(table) -> tuple:
    if not (getattr(table, "head_is_static", False) or getattr(table, "head_is_declared", False)):
        return tuple(_column_key(c) for c in table.columns)
    # The shown columns' names: a view may exclude or hide some (usage by service).
    shown = tuple(table.columns)
    key = (
        type(table),
        tuple(column.name for column in shown),
        translation.get_language(),
        table.orderable,
        tuple(map(str, table.order_by or ())),
    )
    return _COLUMNS.kept(key, lambda: tuple(_column_key(c) for c in shown))


def _column_key(column) -> tuple:
    # ``attrs`` computes every cell's attributes anew on each read: read once.
    attrs = column.attrs
    return (
        column.name,
        type(column.column),
        str(column.header),
        column.orderable,
        str(attrs["th"].as_html()),
        str(attrs["td"].as_html()),
    )


def _render(context, table) -> str:
    """What django-tables2's ``RenderTableNode`` does for a table."""
    request = context.get("request")
    try:
        table.context = context
        table.before_render(request)
        return get_template(table.template_name).render(context={"table": table}, request=request)
    finally:
        del table.context


@register.simple_tag(takes_context=True)
def report_table(context, table):
    key = table_key(context, table)
    if key is None:
        return _render(context, table)
    html = TABLE_MEMO.get(key)
    if html is None:
        html = _render(context, table)
        TABLE_MEMO.put(key, html)
    return mark_safe(html)  # the template's output, escaped as it rendered


# --- the figures' markup of a whole page ---------------------------------------------------

# A page's charts and tables (``{% keep_report key %}…{% endkeep_report %}``) per key
# (``metrics.controlling.views.ControllingTableView.body_key``); a view that finds its key
# here shows the markup without building a table or chart. A costs page's markup weighs
# 30-60 kB: a few dozen filters and periods of each page fit.
REPORT_BODIES = Memo(128, 8 << 20)


class KeepReportNode(template.Node):
    def __init__(self, nodelist, key):
        self.nodelist = nodelist
        self.key = key

    def render(self, context):
        key = self.key.resolve(context, ignore_failures=True)
        html = self.nodelist.render(context)
        if key is not None:
            REPORT_BODIES.put(key, str(html))
        return html


@register.tag
def keep_report(parser, token):
    """``{% keep_report key %}…{% endkeep_report %}``: renders its content and keeps the
    markup under ``key`` (None: not kept) for the view to find (``REPORT_BODIES``)."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError("keep_report takes one argument: the key")
    nodelist = parser.parse(("endkeep_report",))
    parser.delete_first_token()
    return KeepReportNode(nodelist, parser.compile_filter(bits[1]))


# --- the filter form -------------------------------------------------------------------------

FILTERS_MEMO = Memo(256, 4 << 20)


# The fingerprint's SQL per filter set class: compiling the querysets of three or four
# choice fields was half of the fingerprint's CPU (0.4 ms a view) and gives the same SQL every
# time, as a report filter set's choices are querysets declared on its class.
_FINGERPRINT_SQL: dict[type, tuple[str, list, tuple[str, ...]] | None] = {}


def _fingerprint_sql(filterset) -> tuple[str, list, tuple[str, ...]] | None:
    """The fingerprint's SQL, its parameters and the fields it digests, or None if the
    form has no model choice field."""
    kind = type(filterset)
    if kind in _FINGERPRINT_SQL:
        return _FINGERPRINT_SQL[kind]
    parts, params = [], []
    names = []
    for name, field in filterset.form.fields.items():
        queryset = getattr(field, "queryset", None)
        if queryset is None:
            continue
        sql, query_params = queryset.query.get_compiler(using=queryset.db).as_sql()
        parts.append(
            f"(SELECT md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text), '')) "  # noqa: S608
            f"FROM ({sql}) AS x)"
        )
        params += query_params
        names.append(name)
    result = (f"SELECT {', '.join(parts)}", params, tuple(names)) if parts else None
    # Kept only where every choice field's queryset is the class's (a queryset, not a
    # function of the request), so every instance compiles to the same SQL.
    declared = kind.base_filters
    if all(
        isinstance(declared.get(name) and declared[name].extra.get("queryset"), QuerySet)
        for name in names
    ):
        _FINGERPRINT_SQL[kind] = result
    return result


def _choices_fingerprint(filterset) -> tuple:
    """One query: per model choice field, a digest of every column of every row its
    queryset selects, in a fixed order. An option's label is its object's ``__str__``,
    which for the report filters (departments, cost centres, categories, services) reads
    the row's own columns, so equal digests mean equal options."""
    found = _fingerprint_sql(filterset)
    if found is None:
        return ()
    sql, params, names = found
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(zip(names, cursor.fetchone(), strict=True))


def filters_key(filterset) -> tuple:
    # Once per filter set (a response's): a page's own key may hold it too (reports_pages).
    known = filterset.__dict__.get("_filters_key")
    if known is not None and known[0] == translation.get_language():
        return known[1]
    data = filterset.data if filterset.is_bound else None
    key = (
        type(filterset),
        None if data is None else tuple(sorted((k, tuple(v)) for k, v in data.lists())),
        translation.get_language(),
        timezone.get_current_timezone_name(),
        timezone.localdate(),
        _choices_fingerprint(filterset),
    )
    filterset._filters_key = (key[2], key)
    return key


@register.simple_tag
def report_filters(filterset):
    """The fields of a report's filter form (``controlling/filters.html``), kept per
    process for the form's data and options: the options of the model choice fields are
    read as a digest (one small query) instead of as model instances rendered one by one,
    and a changed department, cost centre, category or service changes the digest."""
    html = FILTERS_MEMO.kept(
        filters_key(filterset),
        lambda: get_template("controlling/filters.html").render({"filter": filterset}),
    )
    return mark_safe(html)  # the template's output, escaped as it rendered


# --- the controlling pages' navigation -------------------------------------------------------


@register.simple_tag(takes_context=True)
def controlling_nav(context):
    """The navigation between the controlling pages (templates/controlling/nav.html), kept
    per process for the current page and whether the anomalies page is on (render_kept:
    also per language, script prefix and URLconf): nine links resolved, translated and
    compared with the current page were a tenth of a controlling page's rendering."""
    from assist.selectors import enabled  # metrics reads from every app; assist says

    match = context["request"].resolver_match
    values = {
        "current": match.url_name if match is not None else None,
        "anomalies_on": bool(enabled("anomalies")),
    }
    return render_kept(context, "controlling/nav.html", values, {})
