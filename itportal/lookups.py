"""``field__any=ArraySubquery(...)``: ``field = ANY(ARRAY(SELECT …))``.

``field IN (SELECT …)`` inside an OR is a hashed subplan the planner cannot answer from an
index, so an OR of several such conditions scans every candidate row. ``= ANY(ARRAY(…))``
runs the subquery once (an InitPlan) and is an index condition, so each branch of the OR
becomes an index scan and the planner combines them (BitmapOr).
"""

from django.db.models import BooleanField, ForeignKey, Func, IntegerField, Lookup


class AnyOf(Lookup):
    lookup_name = "any"

    def get_db_prep_lookup(self, value, connection):
        return ("%s", [value])

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def register() -> None:
    for field in (ForeignKey, IntegerField):
        field.register_lookup(AnyOf)


class IsTrue(Func):
    """``(condition) IS TRUE``: the same rows as the condition, but one term to the planner.

    PostgreSQL proves a partial index usable from the query's conditions. A condition on
    ``state`` (``state = 'approved' OR …``) also proves every other partial index on open
    states (``state = ANY(open states)``), and the planner then ANDs their bitmaps and
    multiplies their selectivities as if unrelated: eight rows expected where 2,500 come,
    so a bitmap heap scan of 2,500 table pages won over the index-only scan of the queue's
    own index. Wrapped, the condition proves only indexes whose predicate is the same
    wrapped condition; its selectivity is still estimated from the condition inside.
    """

    template = "(%(expressions)s) IS TRUE"
    output_field = BooleanField()
