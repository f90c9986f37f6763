"""The IT admins' status page of long runs: progress, outcome and duration. Thin."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from itportal.roles import is_it_admin
from itportal.views import FilteredTableView
from runs.filtersets import RunFilterSet
from runs.models import Run
from runs.tables import RunTable


class RunListView(FilteredTableView):
    table_class = RunTable
    filterset_class = RunFilterSet
    title = gettext_lazy("Long runs")
    intro = gettext_lazy(
        "Directory sync, reconciliation, imports and clean-ups: how far they have come, "
        "how they ended and how long they took. Reload the page to follow a run."
    )

    def dispatch(self, request, *args, **kwargs):
        if not is_it_admin(request.user):
            raise PermissionDenied(_("Only IT administration sees the long runs."))
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return Run.objects.all()
