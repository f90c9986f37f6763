"""Controlling pages: thin views over the selectors, for controlling and IT admins."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from itportal.roles import is_controlling, is_it_admin
from itportal.views import FilteredTableView
from metrics.controlling import exports, selectors
from metrics.controlling.filtersets import ControllingFilterSet, UsageFilterSet
from metrics.controlling.tables import CostTable, UsageTable
from requests_app.models import ServiceRequest


def may_see_controlling(user) -> bool:
    return is_controlling(user) or is_it_admin(user)


class ControllingRequiredMixin:
    def dispatch(self, request, *args, **kwargs):
        if not may_see_controlling(request.user):
            raise PermissionDenied(_("Only IT controlling and IT administration see this page."))
        return super().dispatch(request, *args, **kwargs)


class ControllingTableView(ControllingRequiredMixin, FilteredTableView):
    template_name = "controlling/table_page.html"
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        return ServiceRequest.objects.all()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["period"] = self.filterset.period()
        return context


class CostView(ControllingTableView):
    table_class = CostTable
    filterset_class = ControllingFilterSet
    title = gettext_lazy("Costs per cost centre")
    intro = gettext_lazy(
        "Internal cost allocation at the prices valid when each request was placed: "
        "one-off costs in the month the request was fulfilled, monthly costs for every "
        "month in which the entitlement was active."
    )
    export = True

    def get_table_data(self):
        first, last = self.filterset.period()
        return selectors.costs_per_cost_centre(self.object_list, first=first, last=last)


class UsageView(ControllingTableView):
    table_class = UsageTable
    filterset_class = UsageFilterSet
    title = gettext_lazy("Usage per service")
    intro = gettext_lazy(
        "Orders per month (by submission) and entitlements active at the end of each month."
    )

    def get_table_kwargs(self):
        if self.filterset.breakdown_value() == selectors.BREAKDOWN_SERVICE:
            return {"exclude": ("group",)}
        return {}

    def get_table_data(self):
        first, last = self.filterset.period()
        return selectors.usage_per_service(
            self.object_list, first=first, last=last, breakdown=self.filterset.breakdown_value()
        )


class CostExportView(ControllingRequiredMixin, View):
    """``?format=csv`` or ``?format=xlsx`` with the same filters as the cost page."""

    formats = {
        "csv": (exports.costs_csv, "text/csv; charset=utf-8", "csv"),
        "xlsx": (
            exports.costs_xlsx,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    }

    def get(self, request, fmt):
        if fmt not in self.formats:
            raise Http404
        render, content_type, extension = self.formats[fmt]
        filterset = ControllingFilterSet(request.GET, queryset=ServiceRequest.objects.all())
        requests = filterset.qs if filterset.is_valid() else ServiceRequest.objects.none()
        first, last = filterset.period()
        rows = selectors.costs_per_cost_centre(requests, first=first, last=last)
        response = HttpResponse(render(rows), content_type=content_type)
        filename = f"kosten_{first:%Y-%m}_{last:%Y-%m}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
