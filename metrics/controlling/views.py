"""Controlling pages: thin views over the selectors, for controlling and IT admins."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django_tables2 import RequestConfig
from django_tables2.rows import BoundRows

from catalogue.models import CatalogueItem
from itportal.inputs import BoundedPaginator, queryset_of
from itportal.roles import is_controlling, is_it_admin
from itportal.views import FilteredTableView
from metrics.controlling import exports, figures, rollup, selectors
from metrics.controlling.filtersets import (
    ControllingFilterSet,
    ForecastFilterSet,
    PoolFilterSet,
    RarelyOrderedFilterSet,
    UsageFilterSet,
)
from metrics.controlling.forecast import ANOMALY_MIN_HISTORY, BAND_WIDTH, SEASONAL_MIN_MONTHS
from metrics.controlling.tables import (
    AnomalyTable,
    AutomationTable,
    CostTable,
    ForecastMonthColumn,
    ForecastTable,
    LeadTimeTable,
    PoolTable,
    RareTable,
    RatingCommentTable,
    ReclaimTable,
    SatisfactionTable,
    UsageTable,
)
from metrics.templatetags.reports import REPORT_BODIES
from metrics.templatetags.reports_pages import kept_view_content, view_content_key
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

    show_period = True
    # The figures' markup (charts and tables) kept per process (``body_key``).
    keep_body = False
    kept_body = None  # this view's kept markup, if any: then no table or chart is built

    def get_queryset(self):
        return ServiceRequest.objects.all()

    def get(self, request, *args, **kwargs):
        # The plan, the figures, and what the template still reads (the pager's count, a
        # page of comments, the filter form's options) in one snapshot (rollup.snapshot).
        with rollup.snapshot():
            response = super().get(request, *args, **kwargs)
            response.render()
        return response

    def body_key(self) -> tuple | None:
        """The key of the figures' markup (templates/controlling/table_page.html, between
        ``keep_report`` and its end), or None to build and render it: everything it shows
        is a function of the rows (their token: ``selectors.ReportRows``), the period
        (the charts' months; the default one moves with the date), the query string
        (page, filters, breakdown), the language, the time zone and the script prefix.
        Building the tables and charts and keying their rows one by one were a third of
        these pages' CPU."""
        if not self.keep_body:
            return None
        token = getattr(self.rows(), "token", 0)
        if not token:
            return None
        return (
            type(self),
            token,
            self.filterset.period(),
            self.request.get_full_path(),
            translation.get_language(),
            timezone.get_current_timezone_name(),
            get_script_prefix(),
        )

    def get_context_data(self, **kwargs):
        key = self.body_key()
        self.kept_body = None if key is None else REPORT_BODIES.get(key)
        context = super().get_context_data(**kwargs)
        if self.show_period:
            context["period"] = self.filterset.period()
        context["body_key"] = key
        context["kept_body"] = self.kept_body
        context["charts"] = self.get_charts() if self.kept_body is None else []
        return context

    def get_table(self, **kwargs):
        if self.kept_body is not None:
            return None  # the kept markup shows it
        return super().get_table(**kwargs)

    def get_charts(self):
        """Charts shown above the table; built from the rows the table shows."""
        return []

    def rows(self):
        """The selector's rows, computed once per request for the table and the charts."""
        if not hasattr(self, "_rows"):
            self._rows = self.get_rows()
        return self._rows

    def get_table_data(self):
        # A copy: the rows may be kept and shared (selectors.kept_rows), a table may sort.
        return list(self.rows())


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
    keep_body = True

    def get_rows(self):
        first, last = self.filterset.period()
        return selectors.costs_per_cost_centre(self.filterset.scope(), first=first, last=last)

    def get_charts(self):
        return [figures.cost_chart(self.rows(), *self.filterset.period())]


class UsageView(ControllingTableView):
    table_class = UsageTable
    filterset_class = UsageFilterSet
    title = gettext_lazy("Usage per service")
    intro = gettext_lazy(
        "Orders per month (by submission) and entitlements active at the end of each month."
    )
    keep_body = True

    def get_table_kwargs(self):
        if self.filterset.breakdown_value() == selectors.BREAKDOWN_SERVICE:
            return {"exclude": ("group",)}
        return {}

    def get_rows(self):
        first, last = self.filterset.period()
        return selectors.usage_per_service(
            self.filterset.scope(),
            first=first,
            last=last,
            breakdown=self.filterset.breakdown_value(),
        )

    def get_charts(self):
        return [figures.usage_chart(self.rows(), *self.filterset.period())]


class PoolView(ControllingTableView):
    table_class = PoolTable
    filterset_class = PoolFilterSet
    title = gettext_lazy("Licence pools")
    show_period = False
    template_name = "controlling/pools.html"

    def get_queryset(self):
        return CatalogueItem.objects.all()

    def get_rows(self):
        rows = selectors.licence_pools(self.object_list)
        if self.filterset.attention_only_value():
            rows = [row for row in rows if row.is_warning]
        return rows

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["warnings"] = [row for row in self.rows() if row.is_warning]
        context["trend_days"] = selectors.POOL_TREND_DAYS
        return context

    def get_charts(self):
        return [figures.pool_chart(self.rows())] if self.rows() else []


class ForecastView(ControllingTableView):
    table_class = ForecastTable
    filterset_class = ForecastFilterSet
    title = gettext_lazy("Demand and forecast")
    show_period = False
    template_name = "controlling/forecast.html"

    def history(self):
        last = selectors.last_complete_month()
        return selectors.add_months(last, -(self.filterset.history_value() - 1)), last

    def get_rows(self):
        return selectors.kept_demand_forecast(
            self.filterset.scope(), history_months=self.filterset.history_value()
        )

    def get_table_kwargs(self):
        last = self.history()[1]
        months = [selectors.add_months(last, k) for k in (1, 2, 3)]
        return {
            "extra_columns": [
                (f"month_{i}", ForecastMonthColumn(i, verbose_name=month.strftime("%m/%Y")))
                for i, month in enumerate(months)
            ]
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["history"] = self.history()
        context["seasonal_min_months"] = SEASONAL_MIN_MONTHS
        return context

    def get_charts(self):
        return [figures.kept_demand_chart(self.rows(), *self.history())]


class RarelyOrderedView(ControllingTableView):
    table_class = RareTable
    filterset_class = RarelyOrderedFilterSet
    title = gettext_lazy("Rarely ordered services")

    @property
    def intro(self):
        return _(
            "Active services with fewer than %(count)s orders in the period, with their "
            "last order: candidates to retire. Services added recently are naturally rare; "
            "compare the date they entered the catalogue."
        ) % {"count": self.filterset.fewer_than_value()}

    def get_rows(self):
        if not self.filterset.is_valid():
            return []
        first, last = self.filterset.period()
        items = CatalogueItem.objects.active()
        category = self.filterset.category_value()
        if category is not None:
            items = items.filter(category=category)
        return selectors.rarely_ordered(
            self.filterset.scope(),
            items,
            first=first,
            last=last,
            fewer_than=self.filterset.fewer_than_value(),
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

    keep_body = True

    def get_rows(self):
        first, last = self.filterset.period()
        return selectors.lead_times_per_service(self.filterset.scope(), first=first, last=last)

    def get_charts(self):
        return [figures.lead_time_chart(self.rows())] if len(self.rows()) > 1 else []

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.kept_body is None:
            context["extra_tables"] = [AutomationTable(list(self.rows()))]
        return context


class CommentPaginator(BoundedPaginator):
    """The comments, latest first, counted up to 1,000 in the list's order.

    Counted unordered, the comments of a year at a million requests were hash-joined with
    the year's 250,000 fulfilled requests (0.3 s); in the list's order the count walks the
    partial index of commented ratings (``rating_comment_idx``) from the newest and looks
    up each one's request, so it costs what it counts. Beyond the bound the pager says
    "more than 1,000" and shows the newest thousand, which is what the list is for. Given
    ``counted`` (the satisfaction page: the roll-up's ratings with a comment, exact), it
    counts nothing."""

    count_limit = 1000

    @cached_property
    def _counted(self) -> int:
        if self.counted is not None:  # the satisfaction page's: the roll-up's count
            return min(self.counted, self.count_limit + 1)
        queryset = queryset_of(self.object_list)
        if queryset is None:
            return min(len(self.object_list), self.count_limit + 1)
        # Of the ratings only their ids: counted with the page's joins (request, service),
        # the count at a million requests probed every comment's request twice (76 ms).
        return queryset.values("pk")[: self.count_limit + 1].count()

    def page(self, number):
        if self.validate_number(number) == 1:
            # The first slice of the rows, as BoundedPaginator reads a first page without
            # ``read``; it looks for no queryset, so the comments' one is not made
            # (selectors.CommentRows) where the page's statement is kept.
            return Paginator.page(self, number)
        page = super().page(number)
        rows = page.object_list
        if isinstance(rows, BoundRows) and isinstance(rows.data, QuerySet):
            # Past the first page the pager chose the page's ratings by id: as values too.
            page.object_list = BoundRows(
                # One query, however often the rows are read (iter: list() would ask the
                # length, a count of every comment, first).
                list(iter(selectors.CommentRows(rows.data))),
                table=rows.table,
                pinned_data=rows.pinned_data,
            )
        return page


class SatisfactionView(ControllingTableView):
    """Ratings per service and the requesters' comments (without names)."""

    table_class = SatisfactionTable
    filterset_class = ControllingFilterSet
    table_pagination = False
    title = gettext_lazy("Satisfaction")
    csv_url_name = "controlling:satisfaction_csv"
    template_name = "controlling/satisfaction.html"
    intro = gettext_lazy(
        "Requesters rate a fulfilled request from 1 (very dissatisfied) to 5 (very "
        "satisfied), with an optional comment, until 30 days after fulfilment. Shown for the "
        "requests fulfilled in the period."
    )

    def get_rows(self):
        first, last = self.filterset.period()
        return selectors.satisfaction_per_service(self.filterset.scope(), first=first, last=last)

    def get_charts(self):
        rated = [row for row in self.rows() if row.rated and not row.is_total]
        return [figures.satisfaction_chart(self.rows())] if rated else []

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        first, last = self.filterset.period()
        # The requests are the filter set's (object_list), so its scope and the period say
        # what the comments are: the key of their page statements.
        comments = RatingCommentTable(
            selectors.CommentRows(
                lambda: selectors.rating_comments(self.object_list, first=first, last=last),
                key=("satisfaction", self.filterset.scope(), first, last),
            ),
            prefix="comments-",
        )
        rows = self.rows()
        # The roll-up's count of the comments (the total row's): the pager need not look
        # up the newest thousand comments' requests to count them.
        counted = rows[-1].commented if rows else 0
        RequestConfig(
            self.request,
            paginate={"per_page": 25, "paginator_class": CommentPaginator, "counted": counted},
        ).configure(comments)
        context["extra_tables"] = [comments]
        return context


CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ReportExportView(ControllingRequiredMixin, View):
    """A download of one controlling report with the same filters as its page.

    Filters the page shows as invalid give a file with the header only, as the page shows an
    empty table."""

    selector = None  # (scope, *, first, last) -> rows
    formats = {}  # extension -> (render: rows -> iterator of bytes, content type)
    filename = ""

    def get(self, request, fmt="csv"):
        if fmt not in self.formats:
            raise Http404
        render, content_type = self.formats[fmt]
        filterset = ControllingFilterSet(request.GET, queryset=ServiceRequest.objects.all())
        scope = filterset.scope()  # validates the filters, so the period is the one asked for
        first, last = filterset.period()
        # The rows are a list, read in one snapshot (rollup.snapshot) before they stream.
        with rollup.snapshot():
            rows = type(self).selector(scope, first=first, last=last)
        response = StreamingHttpResponse(render(rows), content_type=content_type)
        filename = f"{self.filename}_{first:%Y-%m}_{last:%Y-%m}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class CostExportView(ReportExportView):
    """``kosten.csv`` or ``kosten.xlsx`` for the finance system."""

    selector = selectors.costs_per_cost_centre
    formats = {"csv": (exports.costs_csv, CSV), "xlsx": (exports.costs_xlsx, XLSX)}
    filename = "kosten"


class LeadTimeCsvView(ReportExportView):
    selector = selectors.lead_times_per_service
    formats = {"csv": (exports.lead_times_csv, CSV)}
    filename = "durchlaufzeiten"


class SatisfactionCsvView(ReportExportView):
    selector = selectors.satisfaction_per_service
    formats = {"csv": (exports.satisfaction_csv, CSV)}
    filename = "zufriedenheit"


# --- demand anomalies and rarely used entitlements (issue 16, docs/assistance.md) -----------


def _anomalies_on():
    # metrics reads from every app; assist says whether this part of the assistance is on.
    from assist.selectors import enabled

    if not enabled("anomalies"):
        raise Http404


ANOMALY_MONTHS = 12
RECLAIM_SHOWN = 100


class AnomalyView(ControllingTableView):
    """Months whose orders fell outside the forecast's band, and entitlements to reclaim."""

    table_class = AnomalyTable
    filterset_class = ForecastFilterSet
    title = gettext_lazy("Unusual demand and rarely used entitlements")
    show_period = False
    template_name = "controlling/anomalies.html"
    csv_url_name = "controlling:anomalies_csv"

    def dispatch(self, request, *args, **kwargs):
        _anomalies_on()
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        from assist import reclaim

        # Candidates never computed yet are computed (and written) now, before the page's
        # read-only snapshot; after the permission check, as that takes a while.
        reclaim.ensure_stored()
        return super().get(request, *args, **kwargs)

    def get_rows(self):
        return selectors.kept_demand_anomalies(
            self.filterset.scope(),
            months=ANOMALY_MONTHS,
            history_months=self.filterset.history_value(),
        )

    kept_content = None

    def get_context_data(self, **kwargs):
        from assist import reclaim

        as_of, candidates = reclaim.stored_rows(limit=RECLAIM_SHOWN)
        # Both tables' rows are kept objects (the flagged months, the candidates): the
        # content's key is made of them before any table is built, and where its markup
        # is kept no table is (templates/controlling/anomalies.html).
        key = view_content_key(
            self, self.rows(), candidates, as_of, settings.ASSIST_IDLE_DAYS, RECLAIM_SHOWN
        )
        self.kept_content = kept_view_content(key)
        context = super().get_context_data(**kwargs)
        context["content_key"] = key
        context["kept_content"] = self.kept_content
        context["months"] = ANOMALY_MONTHS
        context["width"] = BAND_WIDTH
        context["min_history"] = ANOMALY_MIN_HISTORY
        context["idle_days"] = settings.ASSIST_IDLE_DAYS
        context["reclaim_shown"] = RECLAIM_SHOWN
        context["reclaim_as_of"] = as_of
        if self.kept_content is None:
            context["extra_tables"] = [ReclaimTable(candidates)]
        return context

    def get_table(self, **kwargs):
        if self.kept_content is not None:
            return None  # the kept markup shows it
        return super().get_table(**kwargs)


class AnomalyCsvView(ControllingRequiredMixin, View):
    """The page's months as CSV, with the same filters."""

    def get(self, request):
        _anomalies_on()
        filterset = ForecastFilterSet(request.GET, queryset=ServiceRequest.objects.all())
        with rollup.snapshot():
            rows = selectors.kept_demand_anomalies(
                filterset.scope(), months=ANOMALY_MONTHS, history_months=filterset.history_value()
            )
        response = StreamingHttpResponse(exports.anomalies_csv(rows), content_type=CSV)
        response["Content-Disposition"] = 'attachment; filename="auffaellige_monate.csv"'
        return response


class ReclaimCsvView(ControllingRequiredMixin, View):
    """Every candidate to reclaim (not only the page's first hundred) as CSV."""

    def get(self, request):
        from assist import reclaim

        _anomalies_on()
        rows = reclaim.reclaim_candidates()
        response = StreamingHttpResponse(exports.reclaim_csv(rows), content_type=CSV)
        response["Content-Disposition"] = 'attachment; filename="rueckholung_berechtigungen.csv"'
        return response
