"""Markup kept per process, keyed by the values it was rendered from.

A controlling report's rows are aggregates (dataclasses of numbers, texts and dates): a row
rendered once renders the same until its figures change, and then its key changes with
them. So nothing is ever invalidated: what changed is looked up under a new key, and the
least recently used entries make room (``Memo``). ``value_key`` turns such a row into a
key that tells apart what renders differently.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction

_NOT_VALUES = object()
_FIELDS: dict[type, tuple[str, ...] | None] = {}


class Memo:
    """A bounded mapping, least recently used out first; safe across threads."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _value_fields(kind: type) -> tuple[str, ...] | None:
    fields = _FIELDS.get(kind, _NOT_VALUES)
    if fields is _NOT_VALUES:
        fields = None
        if dataclasses.is_dataclass(kind) and not hasattr(kind, "__getitem__"):
            declared = dataclasses.fields(kind)
            if all(f.repr for f in declared):
                fields = tuple(f.name for f in declared)
        _FIELDS[kind] = fields
    return fields


# Values whose repr says what they are and so how they render.
_PLAIN = frozenset(
    {
        type(None), bool, int, float, str, Decimal, Fraction,
        datetime.date, datetime.datetime, datetime.timedelta,
    }
)  # fmt: skip


def _is_value(value) -> bool:
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind in (list, tuple, frozenset):
        return all(_is_value(item) for item in value)
    if kind is dict:
        return all(_is_value(k) and _is_value(v) for k, v in value.items())
    fields = _value_fields(kind)
    return fields is not None and all(_is_value(getattr(value, name)) for name in fields)


def value_key(record) -> tuple | None:
    """A dataclass row as its class and the reprs of its fields, or None for other rows.

    Reprs rather than the values: equal values may render differently (``Decimal("5")``
    and ``Decimal("5.00")``, ``1`` and ``True``); reprs of numbers, texts, dates and of
    containers and dataclasses of them do not. A row holding anything else (a model
    instance, whose repr does not say what it holds) has no key."""
    fields = _value_fields(type(record))
    if fields is None:
        return None
    values = [getattr(record, name) for name in fields]
    if not all(_is_value(value) for value in values):
        return None
    return (type(record), *(repr(value) for value in values))
