"""The body rows of a django-tables2 table, rendered in Python.

The row block of ``templates/tables/table.html`` ran about a dozen template nodes per
cell — the column's header for ``data-label``, its ``td`` attributes (recomputed from the
table's and column's attrs for every cell), the localisation branches — so a 25-row list
spent more time in that loop than in everything else on the page (bench/bench_pages.py).
Here the per-column parts are computed once per table and each cell costs its value.
The output is the same markup; tests/test_tables.py compares it with the template's.
"""

from django import template
from django.template.base import render_value_in_context
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()


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


@register.simple_tag(takes_context=True)
def table_rows(context, table):
    columns = list(table.columns)
    # Attributes that call a function with the record are per row; all others per table.
    per_row = _has_callables(table.attrs) or any(
        _has_callables(column.column.attrs) for column in columns
    )
    labels = [conditional_escape(column.header) for column in columns]
    static_td = None if per_row else [column.attrs["td"].as_html() for column in columns]
    rows = []
    for row in table.paginated_rows:
        cells = []
        for index, column in enumerate(columns):
            cell = row.get_cell(column.name)
            column.current_value = cell
            column.current_record = row.record
            td = static_td[index] if static_td is not None else column.attrs["td"].as_html()
            cells.append(
                format_html(
                    '\n  <td data-label="{}" {}>{}</td>',
                    labels[index],
                    td,
                    mark_safe(_cell_html(context, column, cell)),
                )
            )
        rows.append(
            format_html("\n<tr {}>{}\n</tr>", row.attrs.as_html(), mark_safe("".join(cells)))
        )
    if not rows and table.empty_text:
        return format_html('<tr><td colspan="{}">{}</td></tr>', len(columns), table.empty_text)
    return mark_safe("".join(rows))
