"""Writes of many rows at once, for the code paths that handle hundreds of rows together
(provisioning batches and the requests they fulfil).

``update_rows`` is ``QuerySet.bulk_update`` as one ``UPDATE … FROM unnest(…)``: Django's
own builds a ``CASE WHEN id = … THEN …`` expression per row and field, which costs more
Python time than the statement takes (2 s of a 100-job batch on a loaded machine). The
values are sent as one typed array per field, so the statement is the same for 10 rows or
1,000 and nothing of it is compiled per row.

``memo_scope`` lets a bulk operation keep the answer of a read that every one of its items
would repeat (are there webhook endpoints for this event type?) for as long as it runs;
outside a scope ``memoised`` simply computes.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model

_memo: contextvars.ContextVar[dict | None] = contextvars.ContextVar("bulk_memo", default=None)


def update_rows(objs: Sequence[Model], fields: Iterable[str]) -> int:
    """Write ``fields`` of every object (all of one model, saved before) in one statement;
    returns the number of rows updated. Like ``bulk_update``: no signals, no ``save()``."""
    objs = list(objs)
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    db = router.db_for_write(model)
    connection = connections[db]
    concrete = [meta.get_field(name) for name in fields]
    pk = meta.pk
    columns = [pk, *concrete]
    arrays = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs]
        for field in columns
    ]
    casts = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
    names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
    assignments = ", ".join(
        f"{connection.ops.quote_name(field.column)} = v.{connection.ops.quote_name(field.column)}"
        for field in concrete
    )
    table = connection.ops.quote_name(meta.db_table)
    sql = (
        f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names from the model
        f"FROM unnest({casts}) AS v({names}) "
        f"WHERE t.{connection.ops.quote_name(pk.column)} = v.{connection.ops.quote_name(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount


@contextlib.contextmanager
def memo_scope():
    """Within the block, ``memoised`` computes each key once (nested scopes share it)."""
    if _memo.get() is not None:
        yield
        return
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def memoised(key: Hashable, compute: Callable[[], Any]) -> Any:
    cache = _memo.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]
