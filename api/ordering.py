"""The API lists' ordering: ``?ordering=`` as DRF reads it, every order ending with the key."""

from rest_framework.filters import OrderingFilter

from itportal.inputs import ending_with_pk


class StableOrderingFilter(OrderingFilter):
    """DRF's OrderingFilter whose orders end with the rows' key, so offset pages neither
    share nor skip tied rows (itportal.inputs.ending_with_pk)."""

    def get_ordering(self, request, queryset, view):
        return ending_with_pk(queryset, super().get_ordering(request, queryset, view))
