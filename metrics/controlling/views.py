"""Controlling pages: thin views over the selectors, for controlling and IT admins."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django_tables2 import RequestConfig

from itportal.roles import is_controlling, is_it_admin
from itportal.views import FilteredTableView
from metrics.controlling import exports, selectors
from metrics.controlling.filtersets import ControllingFilterSet, UsageFilterSet
from metrics.controlling.tables import (
    AutomationTable,
    CostTable,
    LeadTimeTable,
    RatingCommentTable,
    SatisfactionTable,
    UsageTable,
)
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


class LeadTimeView(ControllingTableView):
    """Lead times (p50/p90) and the automation rate, per service and overall."""

    table_class = LeadTimeTable
    filterset_class = ControllingFilterSet
    table_pagination = False  # one row per service: the catalogue, not the requests, sets it
    title = gettext_lazy("Lead times and automation")
    csv_url_name = "controlling:lead_times_csv"
    intro = gettext_lazy(
        "Requests fulfilled in the period, by service. Approval waiting runs from submission "
        "to approval and counts only requests with approval steps; fulfilment runs from "
        "approval to fulfilment, waiting in the queue included; the total from submission to "
        "fulfilment. All in calendar time. p50 is the median: half of the requests were "
        "faster; p90: nine in ten were faster."
    )
    notes = (
        gettext_lazy(
            "Fulfilled automatically: the automation completed the request and nobody took, "
            "completed, failed or reopened it by hand, or marked one of its provisioning jobs "
            "done by hand."
        ),
    )

    def rows(self):
        if not hasattr(self, "_rows"):
            first, last = self.filterset.period()
            self._rows = selectors.lead_times_per_service(self.object_list, first=first, last=last)
        return self._rows

    def get_table_data(self):
        return self.rows()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["extra_tables"] = [AutomationTable(self.rows())]
        return context


class SatisfactionView(ControllingTableView):
    """Ratings per service and the requesters' comments (without names)."""

    table_class = SatisfactionTable
    filterset_class = ControllingFilterSet
    table_pagination = False
    title = gettext_lazy("Satisfaction")
    csv_url_name = "controlling:satisfaction_csv"
    intro = gettext_lazy(
        "Requesters rate a fulfilled request from 1 (very dissatisfied) to 5 (very "
        "satisfied), with an optional comment, until 30 days after fulfilment. Shown for the "
        "requests fulfilled in the period."
    )

    def get_table_data(self):
        first, last = self.filterset.period()
        return selectors.satisfaction_per_service(self.object_list, first=first, last=last)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        first, last = self.filterset.period()
        comments = RatingCommentTable(
            selectors.rating_comments(self.object_list, first=first, last=last),
            prefix="comments-",
        )
        RequestConfig(self.request, paginate={"per_page": 25}).configure(comments)
        context["extra_tables"] = [comments]
        return context


class CsvExportView(ControllingRequiredMixin, View):
    """A CSV download of one controlling table, with the same filters as its page."""

    selector = None  # (requests, *, first, last) -> rows
    render = None  # rows -> bytes
    filename = ""

    def get(self, request):
        filterset = ControllingFilterSet(request.GET, queryset=ServiceRequest.objects.all())
        requests = filterset.qs if filterset.is_valid() else ServiceRequest.objects.none()
        first, last = filterset.period()
        rows = type(self).selector(requests, first=first, last=last)
        response = HttpResponse(type(self).render(rows), content_type="text/csv; charset=utf-8")
        filename = f"{self.filename}_{first:%Y-%m}_{last:%Y-%m}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class LeadTimeCsvView(CsvExportView):
    selector = selectors.lead_times_per_service
    render = exports.lead_times_csv
    filename = "durchlaufzeiten"


class SatisfactionCsvView(CsvExportView):
    selector = selectors.satisfaction_per_service
    render = exports.satisfaction_csv
    filename = "zufriedenheit"


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
