"""SLA compliance per service and month, for the resolution and the response target: of the
requests fulfilled in the month, those with a fulfilment deadline and how many were fulfilled
by it (the due date moved by the time on hold), and those with a response target and how many
got their first response by it. Read live over the fulfilled requests of the period (the
deadlines are not part of the monthly roll-ups); one grouped query."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import django_tables2 as tables
from django.db.models import Count, F, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from metrics.controlling.exports import _csv, escape_formula
from metrics.controlling.filtersets import ControllingFilterSet
from metrics.controlling.rollup import Scope
from metrics.controlling.selectors import period_bounds
from metrics.controlling.tables import MonthColumn, TotalRowTable
from metrics.controlling.views import ControllingTableView, ReportExportView
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest


def _share(met: int, of: int) -> str:
    if not of:
        return ""
    return f"{100 * met / of:.1f} %".replace(".", ",")


@dataclass(frozen=True)
class SlaRow:
    month: datetime.date | None  # None: the whole period
    service: str
    fulfilled: int  # with a resolution target (a fulfilment deadline)
    met: int
    is_total: bool = False
    responded: int = 0  # with a response target
    response_met: int = 0

    @property
    def missed(self) -> int:
        return self.fulfilled - self.met

    @property
    def share(self) -> str:
        return _share(self.met, self.fulfilled)

    @property
    def response_missed(self) -> int:
        return self.responded - self.response_met

    @property
    def response_share(self) -> str:
        return _share(self.response_met, self.responded)


def _scoped(requests, scope: Scope):
    if scope.department_id is not None:
        requests = requests.filter(beneficiary__department_id=scope.department_id)
    if scope.cost_centre_id is not None:
        requests = requests.filter(cost_centre_id=scope.cost_centre_id)
    if scope.category_id is not None:
        requests = requests.filter(item__category_id=scope.category_id)
    if scope.item_id is not None:
        requests = requests.filter(item_id=scope.item_id)
    return requests


def sla_compliance(scope: Scope, *, first: datetime.date, last: datetime.date) -> list[SlaRow]:
    """Per month and service: fulfilled requests that had a deadline, and those fulfilled on
    or before it (the local date of fulfilment); those that had a response target, and those
    answered by it (never answered: missed); the last row totals the period."""
    if scope.nothing:
        return []
    starts, ends = period_bounds(first, last)
    requests = _scoped(
        ServiceRequest.objects.filter(
            state=RequestState.FULFILLED,
            closed_at__gte=starts,
            closed_at__lt=ends,
        ).filter(Q(fulfilment_due_on__isnull=False) | Q(response_due_at__isnull=False)),
        scope,
    )
    tz = timezone.get_default_timezone()
    grouped = (
        requests.annotate(month=TruncMonth("closed_at", tzinfo=tz))
        .values("month", "item__name")
        .annotate(
            fulfilled=Count("id", filter=Q(fulfilment_due_on__isnull=False)),
            met=Count("id", filter=Q(closed_at__date__lte=F("fulfilment_due_on"))),
            responded=Count("id", filter=Q(response_due_at__isnull=False)),
            response_met=Count("id", filter=Q(responded_at__lte=F("response_due_at"))),
        )
        .order_by("month", "item__name")
    )
    rows = [
        SlaRow(
            row["month"].date(),
            row["item__name"],
            row["fulfilled"],
            row["met"],
            responded=row["responded"],
            response_met=row["response_met"],
        )
        for row in grouped
    ]
    if rows:
        rows.append(
            SlaRow(
                None,
                "",
                sum(r.fulfilled for r in rows),
                sum(r.met for r in rows),
                is_total=True,
                responded=sum(r.responded for r in rows),
                response_met=sum(r.response_met for r in rows),
            )
        )
    return rows


class _Month(MonthColumn):
    def render(self, value, record):
        return _("All months") if record.is_total else super().render(value)


class SlaTable(TotalRowTable):
    caption = gettext_lazy(
        "Requests fulfilled in the period that had a fulfilment deadline (the service's "
        "resolution target in working days from approval, moved by the time on hold) and how "
        "many were fulfilled by it; those that had a response target (working hours) and how "
        "many got their first response by it"
    )

    month = _Month(verbose_name=gettext_lazy("Month"), empty_values=())
    service = tables.Column(verbose_name=gettext_lazy("Service"))
    fulfilled = tables.Column(verbose_name=gettext_lazy("Fulfilled with a deadline"))
    met = tables.Column(verbose_name=gettext_lazy("By the deadline"))
    missed = tables.Column(verbose_name=gettext_lazy("Late"), empty_values=())
    share = tables.Column(verbose_name=gettext_lazy("Share on time"), empty_values=())
    responded = tables.Column(verbose_name=gettext_lazy("With a response target"))
    response_met = tables.Column(verbose_name=gettext_lazy("Answered in time"))
    response_missed = tables.Column(verbose_name=gettext_lazy("Answered late"), empty_values=())
    response_share = tables.Column(
        verbose_name=gettext_lazy("Share answered in time"), empty_values=()
    )

    class Meta(TotalRowTable.Meta):
        empty_text = gettext_lazy(
            "No request with a fulfilment deadline or a response target was fulfilled in this "
            "period."
        )


class SlaView(ControllingTableView):
    table_class = SlaTable
    filterset_class = ControllingFilterSet
    table_pagination = False
    title = gettext_lazy("SLA compliance")
    csv_url_name = "controlling:sla_csv"
    intro = gettext_lazy(
        "Services with SLA targets get deadlines when a request is approved: the response "
        "within that many working hours (business hours of working days), the fulfilment "
        "within that many working days of the Land, moved by the time the request waited on "
        "hold for the requester or a supplier. Counted by the month of fulfilment."
    )

    def get_rows(self):
        first, last = self.filterset.period()
        return sla_compliance(self.filterset.scope(), first=first, last=last)


def sla_csv(rows: Iterable[SlaRow]) -> Iterator[bytes]:
    header = [
        _("Month"),
        _("Service"),
        _("Fulfilled with a deadline"),
        _("By the deadline"),
        _("Late"),
        _("Share on time"),
        _("With a response target"),
        _("Answered in time"),
        _("Answered late"),
        _("Share answered in time"),
    ]
    lines = (
        [
            _("All months") if row.is_total else row.month.strftime("%Y-%m"),
            _("All services") if row.is_total else escape_formula(row.service),
            row.fulfilled,
            row.met,
            row.missed,
            row.share,
            row.responded,
            row.response_met,
            row.response_missed,
            row.response_share,
        ]
        for row in rows
    )
    return _csv(header, lines)


class SlaCsvView(ReportExportView):
    selector = staticmethod(sla_compliance)
    formats = {"csv": (sla_csv, "text/csv; charset=utf-8")}
    filename = "sla"
