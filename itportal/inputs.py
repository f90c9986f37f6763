"""Limits on what users may type, shared by the pages, the admin and the API.

Each limit turns a value that would crash somewhere later (a date the calendar
arithmetic overflows on, a page size of -1) into a clear validation message at the
edge. README "Input limits" lists them.
"""

from __future__ import annotations

import datetime
import math
import zlib

import django_filters
from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Page, Paginator
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, F, QuerySet
from django.db.models.expressions import OrderBy, RawSQL
from django.db.models.query import ModelIterable, ValuesIterable
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django_tables2.rows import BoundRows

from itportal.memo import Memo, weight

# Dates a person can mean in this portal. Outside, ``date + timedelta`` and time-zone
# conversions overflow (9999-12-31, 0001-01-01); inside, there is room for both.
DATE_MIN = datetime.date(1900, 1, 1)
DATE_MAX = datetime.date(2999, 12, 31)

# Rows per page a list may be asked for with ``?per_page=``.
PER_PAGE_MAX = 100

# Lists count their rows up to this bound and then say "more than …": counting a million
# requests costs more than the page itself, and nobody pages past page 400 of 25.
COUNT_LIMIT = 10_000

DATE_RANGE_MESSAGE = _("Please enter a date between %(min)s and %(max)s.")


def validate_date_range(value) -> None:
    """Refuse dates (and date-times) outside DATE_MIN … DATE_MAX."""
    if value is None:
        return
    last = DATE_MAX
    if isinstance(value, datetime.datetime):
        # "Until the end of DATE_MAX" is midnight the day after.
        value, last = value.date(), DATE_MAX + datetime.timedelta(days=1)
    if not DATE_MIN <= value <= last:
        raise ValidationError(
            DATE_RANGE_MESSAGE,
            code="date_range",
            params={"min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()},
        )


class BoundedDateField(forms.DateField):
    """A form DateField that refuses dates outside DATE_MIN … DATE_MAX."""

    default_validators = [validate_date_range]


class BoundedDateFilter(django_filters.DateFilter):
    field_class = BoundedDateField


def queryset_of(rows) -> QuerySet | None:
    """The queryset behind ``rows``: itself, or the one a django-tables2 table pages over."""
    for _level in range(3):  # rows, BoundRows.data (TableData), TableData.data
        if isinstance(rows, QuerySet):
            return rows
        rows = getattr(rows, "data", None)
    return None


def bounded_count(rows, limit: int = COUNT_LIMIT) -> int:
    """The number of rows, but at most ``limit + 1``: ``limit + 1`` means "more than limit".

    The count runs over ``LIMIT limit + 1`` without ordering, so it stops early on a large
    table instead of reading every matching row."""
    queryset = queryset_of(rows)
    if queryset is None:
        return min(len(rows), limit + 1)
    # Of the rows only their ids: annotations a list reads per row (a key of a JSON column)
    # would otherwise be computed for each counted row.
    ids = queryset.order_by().values("pk")[: limit + 1]
    if _whole_table(queryset) and connections[ids.db].vendor == "postgresql":
        return _estimated_or_counted(ids, limit)
    return ids.count()


# A whole table is "more than COUNT_LIMIT rows" without counting when PostgreSQL's
# statistics say it has this many times as many: counting 10,001 ids is a millisecond of
# the database's time on every view of an unfiltered list, and the statistics are off by
# that much only after half a table went unnoticed by autovacuum's ANALYZE.
ESTIMATE_MARGIN = 2


def _whole_table(queryset: QuerySet) -> bool:
    """Whether ``queryset`` has every row of its model's table: no condition, grouping,
    DISTINCT, slice or set operation."""
    query = queryset.query
    return not (
        query.where
        or query.is_sliced
        or query.combinator
        or query.distinct
        or query.group_by is not None
        or query.extra_tables
    )


_ESTIMATED_OR_COUNTED = (
    "SELECT CASE WHEN (SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)) >= %s"
    " THEN %s ELSE (SELECT COUNT(*) FROM ({counted}) ids) END"
)


def _estimated_or_counted(ids: QuerySet, limit: int) -> int:
    """``ids.count()`` for ``ids``, the sliced ids of a whole table, unless the table's row
    estimate (``pg_class.reltuples``, kept by ANALYZE) is ESTIMATE_MARGIN times ``limit``
    or more: then ``limit + 1`` without counting. One statement either way; PostgreSQL
    runs the count's subquery only in the branch that uses it."""
    counted, params = ids.query.get_compiler(ids.db).as_sql()
    return estimated_or_counted(ids.db, ids.model, counted, params, limit)


def estimated_or_counted(db: str, model, counted: str, params, limit: int) -> int:
    """``_estimated_or_counted`` of compiled SQL that selects at most ``limit + 1`` of the
    ids of ``model``'s whole table."""
    connection = connections[db]
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            _ESTIMATED_OR_COUNTED.format(counted=counted),  # the ORM's SQL of the ids
            (table, ESTIMATE_MARGIN * limit, limit + 1, *params),
        )
        return cursor.fetchone()[0]


def _narrowable(queryset: QuerySet) -> bool:
    """Whether ``queryset``'s rows can be chosen by ``pk__in`` a sliced ``values("pk")``:
    model rows or dicts (``values()``), not sliced, combined or DISTINCT (whose ordering
    columns join the select)."""
    query = queryset.query
    return queryset._iterable_class in (ModelIterable, ValuesIterable) and not (
        query.is_sliced or query.combinator or query.distinct
    )


class BoundedPaginator(Paginator):
    """A paginator whose page size stays within 1 … PER_PAGE_MAX, whatever was asked, and
    which counts at most ``count_limit`` rows: beyond, ``count_is_exact`` is False and the
    pages reach the first ``count_limit`` rows (the template says so)."""

    count_limit = COUNT_LIMIT

    def __init__(
        self,
        object_list,
        per_page,
        *args,
        read=None,
        parts=None,
        parts_key=None,
        counted=None,
        after=None,
        ids_with_count=False,
        **kwargs,
    ):
        try:
            per_page = int(per_page)
        except (TypeError, ValueError):
            per_page = 25
        super().__init__(object_list, min(max(per_page, 1), PER_PAGE_MAX), *args, **kwargs)
        # queryset -> queryset: how a page's rows are read (e.g. as values) where the list
        # is a queryset; counting and choosing the page's ids use the list itself, so the
        # joins of what the rows show are made for the page's rows only.
        self.read = read
        # queryset -> querysets (or None) whose rows together are the list's, each row in
        # one part only: the count and the page's ids come from their UNION ALL, each part
        # read in the list's order along its own index, for a list whose condition is an OR
        # the planner cannot read in order. (Disjoint, so no hashing of the ids to drop
        # doubles: that took half of counting an employee's 9,000 requests.)
        self.parts = parts
        # With ``parts``: a key (hashable) that, with the list's order, says what the parts
        # are (whose list, which tab and filters), so their compiled union is kept per
        # process (``_KEPT_UNIONS``) and the parts are not built again for the same list.
        self.parts_key = parts_key
        # The number of rows where the caller knows it already (the approvals list: the
        # pending decisions it was read from), so nothing is counted.
        self.counted = counted
        # ``?after=`` of a list with ``parts`` in the order of its rows' own columns: where
        # the page before ended (``ListPage.next_after``, the "next page" link). That page's
        # successor is then read from there along the parts' indexes (keyset), not past
        # OFFSET rows; a token for another page, order or list is not used.
        self.after = after
        # With ``parts`` ordered by the rows' own columns, for a list of few of the
        # entries its parts' indexes hold (a search's matches, open requests): the page's
        # ids come from the statement that counts, out of the rows it read
        # (PartsUnion.count_and_ids). Apart, the ids of a search read all the entries
        # again: an employee's 10,000 of "my requests" at 1M, twice 2 ms.
        self.ids_with_count = ids_with_count
        self._ids_counted = None  # (bottom, ids) read with the count
        self._keyset_order = None  # (order, model) a page's ``next_after`` is given in

    def _parts(self, queryset):
        """The parts of ``queryset`` in its order; None without ``parts`` (or if it gives
        none) or for rows it cannot pick. Built once for the count and the page: each part
        is a few filters through the ORM, a tenth of a list page's CPU built twice."""
        if self.parts is None or queryset is None or not _narrowable(queryset):
            return None
        built = getattr(self, "_built_parts", None)
        if built is None or built[0] is not queryset:
            parts = self.parts(queryset)
            union = None
            if parts is not None:
                parts = [_in_order_of(queryset, part) for part in parts]
                ordered = orderable_union(queryset, parts, joined=True)
                union = PartsUnion(parts, ordered=ordered)
            built = self._built_parts = (queryset, parts, union)
        return built[1]

    def _union(self, queryset) -> PartsUnion | None:
        """``_parts(queryset)`` compiled (PartsUnion), or None without them. An ordered
        union is kept under ``parts_key`` and the order: building the parts through the ORM
        (the tab, the filters, the search's subqueries) and compiling them was a fifth of
        "my requests"' CPU, for the same statement on every view of the same list."""
        if self.parts is None or queryset is None or not _narrowable(queryset):
            return None
        key = None
        if self.parts_key is not None and queryset.query.order_by:
            key = (self.parts_key, tuple(queryset.query.order_by), self.parts.__qualname__)
            union = _KEPT_UNIONS.get(key)
            if union is not None:
                return union
        if self._parts(queryset) is None:
            return None
        union = self._built_parts[2]
        if key is not None and union.ordering:
            _KEPT_UNIONS.put(key, union, union.weight)
        return union

    @cached_property
    def _counted(self) -> int:
        if self.counted is not None:
            return min(self.counted, self.count_limit + 1)
        union = self._union(queryset_of(self.object_list))
        if union is None:
            return bounded_count(self.object_list, self.count_limit)
        bound = self.count_limit + 1
        queryset = queryset_of(self.object_list)
        if _whole_table(queryset) and connections[union.db].vendor == "postgresql":
            # Every row of the table (an unfiltered list): estimated, as bounded_count does.
            return union.estimated_count(queryset.model, self.count_limit)
        return min(union.count(bound), bound)

    def _count_with_ids(self, number) -> None:
        """With ``ids_with_count``: count the list and read the ids of page ``number`` (of
        the last page if it is past the end, which a table shows then) in one statement,
        before the number is checked against the count."""
        if not self.ids_with_count or self.counted is not None or "_counted" in self.__dict__:
            return
        try:
            number = int(number)
        except (TypeError, ValueError):
            return
        union = self._union(queryset_of(self.object_list))
        if number < 1 or union is None or not union.combinable:
            return  # below 1: validate_number says so
        bound = self.count_limit + 1
        # A page from beyond the bound is past the end (or the ids are not used).
        bottom = min((number - 1) * self.per_page, bound)
        count, bottom, ids = union.count_and_ids(bound, bottom, self.per_page, self.orphans)
        self.__dict__["_counted"] = min(count, bound)
        # Beyond the bound a part may have been cut anywhere (its rows unordered): no ids.
        if count <= self.count_limit and ids:
            self._ids_counted = (bottom, ids)

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.count_limit)

    @property
    def count_is_exact(self) -> bool:
        return self._counted <= self.count_limit

    def page(self, number):
        """Past the first page, the page's ids are chosen first, from the narrow rows in the
        list's order, and only those rows are read whole with their joins (as the API's
        offsets, api/pagination.py): page 50 of the admin's requests joined and sorted
        1,250 rows to show 25. With ``read``, the page's rows are read through it."""
        self._count_with_ids(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = self.object_list
        queryset = queryset_of(rows)
        # With ``read``, the first page too: the joins of what the rows show are made
        # for the 25 rows chosen, not for every row a sort reads (the queue sorted by
        # service joined and sorted its 2,800 open requests at 1M: 45 ms).
        narrow = (
            (bottom > 0 or self.read is not None) and queryset is not None and _narrowable(queryset)
        )
        if not narrow and (self.read is None or queryset is None):
            return super().page(number)
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        if top <= bottom and isinstance(rows, QuerySet):
            return self._get_page(rows.none(), number, self)  # an empty list: nothing to read
        if top <= bottom and isinstance(rows, BoundRows):
            chosen = BoundRows([], table=rows.table, pinned_data=rows.pinned_data)
            return self._get_page(chosen, number, self)
        if not narrow:
            chosen = self.read(queryset)[bottom:top]
        elif self.read is None:
            chosen = queryset.filter(pk__in=self._chosen_ids(queryset, bottom, top))
        else:
            # The rows of the chosen ids alone, in the list's order (by the model's paths):
            # repeating the list's conditions made the planner scan all its rows again.
            chosen = self.read(
                _in_order_of(
                    queryset,
                    queryset.model._base_manager.filter(
                        pk__in=self._chosen_ids(queryset, bottom, top, number)
                    ),
                )
            )
        if isinstance(rows, QuerySet):
            return self._get_page(chosen, number, self)
        if isinstance(rows, BoundRows):  # a django-tables2 table's rows
            chosen = BoundRows(chosen, table=rows.table, pinned_data=rows.pinned_data)
            return self._get_page(chosen, number, self)
        return super().page(number)

    def _get_page(self, *args, **kwargs):
        return ListPage(*args, **kwargs)

    def _chosen_ids(self, queryset, bottom: int, top: int, number: int = 0) -> QuerySet:
        """The ids of the list's rows ``bottom`` to ``top``, in its order: with ``parts``
        from the first ``top`` of each part (the page's rows are among them), or from
        where the page before ended (``after``)."""
        union = self._union(queryset)
        if union is None:
            return queryset.values("pk")[bottom:top]
        if union.ordering:  # sorted by columns the parts select (PartsUnion)
            order = list(queryset.query.order_by)
            keyset = self.after is not None and keyset_fields(queryset.model, order)
            if keyset:
                self._keyset_order = (order, queryset.model)
            if self._ids_counted is not None and self._ids_counted[0] == bottom:
                return self._ids_counted[1][: top - bottom]
            if keyset:
                after = keyset_values(self.after, number, order, queryset.model)
                if after is not None:
                    return union.ids_after(after, top - bottom)
            return union.ids(bottom, top)
        parts = self._parts(queryset)  # built: only ordered unions are kept
        ids = [part.values("pk")[:top] for part in parts]
        among = queryset.model._base_manager.filter(pk__in=ids[0].union(*ids[1:], all=True))
        return _in_order_of(queryset, among).values("pk")[bottom:top]


def _in_order_of(queryset: QuerySet, rows: QuerySet) -> QuerySet:
    """``rows`` (of the same model) in ``queryset``'s order: its ``order_by``, the model's
    default ordering, or none."""
    query = queryset.query
    if query.order_by:
        return rows.order_by(*query.order_by)
    return rows if query.default_ordering else rows.order_by()


def ending_with_pk(queryset: QuerySet, ordering) -> list | None:
    """``ordering`` for ``queryset``'s rows with the primary key (newest first) as its last
    key: sorted by a field with ties (a service, a state, a price), a list's pages are
    separate queries with OFFSET, and PostgreSQL may return the tied rows in another order
    for each, so a row could come on two pages and another on none. Unchanged without an
    order, when it names the key already, or for grouped rows (a key would split groups)."""
    if not ordering or queryset.query.group_by is not None:
        return ordering
    if any(str(key).lstrip("-") in ("pk", "id", queryset.model._meta.pk.name) for key in ordering):
        return ordering
    return [*ordering, "-pk"]


def orderable_union(queryset: QuerySet, parts, *, joined: bool = False) -> bool:
    """Whether the union of ``parts`` can be put in ``queryset``'s order: an explicit
    order of the model's own columns (what ``PartsUnion`` selects from each part); with
    ``joined``, also of columns of rows the model's own foreign keys lead to (the item's
    name), which each part then selects through its joins."""
    if not isinstance(queryset, QuerySet) or not queryset.query.order_by:
        return False
    order = queryset.query.order_by
    model = queryset.model
    for name in order:
        if isinstance(name, OrderBy):
            if not of_own_columns(model, name):
                return False
            continue
        if not isinstance(name, str) or name.lstrip("-") in ("?", ""):
            return False
        if name.lstrip("-") == "pk":
            continue
        path = name.lstrip("-").split("__")
        if len(path) > 1 and not joined:
            return False
        if not _column_at(model, path):
            return False
    return all(
        isinstance(part, QuerySet) and part.model is model and tuple(part.query.order_by) == order
        for part in parts
    )


def of_own_columns(model, order: OrderBy) -> bool:
    """Whether ``order`` (an expression the list is sorted by, as the queue's rank of its
    item's name) reads only columns of the model's own rows, and puts no NULLs first or
    last: PartsUnion then selects it from each part as it selects a column."""
    if order.nulls_first or order.nulls_last:
        return False
    names = [e.name for e in order.expression.flatten() if isinstance(e, F)]
    return bool(names) and all(_own_column(model, name) for name in names)


def _own_column(model, name: str) -> bool:
    """Whether ``name`` is a column of the model's table (a foreign key's own included)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return field.concrete and not field.many_to_many


def _column_at(model, path: list[str]) -> bool:
    """Whether ``path`` (field names) leads from ``model`` through foreign keys (one row
    each) to a column: a concrete field that is not a relation."""
    for index, name in enumerate(path):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        if not field.concrete:
            return False
        if index == len(path) - 1:
            return not field.is_relation
        if not (field.many_to_one or field.one_to_one):
            return False
        model = field.related_model
    return False


class PartsUnion:
    """The UNION ALL of ``parts`` (disjoint querysets of one model, ordered alike), each
    part compiled once for the count and the page's ids: narrow rows of its id and, if
    ``ordered`` (``orderable_union``), its order's columns, unordered and unlimited; the
    order and the limits are put around the compiled SQL. Through the ORM, the count and
    the page compiled each part anew (the search's subqueries included), and the count's
    union was wrapped by its aggregation: a third of "my requests"' CPU for its SQL."""

    def __init__(self, parts, *, ordered: bool):
        self.db = parts[0].db
        order = parts[0].query.order_by if ordered else ()
        keys = {f"k{index}": _key(name) for index, name in enumerate(order)}
        self.ordering = ", ".join(
            f"k{index} {'DESC' if _descending(name) else 'ASC'}" for index, name in enumerate(order)
        )
        self.compiled = self._compiled(parts, keys)
        # The page's ids of an order led by a foreign key's rank (``walked``), or None.
        self.walked = self._walked(parts, order)
        # Counted without the order's columns where they come through joins (the item's
        # name): counting needs no join.
        joined = any(isinstance(name, str) and "__" in name for name in order)
        self.counted = self._compiled(parts, {}) if joined else self.compiled
        # Whether the count's rows carry their order's columns (count_and_ids).
        self.combinable = bool(self.ordering) and not joined
        # About the bytes it holds, for _KEPT_UNIONS' budget.
        self.weight = weight(self.compiled) + weight(self.ordering) + weight(self.walked)
        if joined:
            self.weight += weight(self.counted)

    @staticmethod
    def _compiled(parts, keys: dict) -> list[tuple[str, tuple]]:
        compiled = []
        for part in parts:
            narrow = part.order_by().values(_id=F("pk"), **keys)
            sql, params = narrow.query.get_compiler(using=narrow.db).as_sql()
            compiled.append((sql, tuple(params)))
        return compiled

    @staticmethod
    def _walked(parts, order) -> list[tuple[str, tuple]] | None:
        """Each part for an order led by the rank of a foreign key among the rows it refers
        to (its expression's ``walk``: the key's field and SQL of those rows' ``id`` and
        ``rank``, as requests_app.selectors.item_name_rank): the ranked rows in the order's
        direction, and for each the part's rows of that key in the order's other keys
        (LATERAL, along an index of the key and those columns), so PostgreSQL stops once a
        page is full (an incremental sort within a rank) instead of sorting every row of the
        part by its rank. None for other orders, or where the key may be NULL (a row
        without one would be left out)."""
        first = order[0] if len(order) > 1 else None
        walk = getattr(first.expression, "walk", None) if isinstance(first, OrderBy) else None
        if walk is None:
            return None
        field, ranked = walk
        if parts[0].model._meta.get_field(field).null:
            return None
        rest = {f"k{index}": _key(name) for index, name in enumerate(order) if index}
        rest_order = ", ".join(
            f"k{index} {'DESC' if _descending(name) else 'ASC'}"
            for index, name in enumerate(order)
            if index
        )
        direction = "DESC" if _descending(first) else "ASC"
        keys = ", ".join(f"q.{name}" for name in rest)
        walked = []
        for part in parts:
            narrow = (
                part.order_by().filter(**{field: RawSQL("w.id", ())}).values(_id=F("pk"), **rest)
            )
            sql, params = narrow.query.get_compiler(using=narrow.db).as_sql()
            # Only SQL compiled from the part, the rank's and fixed aliases are interpolated;
            # values are params (the part's, then the LIMIT put after it).
            walked.append(
                (
                    f"SELECT q._id, w.rank AS k0, {keys} FROM ({ranked} ORDER BY rank"  # noqa: S608
                    f" {direction}) w CROSS JOIN LATERAL ({sql} ORDER BY {rest_order} LIMIT %s) q",
                    tuple(params),
                )
            )
        return walked

    def _union(self, suffix: str, suffix_params: list, compiled=None) -> tuple[str, list]:
        sqls, params = [], []
        for sql, part_params in compiled or self.compiled:
            sqls.append(f"({sql}{suffix})")
            params.extend([*part_params, *suffix_params])
        return " UNION ALL ".join(sqls), params

    def count(self, bound: int) -> int:
        """The number of rows, at most ``bound`` of each part."""
        # The sum of each part's count, not the count of their UNION ALL: every row then
        # passes no Append and subquery scan on its way to the count (at 1M an employee's
        # 5,800 of "my requests": 2.3 -> 2.0 ms).
        counts, params = [], []
        # Only the parts' compiled SQL is interpolated; values are params.
        for sql, part_params in self.counted:
            counts.append(f"(SELECT COUNT(*) FROM ({sql} LIMIT %s) p)")  # noqa: S608
            params.extend([*part_params, bound])
        with connections[self.db].cursor() as cursor:
            cursor.execute(f"SELECT {' + '.join(counts)}", params)
            return cursor.fetchone()[0]

    def estimated_count(self, model, limit: int) -> int:
        """``count(limit + 1)`` of parts that are together every row of ``model``'s table,
        or ``limit + 1`` if its statistics say it has many more (``estimated_or_counted``)."""
        union, params = self._union(" LIMIT %s", [limit + 1], self.counted)
        return estimated_or_counted(self.db, model, union, params, limit)

    def count_and_ids(
        self, bound: int, start: int, per_page: int, orphans: int = 0
    ) -> tuple[int, int, list]:
        """``count(bound)``, and the ids of the page of ``per_page`` rows (and up to
        ``orphans`` more) from row ``start`` in the parts' order, or of the last page where
        ``start`` is past the end (the page a list shows then, last_page_start): chosen
        among the rows counted, each part's first ``bound`` unordered, so the ids are the
        list's only while the count stays below ``bound``. Returns the count, the page's
        first row and its ids. Each part's index entries are read once; the counted rows
        are kept (a CTE) and sorted for the page, which costs more than counting alone
        where they are many (a millisecond for 5,000): for lists that match few."""
        if not self.combinable:
            raise ValueError("The parts were compiled without their order's own columns.")
        union, params = self._union(" LIMIT %s", [bound])
        # The last page's first row, as last_page_start computes it.
        last = "((GREATEST(1, n.n - %s) + %s - 1) / %s - 1) * %s"
        # Only the parts' compiled SQL and fixed aliases are interpolated; values are params.
        sql = (
            f"WITH u AS MATERIALIZED ({union}), n AS (SELECT COUNT(*) AS n FROM u)"  # noqa: S608
            f" SELECT n.n, ARRAY(SELECT u._id FROM u ORDER BY {self.ordering}"
            f" OFFSET LEAST(%s, {last}) LIMIT %s) FROM n"
        )
        last_params = [orphans, per_page, per_page, per_page]
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, [*params, start, *last_params, per_page + orphans])
            count, ids = cursor.fetchone()
        return count, min(start, last_page_start(count, per_page, orphans)), list(ids)

    def ids(self, start: int, stop: int) -> RawSQL:
        """The ids of rows ``start`` … ``stop`` in the parts' order, as a subquery: the
        first ``stop`` rows of each part, with their order's columns, are merged and put in
        order once more, without reading the rows again. Each part goes along its own
        index in the list's order ("my requests": the requester's and the beneficiary's),
        where the OR of both read all of a person's 5,800 requests at 1,000,000 to sort
        them (34 ms at offset 2500) or walked the index of all requests' dates for a first
        page (12 ms); chosen by id among the parts' rows, page 100 read 5,000 rows again to
        sort them (12 ms)."""
        if not self.ordering:
            raise ValueError("The parts were compiled without their order.")
        if self.walked is not None:  # each part's LIMIT, then the merged part's
            union, params = self._union(
                f" ORDER BY {self.ordering} LIMIT %s", [stop, stop], self.walked
            )
        else:
            union, params = self._union(f" ORDER BY {self.ordering} LIMIT %s", [stop])
        # Only the parts' compiled SQL and fixed aliases are interpolated; values are params.
        sql = f"SELECT u._id FROM ({union}) u ORDER BY {self.ordering} OFFSET %s LIMIT %s"  # noqa: S608
        return RawSQL(sql, [*params, start, stop - start])  # noqa: S611 - as said above

    def ids_after(self, values: list, count: int) -> RawSQL:
        """The ids of the ``count`` rows that follow a row whose order's columns are
        ``values``, as a subquery: each part from there along its index (the first key
        bounds the index scan), its first ``count`` rows merged. Page 100 read past 2,475
        index entries of each part to show 25."""
        directions = [part.split()[1] for part in self.ordering.split(", ")]
        ops = ["<" if direction == "DESC" else ">" for direction in directions]
        # (k0, k1, …) after (v0, v1, …) in the order: an earlier key beyond its value, or
        # equal to it and a later one beyond. The first key's bound alone goes on the index.
        ties, params = [], []
        for index in range(len(values)):
            equal = [f"p.k{i} = %s" for i in range(index)]
            ties.append(" AND ".join([*equal, f"p.k{index} {ops[index]} %s"]))
            params.extend(values[: index + 1])
        condition = f"p.k0 {ops[0]}= %s AND (({') OR ('.join(ties)}))"
        sqls, union_params = [], []
        for sql, part_params in self.compiled:
            # As above: compiled SQL and fixed aliases interpolated, values as params.
            part = f"SELECT * FROM ({sql}) p WHERE {condition}"  # noqa: S608
            sqls.append(f"({part} ORDER BY {self.ordering} LIMIT %s)")
            union_params.extend([*part_params, values[0], *params, count])
        union = " UNION ALL ".join(sqls)
        # Only the parts' compiled SQL and fixed aliases are interpolated; values are params.
        sql = f"SELECT u._id FROM ({union}) u ORDER BY {self.ordering} LIMIT %s"  # noqa: S608
        return RawSQL(sql, [*union_params, count])  # noqa: S611 - as said above


def _key(name):
    """What PartsUnion selects of an order's key: the column or the expression."""
    return name.expression if isinstance(name, OrderBy) else F(name.lstrip("-"))


def _descending(name) -> bool:
    return name.descending if isinstance(name, OrderBy) else name.startswith("-")


def last_page_start(count: int, per_page: int, orphans: int = 0) -> int:
    """The first row (from 0) of the last page of ``count`` rows, as Paginator pages them."""
    return (math.ceil(max(1, count - orphans) / per_page) - 1) * per_page


def key_among(model, ids: RawSQL) -> RawSQL:
    """A condition on rows of ``model`` (its table not aliased): the key is one of ``ids``
    (a subquery of ids, as PartsUnion's), as ``key = ANY(ARRAY(ids))``. The ids are then
    read once, as an InitPlan planned apart from the page's joins; as ``key IN (ids)``
    the planner joined their subquery (both parts' scans) into the search for the order of
    the joins: the page of "my requests" at offset 2500 at 1M planned in 2.3 ms, this way
    in 1.3 ms."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    key = f"{quote(model._meta.db_table)}.{quote(model._meta.pk.column)}"
    # Only the table's and key's names and the ids' compiled SQL are interpolated.
    return RawSQL(f"{key} = ANY(ARRAY({ids.sql}))", ids.params, output_field=BooleanField())  # noqa: S611


# Ordered unions of parts by the paginators' ``parts_key`` and order: compiled statements
# (a few kilobytes each), the same whenever the same list is shown again.
_KEPT_UNIONS = Memo(1024, 8 << 20)


# Longer ``?after=`` tokens are not read.
KEYSET_TOKEN_MAX = 200


def keyset_fields(model, order) -> list | None:
    """The model fields of ``order`` (names, "-" for descending) if a page can follow a row
    by their values: each the key or a column of the row that is never NULL."""
    fields = []
    for name in order:
        if not isinstance(name, str):
            return None
        bare = name.lstrip("-")
        try:
            field = model._meta.pk if bare == "pk" else model._meta.get_field(bare)
        except FieldDoesNotExist:
            return None
        if not field.concrete or field.is_relation or field.null:
            return None
        fields.append(field)
    return fields or None


def _order_mark(order) -> str:
    return f"{zlib.crc32(','.join(order).encode()):08x}"


def keyset_token(number: int, order, model, row: dict) -> str | None:
    """The ``?after=`` of page ``number + 1``: page ``number`` ended with ``row`` (a dict
    of the row's columns by attribute name), in ``order``."""
    fields = keyset_fields(model, order)
    if fields is None or any(field.attname not in row for field in fields):
        return None
    texts = []
    for field in fields:
        value = row[field.attname]
        texts.append(value.isoformat() if isinstance(value, datetime.date) else str(value))
    if any("~" in text for text in texts):
        return None
    return "~".join([str(number + 1), _order_mark(order), *texts])


def keyset_values(token: str, number: int, order, model) -> list | None:
    """The values of ``token`` (``keyset_token``) if it was made for page ``number`` in
    ``order``, else None (a link kept from another page or sort, or garbage)."""
    if not isinstance(token, str) or len(token) > KEYSET_TOKEN_MAX or "\x00" in token:
        return None
    fields = keyset_fields(model, order)
    bits = token.split("~")
    if fields is None or len(bits) != len(fields) + 2:
        return None
    if bits[0] != str(number) or bits[1] != _order_mark(order):
        return None
    try:
        values = [field.to_python(text) for field, text in zip(fields, bits[2:], strict=True)]
    except ValidationError:
        return None
    if any(value is None for value in values):
        return None
    for value in values:
        # A time as the token gives it (with its offset, keyset_token), in the dates a
        # person can mean: a naive one would be read in the server's zone.
        if isinstance(value, datetime.datetime) and timezone.is_naive(value):
            return None
        if isinstance(value, int) and not -(2**63) <= value < 2**63:  # a bigint's range
            return None
        if isinstance(value, datetime.date):
            try:
                validate_date_range(value)
            except ValidationError:
                return None
    return values


class ListPage(Page):
    """A page of BoundedPaginator, with ``next_after``: the next page's ``?after=``."""

    @cached_property
    def next_after(self) -> str | None:
        """Where this page ends, for the link to the next (None where pages are read by
        OFFSET only). The rows are the page's own, already read for the table."""
        keyset = self.paginator._keyset_order
        if keyset is None or not self.has_next():
            return None
        rows = list(getattr(self.object_list, "data", self.object_list))
        if not rows or not isinstance(rows[-1], dict):
            return None
        order, model = keyset
        return keyset_token(self.number, order, model, rows[-1])
