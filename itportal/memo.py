"""Markup kept per process, keyed by the values it was rendered from.

A controlling report's rows are aggregates (dataclasses of numbers, texts and dates): a row
rendered once renders the same until its figures change, and then its key changes with
them. So nothing is ever invalidated: what changed is looked up under a new key, and the
least recently used entries make room (``Memo``). ``value_key`` turns such a row into a
key that tells apart what renders differently.

Why not Django's local-memory cache (``locmem``), which is per process as well: it pickles
every value it keeps and unpickles it on every read, and the values here are read on every
view (a page's markup, the rolled months' sums of a year, the lead-time histograms of about
5 MB at a million requests, which would cost more to unpickle than to sum again); its keys
are strings, so these tuples of reprs would have to be hashed or spelt out on every look-up;
and it bounds only the number of entries, not their size, so a few of the large ones could
grow a process without limit. Entries here never go stale (a change makes a new key), so
its expiry would buy nothing. A cache shared by the processes (Redis) would share the
renderings, but costs a round trip and the unpickling per view: the kept case is what these
pages are fast in.
"""

from __future__ import annotations

import dataclasses
import datetime
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from uuid import UUID

_NOT_VALUES = object()
_FIELDS: dict[type, tuple[str, ...] | None] = {}
# Per dataclass of values, a getter of its fields' values as one tuple (see ``value_key``).
_GETTERS: dict[type, Callable[[object], tuple]] = {}


def weight(value) -> int:
    """Roughly the bytes ``value`` holds: texts by their length, containers by their items
    (what a ``Memo`` counts against its budget)."""
    if isinstance(value, str):
        return 56 + len(value)
    if isinstance(value, (tuple, list, frozenset, set)):
        return 64 + sum(weight(item) for item in value)
    if isinstance(value, dict):
        return 96 + sum(weight(k) + weight(v) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return 64 + sum(weight(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 32


class Memo:
    """A bounded mapping, least recently used out first; safe across threads.

    Bounded twice: at most ``size`` entries, and at most ``budget`` (about bytes, see
    ``weight``) for keys and values together, so a few large entries (a table of every
    service, the histograms of a year) cannot grow a process without limit. An entry
    heavier than the whole budget is not kept."""

    def __init__(self, size: int, budget: int):
        self.size = size
        self.budget = budget
        self._entries: OrderedDict = OrderedDict()  # key -> (value, weight)
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key, value, heft: int | None = None) -> None:
        """Keep ``value`` under ``key``; ``heft``: its weight if the caller knows it better
        (keys sharing a part), else ``weight`` of key and value."""
        heft = weight(key) + weight(value) if heft is None else heft
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            if heft > self.budget:
                return
            self._entries[key] = (value, heft)
            self._weight += heft
            while len(self._entries) > self.size or self._weight > self.budget:
                self._weight -= self._entries.popitem(last=False)[1][1]

    def kept(self, key, make):
        """The value under ``key``, made by ``make()`` and kept if there is none."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0

    def keys(self) -> list:
        with self._lock:
            return list(self._entries)

    def __iter__(self):
        return iter(self.keys())

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


def is_value(value) -> bool:
    """A plain value or a container or dataclass of them: its repr says how it renders."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind in (list, tuple, frozenset):
        # Checked type by type in C first: a chart's series are lists of plain numbers.
        return _PLAIN.issuperset(map(type, value)) or all(map(is_value, value))
    if kind is dict:
        return all(is_value(k) and is_value(v) for k, v in value.items())
    fields = _value_fields(kind)
    return fields is not None and all(is_value(getattr(value, name)) for name in fields)


def value_key(record) -> tuple | None:
    """A dataclass row as its class and the reprs of its fields, or None for other rows.

    Reprs rather than the values: equal values may render differently (``Decimal("5")``
    and ``Decimal("5.00")``, ``1`` and ``True``); reprs of numbers, texts, dates and of
    containers and dataclasses of them do not. A row holding anything else (a model
    instance, whose repr does not say what it holds) has no key."""
    kind = type(record)
    getter = _GETTERS.get(kind)
    if getter is None:
        fields = _value_fields(kind)
        if fields is None:
            return None
        # The fields' values in one C call (of one field or none, as a tuple too).
        if len(fields) > 1:
            getter = operator.attrgetter(*fields)
        else:
            getter = lambda row, names=fields: tuple(getattr(row, n) for n in names)  # noqa: E731
        _GETTERS[kind] = getter
    values = getter(record)
    # Types checked in C first: a report's rows are numbers, texts and dates; every row
    # was a dozen calls of is_value() and a list on every view (a fifth of its table's key).
    if not _PLAIN.issuperset(map(type, values)) and not all(map(is_value, values)):
        return None
    return (kind, *map(repr, values))


# value_key of frozen dataclass rows by their identity, per process: a kept report's rows
# (a Memo's value) are the same objects on every view, and their keys were computed anew
# each time (the forecast's 37 rows of 24 months and their forecasts: 0.6 ms a view). The
# entry holds its row, so its id is not reused while it is kept; frozen rows are not changed
# (kept ones are shared by every view already).
_KEPT_KEYS: dict[int, tuple[object, tuple | None]] = {}
KEPT_KEYS_MAX = 8192


def kept_value_key(record) -> tuple | None:
    """``value_key(record)``, kept for frozen dataclass rows (see above)."""
    seen = _KEPT_KEYS.get(id(record))
    if seen is not None and seen[0] is record:
        return seen[1]
    key = value_key(record)
    params = getattr(type(record), "__dataclass_params__", None)
    if params is not None and params.frozen:
        if len(_KEPT_KEYS) >= KEPT_KEYS_MAX:
            _KEPT_KEYS.clear()
        _KEPT_KEYS[id(record)] = (record, key)
    return key


def values_row_key(record) -> tuple | None:
    """A row read as values (``QuerySet.values()``: a dict of plain values under text keys)
    as its keys and their values' reprs, or None for other rows (see ``value_key``)."""
    if type(record) is not dict:
        return None
    values = record.values()
    # Checked type by type in C first: a list's 25 rows of 18 plain values each, a tenth of
    # the fulfilment queue's rows, were 450 calls of is_value() on every view.
    if not _TEXT.issuperset(map(type, record)):
        return None
    if not _PLAIN.issuperset(map(type, values)) and not all(map(is_value, values)):
        return None
    return (dict, *zip(record, map(repr, values), strict=True))


_TEXT = frozenset({str})


# Column values kept in a key as they are: equal values of these render alike (a column
# holds one type, so 1 and True, or a naive and an aware time, never meet in one place).
_AS_IS = frozenset({type(None), bool, int, str, datetime.date, datetime.datetime, UUID})
# Kept as their reprs: equal values that render differently (Decimal("5"), "5.00"), and the
# JSON columns' dicts and lists as read (JSON types only, which repr spells out).
_AS_REPR = frozenset({Decimal, float, dict, list})


def instance_key(obj, seen: set[int]) -> tuple | None:
    """A model object's columns as loaded and, in turn, the related objects loaded with it
    (``select_related``, or set by its reader) as plain values: what a page renders from
    them is the same for equal keys. ``seen``: the ids of objects already in the key (a
    related object set back on its origin comes once); None if a column holds anything
    else than a plain value."""
    if obj is None:
        return None
    if id(obj) in seen:
        return (type(obj), "seen", obj.pk)
    seen.add(id(obj))
    loaded = obj.__dict__
    values = []
    for name in _attnames(type(obj)):
        value = loaded.get(name, _NOT_VALUES)
        kind = type(value)
        if kind in _AS_REPR:
            value = repr(value)
        elif kind not in _AS_IS and value is not _NOT_VALUES:
            return None
        values.append(value)
    related = []
    for name, other in sorted(obj._state.fields_cache.items()):
        key = None if other is None else instance_key(other, seen)
        if key is None and other is not None:
            return None
        related.append((name, key))
    return (type(obj), tuple(values), tuple(related))


_ATTNAMES: dict[type, tuple[str, ...]] = {}
_NEVER_SHOWN = frozenset({"password"})


def _attnames(model) -> tuple[str, ...]:
    names = _ATTNAMES.get(model)
    if names is None:
        # A password hash is never shown: it stays out of every key kept in memory.
        names = _ATTNAMES[model] = tuple(
            f.attname for f in model._meta.concrete_fields if f.attname not in _NEVER_SHOWN
        )
    return names
