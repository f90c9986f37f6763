"""The request list's rows (``RequestSerializer.ROW_COLUMNS``) of one page, read by a
statement compiled once whose related columns are subqueries per row (one per related row,
its texts as an array).

Joined, the request, item, category, requester, beneficiary, the beneficiary's user and the
cost centre were seven tables whose join order PostgreSQL searched for 4.5-10 ms on every
view of ``/api/v1/requests/`` (the 25 rows executed in 0.4 ms); as subqueries per row,
planning took 0.4 ms and executing 0.7 ms (itp_bench10k and itp_bench1m). The values are
the joins': every foreign key followed here is never NULL, so no row is lost or gained.
As ``requests_app.selectors.page_rows`` for the pages: only the page's conditions (its
rows' ids) are compiled per view.
"""

from __future__ import annotations

import functools

from django.db.models import CharField, OuterRef, QuerySet, Subquery, TextField
from django.db.models.fields.json import KT

from itportal.statements import (
    conditions_mark,
    kept_statement_order,
    read_with_conditions,
    split_at_conditions,
)
from requests_app.models import ServiceRequest
from requests_app.selectors import list_values, looked_up_together, records_of


def _looked_up(column: str) -> Subquery:
    """``column`` ("item__category__name") of the request's row, as a subquery on the
    related table through the request's foreign key (``item_id``)."""
    relation, path = column.split("__", 1)
    model = ServiceRequest._meta.get_field(relation).related_model
    rows = model._base_manager.filter(pk=OuterRef(f"{relation}_id")).order_by()
    return Subquery(rows.values(path)[:1])


def _together(relation: str, paths: list[str]) -> Subquery | None:
    """The columns at ``paths`` of the row the request's foreign key ``relation`` refers
    to, as one array (``looked_up_together``): one subquery per related row instead of one
    per column. None if any of them is no text column (the array holds texts)."""
    model = ServiceRequest._meta.get_field(relation).related_model
    for path in paths:
        field = model
        for name in path.split("__"):
            field = field._meta.get_field(name)
            field = field.related_model if field.is_relation else field
        if not isinstance(field, (CharField, TextField)):
            return None
    return looked_up_together(model._base_manager.all(), f"{relation}_id", paths)


@functools.lru_cache(maxsize=16)
def _statement(columns: tuple[str, ...], order: tuple[str, ...]) -> tuple:
    """The statement (``split_at_conditions``) and the column each selected name stands
    for, or the columns of a related row read together (a tuple)."""
    own, looked_up, names, related = [], {}, {}, {}
    for column in columns:
        if column == "listed_item_name":
            looked_up[column] = KT("item_snapshot__name")
        elif "__" in column:
            related.setdefault(column.split("__", 1)[0], []).append(column)
        else:
            own.append(column)
    # By related row (the item, the requester, the beneficiary, the cost centre): twelve
    # subqueries per row were 0.9 ms of planning and executing 1.5 ms for a page of 25 at 1M;
    # four, 1.0 ms in all.
    for relation, related_columns in related.items():
        paths = [column.split("__", 1)[1] for column in related_columns]
        together = _together(relation, paths) if len(paths) > 1 else None
        if together is not None:
            # An alias may not hold the lookup separator: the column's position names it.
            alias = f"looked_up_{len(looked_up)}"
            looked_up[alias] = together
            names[alias] = tuple(related_columns)
            continue
        for column in related_columns:
            alias = f"looked_up_{len(looked_up)}"
            looked_up[alias] = _looked_up(column)
            names[alias] = column
    rows = ServiceRequest.objects.filter(conditions_mark()).order_by(*order)
    return split_at_conditions(rows.values(*own, **looked_up)), names


def page_rows(queryset: QuerySet[ServiceRequest], columns) -> list[dict]:
    """The rows ``queryset`` picks by conditions on the request's own columns (the
    pager's ids) in its order, as dicts of ``columns`` (as ``values(*columns)`` gives
    them). Any other queryset is read by the ORM, with its joins."""
    order = kept_statement_order(queryset)
    if order is None:
        return list(list_values(queryset, columns))
    statement, names = _statement(tuple(columns), order)
    columns_read, rows = read_with_conditions(queryset, statement)
    return records_of([names.get(name, name) for name in columns_read], rows)
