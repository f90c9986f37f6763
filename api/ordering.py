"""The API lists' ordering: ``?ordering=`` as DRF reads it, every order ending with the id."""

from rest_framework.filters import OrderingFilter


class StableOrderingFilter(OrderingFilter):
    """Sorted by a field with ties (a state, a price), the pages of a list are separate
    queries with OFFSET, and PostgreSQL may return tied rows in another order for each: a
    row could come on two pages and another on none. Every order therefore ends with the
    id (newest first) unless it names the id already."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering or any(str(key).lstrip("-") in ("id", "pk") for key in ordering):
            return ordering
        # Rows of a model whose key is its id, not grouped (an id would split the groups).
        if queryset.model._meta.pk.name != "id" or queryset.query.group_by is not None:
            return ordering
        return [*ordering, "-id"]
