"""Model rows read by a statement compiled once, for the reads a page repeats on every view
with another number only (a request by its id, its steps, its events).

Building a queryset with its ``select_related`` joins and compiling it is most of the CPU
of such a read: the request page's request with its item, people, cost centre, rating and
group cost 2.7 ms, of which executing it and making the objects about a quarter. The
statement is the ORM's own, compiled with a stand-in for the number (``MARK``); each read
puts the number in its place among the parameters and makes the objects as Django's
``ModelIterable`` does (its columns' converters, the related objects of the joins).
tests/test_statements.py compares the rows with the ORM's.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import BooleanField, Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.expressions import OrderBy, RawSQL
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import ModelIterable, get_related_populators
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

from itportal.inputs import of_own_columns

# The number the statement is compiled with: no row has it (ids are positive), and it
# appears once among the parameters, where each read puts its own number.
MARK = -7_350_918_264
# The same for a number compared with a 32-bit column (an AutoField's id): Django finds no
# row for a value outside the column's range without asking (EmptyResultSet).
MARK_32 = -2_073_519_648


class CompiledRows:
    """``build(number)`` (a queryset of ``model``'s rows, the number as one of its values)
    read for any number by a statement compiled once per database.

    ``mark``: a text instead of a number where the rows are picked by a text (an item by
    its slug). ``annotated``: the queryset's annotations are values of each row (a
    subquery's array, not an aggregate), set on its object as the ORM sets them."""

    def __init__(
        self,
        model,
        build: Callable[[int], QuerySet],
        *,
        mark: int | str = MARK,
        annotated: bool = False,
    ):
        self.model = model
        self.build = build
        self.mark = mark  # the number's stand-in: MARK, or MARK_32 for a 32-bit column
        self.annotated = annotated
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def __call__(self, number: int, *, known: dict | None = None) -> list:
        """The rows for ``number``; ``known``: field name -> object each row refers to
        (as a related manager sets its instance on the rows it reads)."""
        db = router.db_for_read(self.model)
        compiled = self._compiled.get(db)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(db) or _Compiled(
                    self.build(self.mark), db, True, self.mark, annotated=self.annotated
                )
                self._compiled[db] = compiled
        return compiled.read(number, known)


def _refuse_unless_plain(queryset: QuerySet, annotated: bool = False) -> None:
    query = queryset.query
    if (
        queryset._iterable_class is not ModelIterable
        or (query.annotations and not annotated)
        or any(annotation.contains_aggregate for annotation in query.annotations.values())
        or query.extra
        or query.combinator
        or queryset._known_related_objects
        or queryset._prefetch_related_lookups
    ):
        raise ValueError("A compiled statement reads plain model rows only.")


class _Compiled:
    """A queryset of plain model rows compiled for one database: its SQL and parameters
    (with ``numbered``, ``MARK`` among them exactly once, each read's number in its place)
    and how a row becomes objects, as ``QuickModelIterable`` makes them."""

    def __init__(
        self, queryset: QuerySet, db: str, numbered: bool, mark: int | str = MARK, *,
        annotated: bool = False,
    ):  # fmt: skip
        _refuse_unless_plain(queryset, annotated)
        self.db = db
        compiler = queryset.query.get_compiler(using=db)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            if numbered:
                raise
            self.sql = None  # a condition no row meets: no query, as the ORM
            return
        self.sql, self.params, self.mark = sql, list(params), None
        if numbered:
            marks = [index for index, value in enumerate(params) if value == mark]
            if len(marks) != 1:
                raise ValueError("The number's stand-in is not among the values exactly once.")
            self.mark = marks[0]
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        init_list = [column[0].target.attname for column in select[self.start : self.end]]
        self.make = _maker(klass_info["model"], init_list, db)
        self.related = [_Related(p, db) for p in get_related_populators(klass_info, select, db)]
        converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
        self.converters = list(converters.items())
        self.annotations = list(compiler.annotation_col_map.items())

    def read(self, number: int | None = None, known: dict | None = None) -> list:
        if self.sql is None:
            return []
        params = self.params
        if self.mark is not None:
            params = params.copy()
            params[self.mark] = number
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        objects = []
        for values in rows:
            if self.converters:
                values = list(values)
                for position, (functions, expression) in self.converters:
                    value = values[position]
                    for function in functions:
                        value = function(value, expression, connection)
                    values[position] = value
            obj = self.make(values[self.start : self.end])
            for related in self.related:
                related.populate(values, obj)
            for name, position in self.annotations:  # as ModelIterable sets them
                setattr(obj, name, values[position])
            for name, value in (known or {}).items():
                setattr(obj, name, value)
            objects.append(obj)
        return objects


class QuickModelIterable(ModelIterable):
    """Django's ModelIterable, its objects (the row's and its ``select_related`` rows')
    made without ``Model.__init__`` where that would only set the columns read: a
    changelist's 25 rows with their item, people and users are a hundred objects, and
    ``from_db`` with ``__init__`` walking every field of each (36 of a request, most of
    them deferred) was a millisecond of the page.

    An object is made as ``from_db`` makes it (its state not adding, from ``db``; the
    columns read set in the instance's dictionary, in the fields' order) for a model
    whose ``__init__`` and ``from_db`` are Django's, whose columns have no descriptor
    that does something when set (a foreign key's id descriptor only forgets a cached
    object, and a new object has none) and that no pre_init or post_init receiver
    listens to; any other model's through ``from_db``. Anything else (annotations, known
    related objects) is Django's. tests/test_statements.py compares the objects."""

    def __iter__(self):
        queryset = self.queryset
        if queryset._known_related_objects or queryset.query.annotation_select:
            yield from super().__iter__()
            return
        db = queryset.db
        compiler = queryset.query.get_compiler(using=db)
        results = compiler.execute_sql(chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size)
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        make = _maker(klass_info["model"], init_list, db)
        related = [_Related(p, db) for p in get_related_populators(klass_info, select, db)]
        for row in compiler.results_iter(results):
            obj = make(row[start:end])
            for populator in related:
                populator.populate(row, obj)
            yield obj


class KeptRows:
    """The model objects of a queryset whose statement is the same on every view (a filter
    form's options: the queryset declared on its class), its SQL compiled once per
    database (``_Compiled``, as ``CompiledRows`` without a number): for the few categories
    or cost centres a filter offers, cloning and compiling the queryset was most of the
    read. tests/test_statements.py compares the objects with the ORM's."""

    def __init__(self, queryset: QuerySet):
        _refuse_unless_plain(queryset)
        self.queryset = queryset
        self._compiled: dict[str, _Compiled] = {}

    def __call__(self, db: str | None = None) -> list:
        db = db or self.queryset.db
        compiled = self._compiled.get(db)
        if compiled is None:  # two threads may both compile it: the same statement
            compiled = self._compiled[db] = _Compiled(self.queryset, db, False)
        return compiled.read()


class _Related:
    """RelatedPopulator.populate with the object made by ``_maker``."""

    def __init__(self, populator, db: str):
        self.populator = populator
        self.make = _maker(populator.model_cls, populator.init_list, db)
        self.related = [_Related(p, db) for p in populator.related_populators]

    def populate(self, row, from_obj) -> None:
        populator = self.populator
        if populator.reorder_for_init:
            data = populator.reorder_for_init(row)
        else:
            data = row[populator.cols_start : populator.cols_end]
        if data[populator.pk_idx] is None:
            obj = None
        else:
            obj = self.make(data)
            for related in self.related:
                related.populate(row, obj)
        populator.local_setter(from_obj, obj)
        if obj is not None:
            populator.remote_setter(obj, from_obj)


def _maker(model, init_list: list[str], db: str) -> Callable:
    """values -> ``model.from_db(db, init_list, values)``, without ``__init__`` where that
    is the same (QuickModelIterable)."""
    if not _plain(model) or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return lambda values: model.from_db(db, init_list, values)
    concrete = model._meta.concrete_fields
    if len(init_list) == len(concrete):
        names = [field.attname for field in concrete]
    else:  # as from_db: the values are the read fields' in the fields' order
        chosen = set(init_list)
        names = [field.attname for field in concrete if field.attname in chosen]
    new = model.__new__

    def make(values):
        obj = new(model)
        state = ModelState()
        state.adding = False
        state.db = db
        attributes = obj.__dict__
        attributes["_state"] = state
        attributes.update(zip(names, values, strict=True))
        return obj

    return make


_PLAIN: dict[type, bool] = {}


def _plain(model) -> bool:
    """Whether an object of ``model`` made by ``from_db`` is its state and its columns in
    its dictionary, nothing else (kept per model)."""
    plain = _PLAIN.get(model)
    if plain is None:
        plain = (
            model.__init__ is Model.__init__
            and model.from_db.__func__ is Model.from_db.__func__
            and all(
                "__init__" not in vars(base)
                for base in model.__mro__[model.__mro__.index(Model) + 1 : -1]
            )
            and all(_sets_plainly(model, field.attname) for field in model._meta.concrete_fields)
        )
        _PLAIN[model] = plain
    return plain


def _sets_plainly(model, name: str) -> bool:
    descriptor = inspect.getattr_static(model, name, None)
    return type(descriptor) in (DeferredAttribute, ForeignKeyDeferredAttribute) or not hasattr(
        type(descriptor), "__set__"
    )


def kept_statement_order(queryset: QuerySet) -> tuple[str, ...] | None:
    """The order of ``queryset`` if a statement kept for its columns and order can read
    its rows with only its conditions compiled per view: model rows picked by conditions
    on the model's own columns (the pager's ``pk__in`` its chosen ids), ordered by named
    fields or by expressions of its own columns (the queue's rank of its item's name). None
    for any other (joined, sliced, combined, distinct, annotated, unordered)."""
    query = queryset.query
    order = tuple(query.order_by)
    if (
        not order
        or not all(
            isinstance(key, str)
            or (isinstance(key, OrderBy) and of_own_columns(queryset.model, key))
            for key in order
        )
        or queryset._iterable_class is not ModelIterable
        # Conditions on the model's own columns alone: its table the one alias, or none
        # where they are raw SQL naming it (key_among's ids of a page from parts).
        or len(query.alias_map) > 1
        or not query.where
        or query.is_sliced
        or query.combinator
        or query.distinct
        or query.annotations
        or query.extra
    ):
        return None
    return order


# Where a kept statement's conditions go: a constant the ORM compiles as it is.
_CONDITIONS_MARK = "(1 = 1 /* the page's conditions */)"
_PLACEHOLDER = re.compile(r"%[%s]")


def conditions_mark() -> RawSQL:
    """The stand-in condition to filter a kept statement's queryset by
    (``split_at_conditions``)."""
    return RawSQL(_CONDITIONS_MARK, (), output_field=BooleanField())  # noqa: S611 - a constant


def split_at_conditions(rows: QuerySet) -> tuple[str, str, tuple, tuple]:
    """``rows``, filtered by ``conditions_mark()`` alone, as the ORM compiles it: the SQL
    before and after the conditions and the parameters of each part, for a statement kept
    per columns and order whose conditions alone are compiled per view
    (``read_with_conditions``)."""
    sql, params = rows.query.sql_with_params()
    head, found, tail = sql.partition(_CONDITIONS_MARK)
    if not found or _CONDITIONS_MARK in tail or "WHERE" not in head:
        raise RuntimeError(
            f"{rows.model.__name__} rows: the conditions' stand-in is not where expected"
        )
    before = sum(placeholder == "%s" for placeholder in _PLACEHOLDER.findall(head))
    return head, tail, tuple(params[:before]), tuple(params[before:])


def read_with_conditions(queryset: QuerySet, statement: tuple) -> tuple[list[str], list]:
    """The column names and rows of a kept ``statement`` (``split_at_conditions``) with the
    conditions of ``queryset`` (whose order is ``kept_statement_order``) in its place."""
    head, tail, before, after = statement
    query = queryset.query
    where, where_params = query.get_compiler(using=queryset.db).compile(query.where)
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"{head}({where}){tail}", (*before, *where_params, *after))
        return [column.name for column in cursor.description], cursor.fetchall()
