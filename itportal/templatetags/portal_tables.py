"""The body rows of a django-tables2 table, rendered in Python.

The row block of ``templates/tables/table.html`` ran about a dozen template nodes per
cell — the column's header for ``data-label``, its ``td`` attributes (recomputed from the
table's and column's attrs for every cell), the localisation branches — so a 25-row list
spent more time in that loop than in everything else on the page (bench/bench_pages.py).
Here the per-column parts are computed once per table and each cell costs its value.
The output is the same markup; tests/test_tables.py compares it with the template's.

A cell's value of a model row is looked up by ``_Cell`` rather than django-tables2's
``BoundRow.get_cell``, which per cell made an accessor, walked its path twice (trying a
dictionary lookup first, an exception per step on a model), looked up the model field and
matched the render method's arguments: about half of a list's rows. ``_Cell`` does the
same steps with what does not change between rows worked out once. Rows that are dataclass
instances (the controlling reports' rows, 400 cells a page) are attribute look-ups along
the path; rows read as values (dicts, flat keys) are one key look-up per cell. Every case
it does not cover (other rows, dictionaries or callables on the path, nested keys, lookups
that fail, many-to-many columns) goes to ``get_cell``.
"""

import dataclasses

from django import template
from django.db.models import Model
from django.template.base import render_value_in_context
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.formats import localize
from django.utils.html import conditional_escape, escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django_tables2 import Column, ManyToManyColumn
from django_tables2.rows import BoundRow
from django_tables2.templatetags.django_tables2 import table_page_range
from django_tables2.utils import Accessor, signature

from itportal.memo import Memo, value_key, values_row_key, weight

register = template.Library()

_ARGUMENTS = ("value", "record", "column", "bound_column", "bound_row", "table")
_MISSING = object()
_PLAIN: dict[type, bool] = {}


def _is_plain(value) -> bool:
    """A dataclass instance that is no mapping or sequence: django-tables2's accessor finds
    its attributes by ``getattr`` after a failed item look-up."""
    kind = type(value)
    plain = _PLAIN.get(kind)
    if plain is None:
        plain = _PLAIN[kind] = dataclasses.is_dataclass(kind) and not hasattr(kind, "__getitem__")
    return plain


class _Cell:
    """One column's cells, as ``BoundRow.get_cell`` computes them, the per-column parts
    worked out once (``_get_and_render_with`` and ``_call_render`` of django-tables2)."""

    def __init__(self, bound_column):
        column = bound_column.column
        self.name = bound_column.name
        self.bound_column = bound_column
        self.column = column
        accessor = Accessor(bound_column.accessor)
        self.accessor = accessor
        path, _, self.remainder = accessor.rpartition(accessor.SEPARATOR)
        self.path = Accessor(path).bits
        self.bits = accessor.bits
        self.render = bound_column.render
        self.args, self.keywords = signature(self.render)
        # call_with_appropriate() calls nothing if the method wants an argument it lacks.
        self.uncallable = self.keywords is None and any(a not in _ARGUMENTS for a in self.args)
        # Column.render(value) returns the value.
        self.identity = getattr(self.render, "__func__", None) is Column.render
        self.fast = (
            bool(accessor)
            and not isinstance(column, ManyToManyColumn)
            and not accessor.callable_args
            and not accessor.callable_kwargs
        )
        self.fields = {}  # the model field at the end of the path, per record class

    def content(self, row):
        record = row.record
        if not self.fast:
            return row.get_cell(self.name)
        if isinstance(record, dict):
            return self._dict_content(row, record)
        if not isinstance(record, Model):
            return self._plain_content(row, record)
        penultimate = record
        for bit in self.path:
            penultimate = getattr(penultimate, bit, _MISSING)
            if penultimate is None:
                break
            if not isinstance(penultimate, Model):  # a dict, a callable, a failed lookup
                return row.get_cell(self.name)
        value = None
        if penultimate is not None:
            record_class = type(record)
            field = self.fields.get(record_class, _MISSING)
            if field is _MISSING:
                field = self.fields[record_class] = self.accessor.get_field(record)
            display = getattr(penultimate, f"get_{self.remainder}_display", None)
            if getattr(field, "choices", ()) and display:
                value = display()
            else:
                value = getattr(penultimate, self.remainder, _MISSING)
                if value is _MISSING or callable(value):
                    return row.get_cell(self.name)
        return self._rendered(row, record, value)

    def _dict_content(self, row, record):
        # Rows read as values (one dict per row, flat keys): the library's accessor finds
        # a key without separator by the item look-up it tries first.
        if len(self.bits) != 1:
            return row.get_cell(self.name)
        value = record.get(self.bits[0], _MISSING)
        if value is _MISSING or callable(value):
            return row.get_cell(self.name)
        return self._rendered(row, record, value)

    def _plain_content(self, row, record):
        value = record
        for bit in self.bits:
            if not _is_plain(value):
                return row.get_cell(self.name)
            try:
                value = getattr(value, bit, _MISSING)
            except Exception:  # a property that fails: the library's way
                return row.get_cell(self.name)
            if value is _MISSING or callable(value):
                return row.get_cell(self.name)
        return self._rendered(row, record, value)

    def _rendered(self, row, record, value):
        if value in self.column.empty_values:
            return self.bound_column.default
        if self.identity and not self.bound_column.link:
            return value
        arguments = {
            "value": value,
            "record": record,
            "column": self.column,
            "bound_column": self.bound_column,
            "bound_row": row,
            "table": row.table,
        }
        if self.uncallable:
            content = None
        elif self.keywords:
            content = self.render(**arguments)
        else:
            content = self.render(**{name: arguments[name] for name in self.args})
        link = self.bound_column.link
        return link(content, **arguments) if link else content


def _has_callables(attrs) -> bool:
    return any(
        callable(value) or (isinstance(value, dict) and _has_callables(value))
        for value in attrs.values()
    )


def _cell_html(context, column, cell) -> str:
    if column.localize is None:
        return render_value_in_context(cell, context)
    if column.localize:
        return conditional_escape(localize(cell, use_l10n=True))
    return conditional_escape(localize(cell, use_l10n=False))


# Rendered rows of value tables (see ``table_rows``): a few thousand rows, 8 MB at most.
ROW_MEMO = Memo(8192, 8 << 20)


def _shape(table, columns) -> tuple:
    """What the rows' markup takes from the table besides its rows: the columns' escaped
    headers, their cells' attributes (None where an attribute is a function of the row)
    and, for a value table (``rows_are_values``), the columns' part of its rows' memo key
    (name, kind, header, cell attributes; None for other tables)."""
    # Attributes that call a function with the record are per row; all others per table.
    per_row = _has_callables(table.attrs) or any(
        _has_callables(column.column.attrs) for column in columns
    )
    labels = [conditional_escape(column.header) for column in columns]
    static_td = None if per_row else [column.attrs["td"].as_html() for column in columns]
    memo = None
    if static_td is not None and getattr(table, "rows_are_values", False):
        memo = tuple(
            (c.name, type(c.column), str(c.header), str(td))
            for c, td in zip(columns, static_td, strict=True)
        )
    return labels, static_td, memo


# ``_shape`` of the tables that declare ``head_is_static`` (columns, headers and attributes
# as their class declares them), per class and language: working it out from the bound
# columns was a third of a 25-row page's rows (0.3 ms) when every row was kept.
_SHAPES: dict[tuple[type, str | None], tuple] = {}
_SHAPES_MAX = 256


def _table_shape(table, columns) -> tuple:
    if not getattr(table, "head_is_static", False):
        return _shape(table, columns)
    key = (type(table), translation.get_language())
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        shape = _SHAPES[key] = _shape(table, columns)
    return shape


def _memo_key(context, table, columns_key) -> tuple:
    """What a value table's row markup depends on besides the record: the table class, its
    columns (``_shape``), the language, time zone, script prefix and the context's escaping
    and localisation."""
    return (
        type(table),
        columns_key,
        translation.get_language(),
        timezone.get_current_timezone_name(),
        get_script_prefix(),
        context.autoescape,
        context.use_l10n,
    )


@register.simple_tag(takes_context=True)
def table_rows(context, table):
    """The body rows. A table that declares ``rows_are_values`` (its rows are immutable
    dataclass values or dicts of values, and every cell a function of the row, the language
    and the time zone: the controlling reports, "my requests") has each row's markup kept in
    ``ROW_MEMO``, keyed by the row's fields and what else the markup depends on, so a row
    rendered once costs a look-up. Where cells also depend on the clock (the queue's "3 hours
    ago", "overdue"), the table's ``row_clock(record)`` says what they show of it for the
    row, and that is part of the key: the row is rendered anew when it changes."""
    columns = list(table.columns)
    labels, static_td, columns_key = _table_shape(table, columns)
    plans = None  # each column's _Cell, made for the first row not kept
    memo = None if columns_key is None else _memo_key(context, table, columns_key)
    clock = getattr(table, "row_clock", None) if memo is not None else None
    # Rows' attributes without callables are the same for every even and every odd row.
    by_parity = None if _has_callables(table.row_attrs) else {}
    rows = []
    for row in table.paginated_rows:
        key = row_attrs = None
        if by_parity is not None and type(row) is BoundRow:
            parity = row.get_even_odd_css_class()
            row_attrs = by_parity.get(parity)
            if row_attrs is None:
                row_attrs = by_parity[parity] = row.attrs.as_html()
        if memo is not None:
            record_key = value_key(row.record) or values_row_key(row.record)
            if record_key is not None:
                # The row's attributes (its even/odd class among them) are part of the key.
                if row_attrs is None:
                    row_attrs = row.attrs.as_html()
                key = (memo, row_attrs, record_key)
                if clock is not None:
                    key = (*key, clock(row.record))
                html = ROW_MEMO.get(key)
                if html is not None:
                    rows.append(html)
                    continue
        if plans is None:
            plans = [_Cell(column) for column in columns]
        cells = []
        for index, column in enumerate(columns):
            cell = plans[index].content(row)
            column.current_value = cell
            column.current_record = row.record
            td = static_td[index] if static_td is not None else column.attrs["td"].as_html()
            # Label and attributes are escaped markup already, the cell is rendered:
            # format_html() would only escape them again (a no-op, 20 % of a report page).
            html = _cell_html(context, column, cell)
            cells.append(f'\n  <td data-label="{labels[index]}" {td}>{html}</td>')
        if row_attrs is None:
            row_attrs = row.attrs.as_html()
        html = f"\n<tr {row_attrs}>{''.join(cells)}\n</tr>"
        if key is not None:
            # The key's first part is shared by the table's rows: weighed once, not per row.
            heft = weight(row_attrs) + weight(record_key) + weight(html)
            ROW_MEMO.put(key, html, heft if clock is None else heft + weight(key[-1]))
        rows.append(html)
    if not rows and table.empty_text:
        return format_html('<tr><td colspan="{}">{}</td></tr>', len(columns), table.empty_text)
    return mark_safe("".join(rows))


@register.simple_tag(takes_context=True)
def page_table(context, table):
    """``{% render_table table %}`` rendered in the page's context. The library's tag renders
    the table's template in a new ``RequestContext``, which ran every context processor a
    second time (the user's roles, the navigation, the messages: 0.15 ms of a list page) for
    a template that reads the table and the request alone. As there, the table holds the
    context while it renders (``TemplateColumn`` renders with it)."""
    template = get_template(table.template_name)
    table.context = context
    try:
        table.before_render(context.get("request"))
        with context.push(table=table):
            return template.template.render(context)
    finally:
        del table.context


# Header rows of tables that declare ``head_is_static`` (see ``table_head_cells``): a few
# per list, sort, query string and language; 2 MB at most.
HEAD_MEMO = Memo(1024, 2 << 20)


def _head_key(context, table) -> tuple | None:
    """What a ``head_is_static`` table's header row depends on besides its class: the
    sort and its parameter, the query string (the links keep it), the language, the
    context's escaping and localisation. None for other tables."""
    if not getattr(table, "head_is_static", False):
        return None
    return (
        type(table),
        table.orderable,
        table.prefixed_order_by_field,
        tuple(map(str, table.order_by or ())),
        tuple((name, tuple(values)) for name, values in context["request"].GET.lists()),
        translation.get_language(),
        context.autoescape,
        context.use_l10n,
    )


@register.simple_tag(takes_context=True)
def table_head_cells(context, table):
    """The header row's cells, as the column loop of ``templates/tables/table.html``
    rendered them: each column's attributes, sort state and sorting link (the request's
    query string with the column's next order, ``{% querystring_replace %}``'s). In the
    template each cell ran a dozen nodes and the link copied the query string again: with
    the pager, a third of a request list page's table (bench/bench_cpu.py).

    A table whose columns, their headers and attributes are those its class declares, the
    same for every instance (``head_is_static``: the request lists), has its header row
    kept in ``HEAD_MEMO`` under ``_head_key``: the nine cells of the fulfilment queue
    cost 1.2 ms of its CPU on every view, each column's attributes, classes and link
    worked out again for the same markup."""
    key = _head_key(context, table)
    if key is not None:
        html = HEAD_MEMO.get(key)
        if html is not None:
            return mark_safe(html)  # as rendered below
    params = dict(context["request"].GET)
    field = table.prefixed_order_by_field
    sort = render_value_in_context(gettext("sort"), context)
    cells = []
    for column in table.columns:
        header = render_value_in_context(column.header, context)
        orderable = column.orderable
        sorted_as = ""
        if orderable and column.is_ordered:
            descending = column.order_by_alias.is_descending
            sorted_as = f' aria-sort="{"descending" if descending else "ascending"}"'
        if orderable:
            query = dict(params)
            if field not in ("", None):
                query[field] = column.order_by_alias.next
            link = escape("?" + urlencode(query, doseq=True))
            header = f'<a href="{link}">{header}<span class="visually-hidden"> – {sort}</span></a>'
        th = column.attrs["th"].as_html()
        cells.append(f'\n    <th scope="col" {th}{sorted_as}>\n      {header}\n    </th>')
    html = "".join(cells)
    if key is not None:
        HEAD_MEMO.put(key, html)
    return mark_safe(html)


@register.simple_tag(takes_context=True)
def table_page_links(context, table):
    """The pager's page links, as the page loop of ``templates/tables/table.html`` rendered
    them (``table_page_range``: up to ten pages and the gaps between them), the query string
    copied once, not once per link."""
    params = dict(context["request"].GET)
    field = table.prefixed_page_field
    label = render_value_in_context(gettext("Page"), context)
    current = table.page.number
    links = []
    for page in table_page_range(table.page, table.paginator):
        if page == "...":
            links.append('<li><span aria-hidden="true">…</span></li>')
            continue
        query = dict(params)
        if field not in ("", None):
            query[field] = page
        link = escape("?" + urlencode(query, doseq=True))
        here = ' aria-current="page"' if page == current else ""
        number = render_value_in_context(page, context)
        links.append(
            f'<li><a href="{link}"{here}><span class="visually-hidden">{label} </span>'
            f"{number}</a></li>"
        )
    return mark_safe("".join(links))


# Pagers of tables (``kept_pager``): a few per list, page, query string and language; 2 MB
# at most.
PAGER_MEMO = Memo(2048, 2 << 20)


def _pager_key(context, table) -> tuple | None:
    """What a table's pager shows: the page and its neighbours, the number of pages and
    rows (and whether it is exact), where the next page starts (``next_after``), the page
    parameter and the query string its links keep, the language, the context's escaping
    and localisation. None without a request (the links need one)."""
    request = context.get("request")
    if request is None:
        return None
    page, paginator = table.page, table.paginator
    return (
        type(paginator),
        table.prefixed_page_field,
        page.number,
        page.has_previous(),
        page.has_next(),
        getattr(page, "next_after", None),
        paginator.num_pages,
        paginator.count,
        getattr(paginator, "count_is_exact", None),
        tuple(table_page_range(page, paginator)),
        tuple((name, tuple(values)) for name, values in request.GET.lists()),
        translation.get_language(),
        context.autoescape,
        context.use_l10n,
    )


class KeptPagerNode(template.Node):
    def __init__(self, table, nodelist):
        self.table = table
        self.nodelist = nodelist

    def render(self, context):
        key = _pager_key(context, self.table.resolve(context))
        html = None if key is None else PAGER_MEMO.get(key)
        if html is None:
            html = self.nodelist.render(context)
            if key is not None:
                PAGER_MEMO.put(key, html)
        return html


@register.tag
def kept_pager(parser, token):
    """``{% kept_pager table %}…{% endkept_pager %}``: the pager's markup, kept per process
    under what it shows (``_pager_key``). Its counting sentence, page links and the links
    before and after (a query string copied for each) ran some forty template nodes on
    every view of a list, for the same markup."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError("kept_pager takes the table.")
    nodelist = parser.parse(("endkept_pager",))
    parser.delete_first_token()
    return KeptPagerNode(parser.compile_filter(bits[1]), nodelist)
