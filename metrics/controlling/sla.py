"""SLA compliance per service and month, for the resolution and the response target: of the
requests fulfilled in the month, those with a fulfilment deadline and how many were fulfilled
by it (the due date moved by the time on hold), and those with a response target and how many
got their first response by it. Closed months come from the monthly roll-up (``MonthlySla``,
kept with the other figures), the open month and months not rolled up are read live with the
same SQL (``metrics.controlling.rollup.live_sla_sql``)."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import django_tables2 as tables
from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalogue.models import CatalogueItem
from itportal.memo import Memo
from metrics.controlling import rollup
from metrics.controlling.exports import _csv, escape_formula
from metrics.controlling.filtersets import ControllingFilterSet
from metrics.controlling.rollup import Scope
from metrics.controlling.tables import MonthColumn, TotalRowTable
from metrics.controlling.views import ControllingTableView, ReportExportView


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


# The page's rows per process, for what they are computed from: the rolled months' sums (by
# their key), the services' names and order and the live rows. Summing 400 rows of a year
# by month and service in PostgreSQL from the kept sums sent as arrays, and reading them back
# as new rows, was a fifth of the page's time; the rows kept are the same objects on every
# view, so the table's markup is found by their identity (metrics/templatetags/reports.py).
_KEPT_ROWS = Memo(64, 8 << 20)


def sla_compliance(scope: Scope, *, first: datetime.date, last: datetime.date) -> list[SlaRow]:
    """Per month and service: fulfilled requests that had a deadline, and those fulfilled on
    or before it (the local date of fulfilment); those that had a response target, and those
    answered by it (never answered: missed); the last row totals the period.

    Closed months from the roll-up (``MonthlySla``, their sums per month and service kept
    per process: ``rollup.kept_sla_rows``), the others live (``rollup.live_sla_sql``): two
    queries, the plan and one reading the services (their names in the database's order) and
    the live sums (three when the rolled months' sums are not kept yet)."""
    if scope.nothing:
        return []
    plan = rollup.plan(first, last)
    kept_key, rolled = rollup.kept_sla_rows(plan, scope)
    where, params = "", []
    if scope.category_id is not None:
        where, params = " WHERE i.category_id = %s", [scope.category_id]
    # Services as (NULL, id, name, rank of the name), live sums as (month, id, NULL, NULL, …):
    # the rank orders the rows as ORDER BY name would, in the database's collation.
    parts = [
        f"""SELECT NULL::date, i.id, i.name, DENSE_RANK() OVER (ORDER BY i.name),
               NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
        FROM {CatalogueItem._meta.db_table} i{where}"""  # noqa: S608 - a table name
    ]
    if plan.live or plan.tail:
        live, live_params = rollup.live_sla_sql(plan, scope)
        sums = ", ".join(f"SUM(l.{name})::bigint" for name in rollup.SLA_FIGURES)
        parts.append(
            f"SELECT l.month, l.item_id, NULL, NULL, {sums} FROM ({live}) AS l GROUP BY 1, 2"  # noqa: S608
        )
        params += live_params
    with connection.cursor() as cursor:
        cursor.execute("\nUNION ALL\n".join(f"({part})" for part in parts), params)
        read = tuple(cursor.fetchall())
    key = None if kept_key is None else (kept_key, read)
    rows = None if key is None else _KEPT_ROWS.get(key)
    if rows is None:
        rows = _rows(rolled, read)
        if key is not None:
            _KEPT_ROWS.put(key, rows)
    return list(rows)


def _rows(rolled: tuple[tuple, ...], read: tuple[tuple, ...]) -> list[SlaRow]:
    """The rows of the rolled sums and the query's services and live sums: summed by month
    and service name (services of the same name together, as GROUP BY name would), those
    with a deadline or a response target, ordered by month and name; then the total."""
    names = {}  # item id -> (rank of its name, name)
    live = []
    for month, item_id, name, rank, *figures in read:
        if month is None:
            names[item_id] = (rank, name)
        else:
            live.append((month, item_id, *figures))
    sums: dict[tuple, list[int]] = {}
    for month, item_id, *figures in itertools.chain(rolled, live):
        service = names.get(item_id)
        if service is None:  # not in the category, or no longer in the catalogue
            continue
        total = sums.setdefault((month, *service), [0, 0, 0, 0])
        for index, value in enumerate(figures):
            total[index] += value
    rows = [
        SlaRow(month, name, fulfilled, met, responded=responded, response_met=response_met)
        for (month, _rank, name), (fulfilled, met, responded, response_met) in sorted(
            sums.items(), key=lambda item: item[0][:2]
        )
        if fulfilled + responded > 0
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

    # Its columns are the class's on every page (reports.py keeps their part of the key).
    head_is_static = True

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
    # 50 rows a page like the other controlling tables (a year of 40 services is 480 rows);
    # the period's totals are shown above the table as well as in its last row.
    template_name = "controlling/sla.html"
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

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = self.rows()
        context["total"] = rows[-1] if rows else None
        return context


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
