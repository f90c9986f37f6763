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

import threading
from collections.abc import Callable

from django.db import connections, router
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, get_related_populators

# The number the statement is compiled with: no row has it (ids are positive), and it
# appears once among the parameters, where each read puts its own number.
MARK = -7_350_918_264


class CompiledRows:
    """``build(number)`` (a queryset of ``model``'s rows, the number as one of its values)
    read for any number by a statement compiled once per database."""

    def __init__(self, model, build: Callable[[int], QuerySet]):
        self.model = model
        self.build = build
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def __call__(self, number: int, *, known: dict | None = None) -> list:
        """The rows for ``number``; ``known``: field name -> object each row refers to
        (as a related manager sets its instance on the rows it reads)."""
        db = router.db_for_read(self.model)
        compiled = self._compiled.get(db)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(db) or _Compiled(self.build(MARK).using(db))
                self._compiled[db] = compiled
        return compiled.read(db, number, known)


class _Compiled:
    def __init__(self, queryset: QuerySet):
        query = queryset.query
        if (
            queryset._iterable_class is not ModelIterable
            or query.annotations
            or query.extra
            or query.combinator
            or queryset._known_related_objects
            or queryset._prefetch_related_lookups
        ):
            raise ValueError("CompiledRows reads plain model rows only.")
        compiler = query.get_compiler(using=queryset.db)
        self.sql, params = compiler.as_sql()
        marks = [index for index, value in enumerate(params) if value == MARK]
        if len(marks) != 1:
            raise ValueError("The number's stand-in is not among the values exactly once.")
        self.mark = marks[0]
        self.params = list(params)
        select, klass_info = compiler.select, compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [column[0].target.attname for column in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, queryset.db)
        converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
        self.converters = list(converters.items())

    def read(self, db: str, number: int, known: dict | None) -> list:
        params = self.params.copy()
        params[self.mark] = number
        connection = connections[db]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        objects = []
        for values in rows:
            row = list(values)
            for position, (functions, expression) in self.converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
            instance = self.model.from_db(db, self.init_list, row[self.start : self.end])
            for populator in self.populators:
                populator.populate(row, instance)
            for name, value in (known or {}).items():
                setattr(instance, name, value)
            objects.append(instance)
        return objects
