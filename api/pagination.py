import base64
import binascii
import hashlib
import json

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from rest_framework import pagination
from rest_framework.response import Response

from itportal.inputs import (
    COUNT_LIMIT,
    PartsUnion,
    bounded_count,
    key_among,
    orderable_union,
)
from itportal.memo import Memo, weight

# No list holds two billion rows; a larger ?offset= reads nothing (10**20 would overflow SQL).
OFFSET_MAX = 2**31


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=&offset=``; 25 by default, at most 200. Bad values fall back to the default.

    The rows are counted up to COUNT_LIMIT, as on the pages: beyond, ``count`` is the bound
    and ``count_exact`` is false; ``next`` then comes from reading one row more than asked.
    """

    default_limit = 25
    max_limit = 200
    count_limit = COUNT_LIMIT
    # The ``next`` link's keyset: where the page ended, so following it reads the next rows
    # along the list's index instead of skipping ``offset`` rows (``_keyset_order``).
    cursor_query_param = "cursor"

    def paginate_queryset(
        self,
        queryset,
        request,
        view=None,
        read=None,
        parts=None,
        read_chosen=None,
        parts_key=None,
        count=None,
    ):
        """``read`` (queryset -> queryset), if given, turns the page's rows into what the
        view serialises (e.g. values); the count and the choice of rows stay on
        ``queryset``, whose joins a count does not need. ``read_chosen`` (queryset -> list),
        if given, reads the page as ``read`` would from a queryset of the model that picks
        the page's rows by their ids and orders them (its ``where`` the ids alone), by a
        statement kept for its columns and order. ``parts``, if given, are disjoint
        querysets whose rows together are ``queryset``'s, each filtered and
        ordered as it is: the count and the page's ids then come from their UNION ALL
        (see ``itportal.inputs.PartsUnion``), each part read along its own index.
        ``parts`` may be a callable that makes them; with ``parts_key`` (hashable: whose
        list, its filters as asked), their compiled union is kept per process under the
        key and the list's order, and they are not made again for the same list.
        ``count`` (queryset, limit -> int), if given, counts as ``bounded_count``."""
        self.request = request
        self.read = read
        self.union = None
        kept = self._kept_union(queryset, parts_key)
        if kept is not None:
            # The parts' stand-in: the list itself, in the same order (as the key says).
            parts = [queryset]
            self.union = (parts, kept)
        elif callable(parts):
            parts = parts()
        self.parts = parts if parts and orderable_union(queryset, parts) else None
        # A list given parts it cannot page by their union reads its page as before.
        self.read_chosen = None if parts and self.parts is None else read_chosen
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        # The parts compiled once, for the count and the page's ids: through the ORM, the
        # count's union was built and compiled apart from the page's (PartsUnion).
        if self.parts is not None:
            if self.union is None:
                self.union = (self.parts, PartsUnion(self.parts, ordered=True))
                if parts_key is not None:
                    key = (parts_key, tuple(queryset.query.order_by))
                    _KEPT_UNIONS.put(key, self.union[1], weight(key) + self.union[1].weight)
            counted = self.union[1].count(self.count_limit + 1)
        else:
            counted = (count or bounded_count)(queryset, self.count_limit)
        self.page_rows = self.keys = None
        self.count_exact = counted <= self.count_limit
        self.count = min(counted, self.count_limit)
        self.offset = self.get_offset(request)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        if self.count_exact:
            self.has_next = self.offset + self.limit < self.count
            if self.count == 0 or self.offset > self.count:
                return []
            self.page_rows = self._page_rows(queryset, self.offset, self.offset + self.limit)
            return self.page_rows
        if self.offset > OFFSET_MAX:  # past any real list, and past PostgreSQL's bigint
            self.has_next = False
            return []
        rows = self._page_rows(queryset, self.offset, self.offset + self.limit + 1)
        self.has_next = len(rows) > self.limit
        self.page_rows = rows[: self.limit]
        return self.page_rows

    def _kept_union(self, queryset, parts_key) -> PartsUnion | None:
        """The parts' union kept under ``parts_key`` and the list's order, if any. Not for
        a page from a ``cursor``: its parts are filtered from where the cursor says."""
        if parts_key is None or not isinstance(queryset, QuerySet):
            return None
        if self.request.query_params.get(self.cursor_query_param):
            return None
        return _KEPT_UNIONS.get((parts_key, tuple(queryset.query.order_by)))

    def _page_rows(self, queryset, start: int, stop: int) -> list:
        """Rows ``start`` … ``stop`` of the list; from the ``next`` link's cursor, where
        one came with it, the rows after the previous page's last one instead."""
        keys = _keyset_order(queryset, self.parts)
        self.keys = keys
        after = self._cursor_values(keys, start) if keys else None
        if after is None:
            return self.rows(queryset, start, stop)
        condition = _after(keys, after)
        parts = self.parts
        try:
            if parts is not None:
                self.parts = [part.filter(condition) for part in parts]
            return self.rows(queryset.filter(condition), 0, stop - start)
        finally:
            self.parts = parts

    def rows(self, queryset, start: int, stop: int) -> list:
        """Rows ``start`` … ``stop`` of the list. Past the first, the page's ids are chosen
        first, from the narrow rows, and only those rows are read whole with their joins:
        ``?offset=2500`` of one person's 5,800 requests sorted and joined 2,525 wide rows
        (item snapshot, answers) to return 25 (90 ms at 1M requests; 50 ms this way)."""
        read = getattr(self, "read", None) or (lambda rows: rows)
        if not isinstance(queryset, QuerySet):
            return list(queryset[start:stop])
        read_chosen = getattr(self, "read_chosen", None)
        order = queryset.query.order_by
        if getattr(self, "parts", None) is not None:
            kept = getattr(self, "union", None)
            if kept is not None and kept[0] is self.parts:
                union = kept[1]
            else:  # parts of its own (a cursor's)
                union = PartsUnion(self.parts, ordered=True)
            ids = union.ids(start, stop)
            chosen = queryset.model._base_manager.filter(key_among(queryset.model, ids))
            if read_chosen is not None:
                return read_chosen(chosen.order_by(*order))
            return list(read(chosen.order_by(*order)))
        if read_chosen is not None and order:
            ids = queryset.values("pk")[start:stop]
            return read_chosen(queryset.model._base_manager.filter(pk__in=ids).order_by(*order))
        if start == 0:
            return list(read(queryset)[start:stop])
        return list(read(queryset.filter(pk__in=queryset.values("pk")[start:stop])))

    def _cursor_values(self, keys, offset: int) -> list | None:
        """The order's values of the previous page's last row, from a ``cursor`` made for
        this list (the same order, filters and offset); None without one, or for any
        other (then the offset alone decides, as it always did)."""
        token = self.request.query_params.get(self.cursor_query_param)
        if not token or len(token) > 2000:
            return None
        try:
            padded = token + "=" * (-len(token) % 4)
            made = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            stamp, values = made["s"], made["v"]
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError):
            return None
        if stamp != self._stamp(keys, offset) or not isinstance(values, list):
            return None
        if len(values) != len(keys):
            return None
        try:
            return [field.to_python(value) for (field, _), value in zip(keys, values, strict=True)]
        except (ValidationError, TypeError):
            return None

    def _stamp(self, keys, offset: int) -> str:
        """What a cursor holds for: the list's order, its other parameters and the
        offset the ``next`` link names (hashed; the token is not a secret, a cursor of
        another list or place is merely ignored)."""
        params = sorted(
            (name, value)
            for name, values in self.request.query_params.lists()
            if name not in (self.cursor_query_param, self.offset_query_param)
            and name != self.limit_query_param
            for value in values
        )
        made = json.dumps(
            [self.request.path, [(f.attname, desc) for f, desc in keys], params, offset]
        )
        return hashlib.sha256(made.encode()).hexdigest()[:16]

    def _next_cursor(self, rows) -> str | None:
        keys = getattr(self, "keys", None)
        if not keys or not rows:
            return None
        last = rows[-1]
        values = []
        for field, _desc in keys:
            if isinstance(last, dict):
                value = last.get(field.attname, last.get(field.name, _MISSING))
            else:
                value = getattr(last, field.attname, _MISSING)
            if value is _MISSING or value is None:
                return None
            values.append(_as_text(value))
        made = {"s": self._stamp(keys, self.offset + self.limit), "v": values}
        # Without base64's padding: "=" would be escaped in the link.
        return base64.urlsafe_b64encode(json.dumps(made).encode()).decode("ascii").rstrip("=")

    def get_next_link(self):
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        url = pagination.replace_query_param(url, self.limit_query_param, self.limit)
        url = pagination.replace_query_param(url, self.offset_query_param, self.offset + self.limit)
        cursor = self._next_cursor(getattr(self, "page_rows", None))
        if cursor is None:
            return pagination.remove_query_param(url, self.cursor_query_param)
        return pagination.replace_query_param(url, self.cursor_query_param, cursor)

    def get_previous_link(self):
        # A cursor names where the page after it starts, never the page before.
        url = super().get_previous_link()
        return None if url is None else pagination.remove_query_param(url, self.cursor_query_param)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_exact": self.count_exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": (
                    "Set by the `next` link: where the previous page ended, so the next "
                    "page is read from there instead of skipping `offset` rows. Ignored "
                    "unless it was made for this list, its filters and this offset."
                ),
                "schema": {"type": "string"},
            },
        ]

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count"]["description"] = (
            f"Number of results, counted up to {COUNT_LIMIT}."
        )
        schema["properties"]["count_exact"] = {
            "type": "boolean",
            "description": (
                f"False when there are more than {COUNT_LIMIT} results: `count` is then the "
                "bound, and `next` still leads on."
            ),
        }
        schema["required"] = [*schema["required"], "count_exact"]
        return schema


_MISSING = object()

# Compiled unions of the lists' parts by ``parts_key`` and order (a few kilobytes each), the
# same whenever the same list is asked for again: building the parts through the ORM and
# compiling them was a seventh of the API request list's CPU.
_KEPT_UNIONS = Memo(1024, 8 << 20)


def _keyset_order(queryset, parts) -> list | None:
    """The list's order as (model field, descending) pairs where a page's last row tells
    where the next begins: an explicit order of the model's own columns that cannot be
    NULL, ending with the key (so no two rows tie). None for any other list (it pages by
    offset alone)."""
    if not isinstance(queryset, QuerySet) or not orderable_union(queryset, parts or [queryset]):
        return None
    model = queryset.model
    keys = []
    for name in queryset.query.order_by:
        bare = name.lstrip("-")
        field = model._meta.pk if bare == "pk" else model._meta.get_field(bare)
        if field.null:
            return None
        keys.append((field, name.startswith("-")))
    if not keys or not keys[-1][0].primary_key:
        return None
    return keys


def _after(keys, values) -> Q:
    """Rows after ``values`` in the order ``keys``: (a > x) or (a = x and b > y) …, with
    < for a descending key; PostgreSQL reads it along the list's index."""
    condition = Q()
    equal = {}
    for (field, descending), value in zip(keys, values, strict=True):
        step = Q(**equal, **{f"{field.attname}__{'lt' if descending else 'gt'}": value})
        condition |= step
        equal[field.attname] = value
    # The first key's bound once more, alone: the planner makes it the index scan's start
    # (it does not read one out of the OR).
    (first, descending), value = keys[0], values[0]
    return Q(**{f"{first.attname}__{'lte' if descending else 'gte'}": value}) & condition


def _as_text(value):
    """A key's value as JSON holds it: numbers as they are, times and dates in ISO 8601
    (with their microseconds and offset), anything else as text; ``to_python`` of the
    field reads each back."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return value
