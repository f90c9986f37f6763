"""``field__any=ArraySubquery(...)``: ``field = ANY(ARRAY(SELECT …))``.

``field IN (SELECT …)`` inside an OR is a hashed subplan the planner cannot answer from an
index, so an OR of several such conditions scans every candidate row. ``= ANY(ARRAY(…))``
runs the subquery once (an InitPlan) and is an index condition, so each branch of the OR
becomes an index scan and the planner combines them (BitmapOr).
"""

from django.db.models import ForeignKey, IntegerField, Lookup


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
