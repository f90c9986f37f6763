"""The request list's rows (``RequestSerializer.ROW_COLUMNS``) of one page, read by a
statement compiled once whose related columns are subqueries per row.

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
import re

from django.db import connections
from django.db.models import BooleanField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT

from itportal.statements import kept_statement_order
from requests_app.models import ServiceRequest
from requests_app.selectors import list_values

# Where the conditions go in the kept statement's SQL.
_CONDITIONS_MARK = "(1 = 1 /* the page's request ids */)"
_PLACEHOLDER = re.compile(r"%[%s]")


def _looked_up(column: str) -> Subquery:
    """``column`` ("item__category__name") of the request's row, as a subquery on the
    related table through the request's foreign key (``item_id``)."""
    relation, path = column.split("__", 1)
    model = ServiceRequest._meta.get_field(relation).related_model
    rows = model._base_manager.filter(pk=OuterRef(f"{relation}_id")).order_by()
    return Subquery(rows.values(path)[:1])


@functools.lru_cache(maxsize=16)
def _statement(columns: tuple[str, ...], order: tuple[str, ...]) -> tuple:
    """The SQL before and after the conditions, the parameters of each part and the
    column each selected name stands for."""
    mark = RawSQL(_CONDITIONS_MARK, (), output_field=BooleanField())  # noqa: S611 - a constant
    own, looked_up, names = [], {}, {}
    for column in columns:
        if column == "listed_item_name":
            looked_up[column] = KT("item_snapshot__name")
        elif "__" in column:
            # An alias may not hold the lookup separator: the column's position names it.
            alias = f"looked_up_{len(looked_up)}"
            looked_up[alias] = _looked_up(column)
            names[alias] = column
        else:
            own.append(column)
    rows = ServiceRequest.objects.filter(mark).order_by(*order).values(*own, **looked_up)
    sql, params = rows.query.sql_with_params()
    head, found, tail = sql.partition(_CONDITIONS_MARK)
    if not found or _CONDITIONS_MARK in tail or "WHERE" not in head:
        raise RuntimeError("request rows: the conditions' stand-in is not where expected")
    before = sum(placeholder == "%s" for placeholder in _PLACEHOLDER.findall(head))
    return head, tail, tuple(params[:before]), tuple(params[before:]), names


def page_rows(queryset: QuerySet[ServiceRequest], columns) -> list[dict]:
    """The rows ``queryset`` picks by conditions on the request's own columns (the
    pager's ids) in its order, as dicts of ``columns`` (as ``values(*columns)`` gives
    them). Any other queryset is read by the ORM, with its joins."""
    order = kept_statement_order(queryset)
    if order is None:
        return list(list_values(queryset, columns))
    query = queryset.query
    where, where_params = query.get_compiler(using=queryset.db).compile(query.where)
    head, tail, before, after, names = _statement(tuple(columns), order)
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"{head}({where}){tail}", (*before, *where_params, *after))
        keys = [names.get(column.name, column.name) for column in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
