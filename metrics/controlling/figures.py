"""The charts of the controlling pages, built from the selectors' aggregated rows.

Each function takes rows a selector returned (a few per month) and gives a
``metrics.charts.Chart``; summing them per month is arithmetic over aggregates, not a loop
over requests.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from itportal.memo import Memo, kept_value_key
from metrics.charts import Chart, Series, bar_chart, describe, line_chart
from metrics.controlling.forecast import add_months
from metrics.controlling.selectors import (
    CostRow,
    ForecastRow,
    LeadTimeRow,
    PoolRow,
    SatisfactionRow,
    UsageRow,
)


def months_between(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    return [add_months(first, i) for i in range(max(count, 0))]


def month_label(month: datetime.date) -> str:
    return month.strftime("%m/%Y")


def cost_chart(rows: Iterable[CostRow], first: datetime.date, last: datetime.date) -> Chart:
    totals: dict[datetime.date, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row.month] += row.total
    months = months_between(first, last)
    return bar_chart(
        chart_id="chart-costs",
        title=_("Total charges per month (EUR)"),
        x_labels=[month_label(m) for m in months],
        series=[Series(_("Total (EUR)"), [totals.get(m, Decimal(0)) for m in months])],
        y_label=_("EUR"),
        decimals=2,
    )


def usage_chart(rows: Iterable[UsageRow], first: datetime.date, last: datetime.date) -> Chart:
    orders: dict[datetime.date, int] = defaultdict(int)
    active: dict[datetime.date, int] = defaultdict(int)
    for row in rows:
        orders[row.month] += row.orders
        active[row.month] += row.active
    months = months_between(first, last)
    return line_chart(
        chart_id="chart-usage",
        title=_("Orders and active entitlements per month"),
        x_labels=[month_label(m) for m in months],
        series=[
            Series(_("Orders"), [orders.get(m, 0) for m in months]),
            Series(_("Active entitlements"), [active.get(m, 0) for m in months]),
        ],
        y_label=_("Count"),
    )


def demand_chart(rows: Iterable[ForecastRow], first: datetime.date, last: datetime.date) -> Chart:
    """Orders per month of the shown services, and the sum of their forecasts (dashed)."""
    history: dict[datetime.date, int] = defaultdict(int)
    expected: dict[datetime.date, float] = defaultdict(float)
    horizon_months: set[datetime.date] = set()
    for row in rows:
        for i, orders in enumerate(row.history):
            history[add_months(row.first_month, i)] += orders
        for month, value in zip(row.forecast.months, row.forecast.values, strict=True):
            expected[month] += value
            horizon_months.add(month)
    past = months_between(first, last)
    # Months before the first order are no information, only a long flat line: start with it.
    first_orders = next((m for m in past if history.get(m)), None)
    if first_orders is not None:
        past = [m for m in past if m >= first_orders]
    future = sorted(horizon_months) or [add_months(last, k) for k in (1, 2, 3)]
    months = past + future
    measured = Series(_("Orders"), [history.get(m, 0) if m <= last else None for m in months])
    forecast = Series(
        _("Forecast"),
        [round(expected.get(m, 0.0), 1) if m > last else None for m in months],
        dashed=True,
    )
    labels = [month_label(m) for m in months]
    summary = " ".join([describe(measured, labels), describe(forecast, labels, decimals=1)])
    return line_chart(
        chart_id="chart-demand",
        title=_("Orders per month and forecast"),
        x_labels=labels,
        series=[measured, forecast],
        y_label=_("Orders"),
        summary=summary,
        decimals=1,
    )


# The forecast page's chart per language, history and rows, kept per process: its rows are
# the kept forecast's (selectors.kept_demand_forecast), the same objects on every view, and
# summing their months anew took 0.5 ms of each view. Rows without a key: built every time.
_DEMAND_CHARTS = Memo(32, 2 << 20)


def kept_demand_chart(
    rows: Iterable[ForecastRow], first: datetime.date, last: datetime.date
) -> Chart:
    """``demand_chart``, kept for the same rows (by their ``kept_value_key``)."""
    rows = list(rows)
    keys = tuple(kept_value_key(row) for row in rows)
    if None in keys:
        return demand_chart(rows, first, last)
    return _DEMAND_CHARTS.kept(
        (get_language(), first, last, keys), lambda: demand_chart(rows, first, last)
    )


def pool_chart(rows: Iterable[PoolRow]) -> Chart:
    rows = list(rows)
    summary = ngettext(
        "%(warn)s of %(count)s pool is below its warning level.",
        "%(warn)s of %(count)s pools are below their warning level.",
        len(rows),
    ) % {
        "warn": sum(row.is_warning for row in rows),
        "count": len(rows),
    }
    if rows:
        fullest = max(rows, key=lambda row: row.percent_used)
        summary += " " + _("Fullest: %(name)s with %(percent)s %% in use.") % {
            "name": fullest.service,
            "percent": number_format(fullest.percent_used, decimal_pos=1),
        }
    return bar_chart(
        chart_id="chart-pools",
        horizontal=True,
        title=_("Share of each licence pool in use (%)"),
        x_labels=[row.service for row in rows],
        series=[Series(_("Used (%)"), [row.percent_used for row in rows])],
        y_label="%",
        summary=summary,
        decimals=1,
    )


def _extremes(values: list[tuple[str, float | Decimal | None]], text: str, *, decimals: int) -> str:
    """The one-sentence text alternative of a chart over services: its highest and lowest."""
    known = [(name, value) for name, value in values if value is not None]
    if not known:
        return _("No figures in this period.")
    high = max(known, key=lambda pair: pair[1])
    low = min(known, key=lambda pair: pair[1])
    return text % {
        "high": high[0],
        "high_value": number_format(high[1], decimal_pos=decimals),
        "low": low[0],
        "low_value": number_format(low[1], decimal_pos=decimals),
    }


def _days(value: datetime.timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 86400, 1)


def lead_time_chart(rows: Iterable[LeadTimeRow]) -> Chart:
    """Submission to fulfilment per service, median and p90, in days: one row per service
    (horizontal bars, however many services), the longest median first."""
    rows = [row for row in rows if not row.is_total]
    rows.sort(key=lambda row: (row.total_p50 is None, -(_days(row.total_p50) or 0), row.service))
    return bar_chart(
        summary=_extremes(
            [(row.service, _days(row.total_p50)) for row in rows],
            _(
                "Longest median lead time: %(high)s with %(high_value)s days; shortest: %(low)s "
                "with %(low_value)s days."
            ),
            decimals=1,
        ),
        chart_id="chart-lead-times",
        horizontal=True,
        title=_("Lead time from submission to fulfilment per service (days)"),
        x_labels=[row.service for row in rows],
        series=[
            Series(_("p50 (median)"), [_days(row.total_p50) for row in rows]),
            Series(_("p90"), [_days(row.total_p90) for row in rows]),
        ],
        y_label=_("Days"),
        decimals=1,
    )


def satisfaction_chart(rows: Iterable[SatisfactionRow]) -> Chart:
    """Average rating of each rated service (1 to 5)."""
    rows = [row for row in rows if not row.is_total and row.rated]
    return bar_chart(
        summary=_extremes(
            [(row.service, row.average) for row in rows],
            _(
                "Best rated: %(high)s with %(high_value)s; lowest rated: %(low)s with "
                "%(low_value)s."
            ),
            decimals=2,
        ),
        chart_id="chart-satisfaction",
        horizontal=True,
        title=_("Average rating per service (1 to 5)"),
        x_labels=[row.service for row in rows],
        series=[Series(_("Average rating"), [row.average for row in rows])],
        y_label=_("Rating"),
        decimals=2,
    )
