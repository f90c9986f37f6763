"""The segregation-of-duties report: who holds two services a rule keeps apart. Thin."""

from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from governance import selectors
from governance.filtersets import ConflictFilterSet
from governance.tables import ConflictTable
from itportal.csvexport import stream_csv
from itportal.roles import is_data_protection_officer, is_it_admin
from itportal.views import FilteredTableView

CSV_COLUMNS = ["person", "personnel_number", "department", "rule", "holds", "and_also", "since"]


class ConflictReportView(FilteredTableView):
    table_class = ConflictTable
    filterset_class = ConflictFilterSet
    template_name = "governance/conflicts.html"
    title = gettext_lazy("Segregation of duties")
    intro = gettext_lazy(
        "People who hold two services that a segregation-of-duties rule keeps apart. New "
        "orders and approvals of such pairs are refused; this list shows what was granted "
        "before a rule existed or outside the portal's workflow."
    )

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if not (is_it_admin(user) or is_data_protection_officer(user)):
            raise PermissionDenied(_("Only IT administration and data protection see this report."))
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.holder_conflicts()

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") != "csv":
            return super().get(request, *args, **kwargs)
        filterset = self.filterset_class(request.GET, queryset=self.get_queryset())
        rows = filterset.qs if filterset.is_valid() else filterset.queryset.none()
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return stream_csv(
            (
                {
                    "person": row.holder.display_name,
                    "personnel_number": row.holder.personnel_number,
                    "department": row.holder.department.name if row.holder.department else "",
                    "rule": row.rule_name,
                    "holds": row.item.name,
                    "and_also": row.second_item_name,
                    "since": timezone.localtime(row.granted_at).date().isoformat(),
                }
                for row in rows.order_by("rule_name", "holder_id").iterator(chunk_size=2000)
            ),
            CSV_COLUMNS,
            f"funktionstrennung-{stamp}.csv",
        )
