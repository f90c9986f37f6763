"""Reads for the controlling pages. Every figure is aggregated in one SQL statement.

The figures of closed months come from the monthly roll-up, the others live from the raw
tables (``metrics.controlling.rollup``); the filters arrive as a ``Scope``. The number of
queries does not grow with the number of requests.

Months are calendar months in the portal's time zone (``settings.TIME_ZONE``).
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import groupby

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections, router
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property
from django_tables2.data import TableData

from catalogue.models import CatalogueItem, Category, CostCentre, Department, Employee
from itportal.memo import Memo
from metrics.controlling import rollup
from metrics.controlling.forecast import (
    ANOMALY_MIN_HISTORY,
    BAND_WIDTH,
    HORIZON,
    Band,
    Forecast,
    add_months,
    band,
    forecast,
)
from metrics.controlling.rollup import Scope
from provisioning.models import Entitlement
from provisioning.selectors import with_licence_usage
from requests_app.choices import RequestState
from requests_app.models import Rating, ServiceRequest


@dataclass(frozen=True)
class CostRow:
    month: datetime.date
    cost_centre_code: str
    cost_centre_name: str
    fulfilled: int
    once: Decimal
    entitlements: int
    monthly: Decimal

    @property
    def total(self) -> Decimal:
        return self.once + self.monthly


@dataclass(frozen=True)
class UsageRow:
    month: datetime.date
    service: str
    group: str
    orders: int
    active: int


class ReportRows(list):
    """A report's rows as its selector made them from one statement's result, and
    ``token``: the same for every equal result read in this process while it is kept
    (``kept_rows``), so a page's markup can be kept under the token (the controlling
    views' ``body_key``) instead of a key of every row's fields. Shared by the views that
    read the same result: read them, never change them."""

    token: int = 0


# A report's rows per statement result, kept per process: a year's 228 cost rows at 10,000
# requests were 0.3 ms of frozen dataclasses made anew on every view, and the same result
# gives the same rows. Keyed by the result's values (the amounts are numeric with two
# decimals, so equal amounts print alike).
_KEPT_ROWS = Memo(256, 8 << 20)
_ROW_TOKENS = itertools.count(1)


def kept_rows(kind, result: list[tuple], make, anchor=None) -> ReportRows:
    """The rows ``make(*values)`` of each tuple of ``result``, kept under ``kind`` and the
    values. ``anchor``: an object the rows are made from too (the lead times' percentiles),
    told apart by its identity; the entry holds it, so its id is not reused meanwhile."""
    key = (kind, id(anchor), tuple(result))
    found = _KEPT_ROWS.get(key)
    if found is not None and found[0] is anchor:
        return found[1]
    rows = ReportRows(make(*values) for values in result)
    rows.token = next(_ROW_TOKENS)
    _KEPT_ROWS.put(key, (anchor, rows))
    return rows


def _json_rows(select: str, order: str) -> str:
    """SQL: the rows of ``select`` (its columns named as the row's fields) in ``order`` (of
    ``x.field``) as one JSON array of objects (``kept_json_rows``): one value read instead
    of a few hundred rows of dates and amounts whose Python objects are kept anyway. The
    costs page's 228 rows at 10,000 requests: 0.5-0.8 ms less CPU per view, 0.3 ms more in
    PostgreSQL; each row as a record, as ``json_build_array`` cost PostgreSQL 0.6 ms more.
    The usage page's 444 rows of small counts: PostgreSQL spent what the page saved."""
    aggregate = f"COALESCE(json_agg(x ORDER BY {order}), '[]')::text"
    return f"SELECT {aggregate} FROM ({select}) AS x"  # noqa: S608 - the caller's SQL


def kept_json_rows(kind, text: str, make) -> ReportRows:
    """``kept_rows`` of a result read as ``_json_rows``: kept under its text, parsed only
    when not kept (amounts with a decimal point as Decimal, as PostgreSQL prints them)."""
    key = (kind, text)
    found = _KEPT_ROWS.get(key)
    if found is not None:
        return found
    rows = ReportRows(make(**fields) for fields in json.loads(text, parse_float=Decimal))
    rows.token = next(_ROW_TOKENS)
    _KEPT_ROWS.put(key, rows)
    return rows


def _date(value: str) -> datetime.date:
    return datetime.date.fromisoformat(value)


def _amount(value) -> Decimal:
    """A numeric as JSON: Decimal if it had a decimal point, else an int."""
    return value if isinstance(value, Decimal) else Decimal(value)


BREAKDOWN_SERVICE = "service"
BREAKDOWN_DEPARTMENT = "department"
BREAKDOWN_COST_CENTRE = "cost_centre"


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def default_period() -> tuple[datetime.date, datetime.date]:
    """The last twelve months up to and including the current one."""
    last = month_start(timezone.localdate())
    if last.month == 12:
        first = last.replace(month=1)
    else:
        first = last.replace(year=last.year - 1, month=last.month + 1)
    return first, last


def _figures(
    scope: Scope,
    first: datetime.date,
    last: datetime.date,
    figures: frozenset[str],
    by: tuple[str, ...],
) -> tuple[str, list]:
    """The period's figures rows (roll-up of current closed months, the rest live); only
    ``figures`` are complete, the others may read 0 in the live months' rows. The caller
    groups by ``by`` (``rollup.KEYS``): the rolled months' sums by it are kept per process
    (``rollup.kept_sums``), so a view sums only the live rows."""
    p = rollup.plan(month_start(first), month_start(last))
    return rollup.figures_sql(p, scope, figures, by=by)


COST_FIGURES = frozenset({"fulfilled", "once", "charged", "monthly"})
USAGE_FIGURES = frozenset({"orders", "active_end"})
DEMAND_FIGURES = frozenset({"orders"})
LEAD_TIME_FIGURES = frozenset({"fulfilled", "with_approval", "automated"})
SATISFACTION_FIGURES = frozenset(
    {"fulfilled", "rated", "score_sum", *(f"score_{n}" for n in range(1, 6)), "commented"}
)


def costs_per_cost_centre(
    scope: Scope, *, first: datetime.date, last: datetime.date
) -> list[CostRow]:
    """One-off and monthly charges per cost centre and month, at order-time prices.

    * One-off: ``price_once`` of each request fulfilled in that month (``closed_at``).
    * Monthly: ``price_monthly`` for every month in which the request's entitlement was
      active at some time: granted before the month ends and not revoked before it starts.
      Months that have not begun yet are not charged.
    The cost centre is the one the request was charged to when it was placed.
    """
    if scope.nothing:
        return []
    figures, params = _figures(scope, first, last, COST_FIGURES, ("month", "cost_centre_id"))
    # Summed per month and cost centre id first (a hash aggregate over the roll-up rows),
    # then joined to the names: grouped after the join, the 9,000 rows of a year at a
    # million requests were sorted by month and cost centre with every figure column
    # (50 ms, the export's whole time).
    rows = f"""
        SELECT s.month, cc.code AS cost_centre_code, cc.name AS cost_centre_name, s.fulfilled,
               s.once, s.charged AS entitlements, s.monthly
        FROM sums s
        JOIN {CostCentre._meta.db_table} cc ON cc.id = s.cost_centre_id
        WHERE s.fulfilled > 0 OR s.charged > 0"""  # noqa: S608 - a table name
    sql = f"""
    WITH sums AS (
        SELECT f.month, f.cost_centre_id, SUM(f.fulfilled)::bigint AS fulfilled,
               SUM(f.once) AS once, SUM(f.charged)::bigint AS charged, SUM(f.monthly) AS monthly
        FROM ({figures}) AS f
        GROUP BY 1, 2
    )
    {_json_rows(rows, "x.month, x.cost_centre_code")}
    """  # noqa: S608 - only table names and the roll-up module's SQL are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return kept_json_rows("costs", cursor.fetchone()[0], _cost_row)


def _cost_row(*, month, once, monthly, **fields) -> CostRow:
    return CostRow(month=_date(month), once=_amount(once), monthly=_amount(monthly), **fields)


# The second grouping of the usage report: its column in the figures and its label in SQL.
_BREAKDOWN = {
    BREAKDOWN_SERVICE: ("0", "''"),
    BREAKDOWN_DEPARTMENT: ("f.department_id", "d.code || ' ' || d.name"),
    BREAKDOWN_COST_CENTRE: ("f.cost_centre_id", "cc.code || ' ' || cc.name"),
}


def usage_per_service(
    scope: Scope,
    *,
    first: datetime.date,
    last: datetime.date,
    breakdown: str = BREAKDOWN_SERVICE,
) -> list[UsageRow]:
    """Orders per month (by submission) and entitlements active at each month's end.

    For the current month "month end" is now. ``breakdown`` adds the beneficiary's
    department or the charged cost centre as a second grouping.
    """
    if scope.nothing:
        return []
    group, label_sql = _BREAKDOWN[breakdown]
    by = ("month", "item_id", *([group.removeprefix("f.")] if group != "0" else []))
    figures, params = _figures(scope, first, last, USAGE_FIGURES, by)
    sql = f"""
    WITH counts AS (
        SELECT f.month, f.item_id, {group} AS grp, SUM(f.orders)::bigint AS orders,
               SUM(f.active_end)::bigint AS active
        FROM ({figures}) AS f
        GROUP BY 1, 2, 3
        HAVING SUM(f.orders)::bigint > 0 OR SUM(f.active_end)::bigint > 0
    )
    SELECT c.month, i.name, COALESCE({label_sql}, ''), c.orders, c.active
    FROM counts c
    JOIN {CatalogueItem._meta.db_table} i ON i.id = c.item_id
    LEFT JOIN {Department._meta.db_table} d
         ON %s = '{BREAKDOWN_DEPARTMENT}' AND d.id = c.grp
    LEFT JOIN {CostCentre._meta.db_table} cc
         ON %s = '{BREAKDOWN_COST_CENTRE}' AND cc.id = c.grp
    ORDER BY c.month, i.name, 3
    """  # noqa: S608 - only table names, whitelisted columns and the roll-up's SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, breakdown, breakdown])
        return kept_rows("usage", cursor.fetchall(), UsageRow)


# --- licence pools ---------------------------------------------------------------------

POOL_TREND_DAYS = 90


@dataclass(frozen=True)
class PoolRow:
    """One licence pool with its use and the date it runs out at the current trend.

    ``used`` counts held licences and reserved ones (see
    ``provisioning.selectors.with_licence_usage``). The trend is the net growth of held
    licences over the last ``trend_days`` days: (grants − revocations) / days. At that rate
    the free licences last ``ceil(free / rate)`` days; a flat or falling trend never
    exhausts the pool (``exhausted_on`` is None).
    """

    item_id: int
    service: str
    slug: str
    category: str
    is_active: bool
    size: int
    warning_level: int
    in_use: int
    reserved: int
    granted: int
    revoked: int
    trend_days: int
    today: datetime.date

    @property
    def used(self) -> int:
        return self.in_use + self.reserved

    @property
    def free(self) -> int:
        """Free licences; negative when more are taken or promised than the pool has."""
        return self.size - self.used

    @property
    def percent_used(self) -> Decimal:
        if self.size == 0:
            return Decimal(100)
        return (Decimal(100) * self.used / self.size).quantize(Decimal("0.1"))

    @property
    def is_exhausted(self) -> bool:
        return self.free <= 0

    @property
    def is_warning(self) -> bool:
        return self.free < self.warning_level or self.is_exhausted

    @property
    def net_growth(self) -> int:
        return self.granted - self.revoked

    @property
    def growth_per_30_days(self) -> Decimal:
        return (Decimal(self.net_growth * 30) / self.trend_days).quantize(Decimal("0.1"))

    @property
    def exhausted_on(self) -> datetime.date | None:
        if self.is_exhausted:
            return self.today
        if self.net_growth <= 0:
            return None
        days = -(-self.free * self.trend_days // self.net_growth)  # ceil
        return self.today + datetime.timedelta(days=days)


def licence_pools(
    items: QuerySet[CatalogueItem] | None = None,
    *,
    now: datetime.datetime | None = None,
    trend_days: int = POOL_TREND_DAYS,
) -> list[PoolRow]:
    """Every item with a licence pool (of ``items``, default all), in one query."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=trend_days)
    items = CatalogueItem.objects.all() if items is None else items
    if items.query.is_empty():
        return []
    sql, params = _POOL_STATEMENTS.kept(_items_key(items), lambda: _pools_statement(items))
    bound = [since if p is _SINCE_MARK else now if p is _NOW_MARK else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        rows = cursor.fetchall()
    today = timezone.localdate(now)
    level = CatalogueItem.warning_level
    return [
        PoolRow(
            *row[:6],
            level(row[5], row[6]),
            *row[7:],
            trend_days=trend_days,
            today=today,
        )
        for row in rows
    ]


# The pools' statement per set of items (the page's category filter), compiled once per
# process with stand-ins for the trend window's ends: building and compiling the annotated
# query through the ORM was 2.5 ms of the page's 13 ms CPU, for the same SQL every view.
_POOL_STATEMENTS = Memo(32, 1 << 20)
_SINCE_MARK = datetime.datetime(1901, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
_NOW_MARK = datetime.datetime(1902, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
# PoolRow's fields up to ``revoked``, in order (the warning level from its column).
_POOL_COLUMNS = (
    "pk", "name", "slug", "category__name", "is_active", "licence_pool_size",
    "licence_warning_below", "licences_in_use", "licences_reserved", "granted", "revoked",
)  # fmt: skip


def _items_key(items: QuerySet[CatalogueItem]) -> tuple:
    sql, params = items.order_by().values("pk").query.sql_with_params()
    return sql, tuple(params)


def _pools_statement(items: QuerySet[CatalogueItem]) -> tuple[str, tuple]:
    rows = (
        with_licence_usage(items.filter(licence_pool_size__isnull=False))
        .annotate(
            granted=Coalesce(Subquery(_window_count("granted_at", _SINCE_MARK, _NOW_MARK)), 0),
            revoked=Coalesce(Subquery(_window_count("revoked_at", _SINCE_MARK, _NOW_MARK)), 0),
        )
        .order_by("name", "pk")
        .values_list(*_POOL_COLUMNS)
    )
    sql, params = rows.query.sql_with_params()
    marks = [p for p in params if p is _SINCE_MARK or p is _NOW_MARK]
    if len(marks) != 4:
        raise RuntimeError("licence pools: the stand-ins are not where expected")
    return sql, tuple(params)


def _window_count(column: str, since: datetime.datetime, until: datetime.datetime):
    return (
        Entitlement.objects.filter(
            item=OuterRef("pk"), **{f"{column}__gt": since, f"{column}__lte": until}
        )
        .order_by()
        .values("item")
        .annotate(n=Count("*"))
        .values("n")
    )


# --- demand, forecast, rarely ordered --------------------------------------------------


@dataclass(frozen=True)
class DemandRow:
    item_id: int
    service: str
    category: str
    month: datetime.date
    orders: int


def demand_history(scope: Scope, *, first: datetime.date, last: datetime.date) -> list[DemandRow]:
    """Orders per active service and month (by submission), months without orders as 0.

    A service's series starts after its first month with an order, counted from the month
    before ``first``: a service ordered before the period runs from ``first``; one first
    ordered inside it starts the month after, because it entered the catalogue during that
    month, whose count would read as a jump in demand. So a service added last spring is
    not read as "no demand" for the year before, nor as a surge in its first weeks.
    """
    if scope.nothing:
        return []
    lead_in = add_months(month_start(first), -1)
    figures, params = _figures(scope, lead_in, last, DEMAND_FIGURES, ("month", "item_id"))
    sql = f"""
    WITH months AS (
        SELECT m::date AS month FROM generate_series(%s::date, %s::date, interval '1 month') m
    ),
    counts AS (
        SELECT f.item_id, f.month, SUM(f.orders)::bigint AS orders
        FROM ({figures}) AS f
        GROUP BY 1, 2
        HAVING SUM(f.orders)::bigint > 0
    ),
    firsts AS (SELECT item_id, MIN(month) AS first_month FROM counts GROUP BY 1)
    SELECT i.id, i.name, cat.name, m.month, COALESCE(c.orders, 0)
    FROM firsts f
    JOIN {CatalogueItem._meta.db_table} i ON i.id = f.item_id AND i.is_active
    JOIN {Category._meta.db_table} cat ON cat.id = i.category_id
    JOIN months m ON m.month > f.first_month
    LEFT JOIN counts c ON c.item_id = f.item_id AND c.month = m.month
    ORDER BY i.name, i.id, m.month
    """  # noqa: S608 - only table names and the roll-up's SQL are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [month_start(first), month_start(last), *params])
        return [DemandRow(*row) for row in cursor.fetchall()]


def last_complete_month(today: datetime.date | None = None) -> datetime.date:
    return add_months(month_start(today or timezone.localdate()), -1)


@dataclass(frozen=True)
class ForecastRow:
    item_id: int
    service: str
    category: str
    first_month: datetime.date
    history: list[int]
    forecast: Forecast

    @property
    def history_months(self) -> int:
        return len(self.history)

    @property
    def orders_last_12(self) -> int:
        return sum(self.history[-12:])


def demand_forecast(
    scope: Scope,
    *,
    history_months: int = 24,
    horizon: int = HORIZON,
    last: datetime.date | None = None,
) -> list[ForecastRow]:
    """Per active service: its monthly history up to ``last`` (default: the last complete
    month) and the forecast of the ``horizon`` months after it (see ``forecast.py``).

    One query for the monthly counts; the per-service arithmetic runs over those few
    aggregated numbers (services × months).
    """
    last = month_start(last) if last else last_complete_month()
    first = add_months(last, -(history_months - 1))
    result: list[ForecastRow] = []
    for item_id, rows in groupby(
        demand_history(scope, first=first, last=last), key=lambda row: row.item_id
    ):
        rows = list(rows)
        history = [row.orders for row in rows]
        result.append(
            ForecastRow(
                item_id=item_id,
                service=rows[0].service,
                category=rows[0].category,
                first_month=rows[0].month,
                history=history,
                forecast=forecast(history, first_month=rows[0].month, horizon=horizon),
            )
        )
    return result


@dataclass(frozen=True)
class AnomalyRow:
    """A month whose orders of a service fell outside the band its history gave."""

    item_id: int
    service: str
    category: str
    month: datetime.date
    orders: int
    band: Band
    history_months: int

    @property
    def direction(self) -> str:
        return "up" if self.orders > self.band.high else "down"

    @property
    def size(self) -> float:
        """Orders above (positive) or below (negative) the expected value."""
        return self.orders - self.band.expected

    @property
    def beyond(self) -> float:
        """How far outside the band, in spreads: 0 at its edge."""
        edge = self.band.high if self.direction == "up" else self.band.low
        return abs(self.orders - edge) / self.band.spread

    @property
    def percent(self) -> float | None:
        if self.band.expected <= 0:
            return None
        return 100 * self.size / self.band.expected


def demand_anomalies(
    scope: Scope,
    *,
    months: int = 12,
    history_months: int = 24,
    last: datetime.date | None = None,
    width: float = BAND_WIDTH,
) -> list[AnomalyRow]:
    """Months among the last ``months`` up to ``last`` (default: the last complete month)
    whose orders of a service fell outside the band of the forecast made from the up to
    ``history_months`` months before it (``forecast.band``); a month needs at least
    ANOMALY_MIN_HISTORY months of history before it. Largest deviations first.

    One query for the monthly counts (``demand_history``); the rest is arithmetic over them.
    """
    last = month_start(last) if last else last_complete_month()
    first_judged = add_months(last, -(months - 1))
    first = add_months(first_judged, -history_months)
    result = []
    for item_id, rows in groupby(
        demand_history(scope, first=first, last=last), key=lambda row: row.item_id
    ):
        rows = list(rows)
        counts = [row.orders for row in rows]
        for index, row in enumerate(rows):
            if row.month < first_judged or index < ANOMALY_MIN_HISTORY:
                continue
            start = max(0, index - history_months)
            history = counts[start:index]
            expected = band(history, first_month=rows[start].month, width=width)
            if expected.low <= row.orders <= expected.high:
                continue
            result.append(
                AnomalyRow(
                    item_id=item_id,
                    service=row.service,
                    category=row.category,
                    month=row.month,
                    orders=row.orders,
                    band=expected,
                    history_months=len(history),
                )
            )
    result.sort(key=lambda r: (-r.beyond, r.service, r.month))
    return result


_KEPT_ANOMALIES = Memo(32, 8 << 20)


def _kept_from_rollup(scope: Scope, first: datetime.date, last: datetime.date, key, compute):
    """``compute()`` of the months ``first`` … ``last`` (all closed), kept per process while
    what it is computed from stays the same: the roll-up months it reads (the plan's stamp;
    every one current, none read live but months before the first roll-up without any data)
    and the services' names, categories and activity (one query over the catalogue). A
    page then costs two small queries instead of the months' figures and the arithmetic
    per service and month."""
    p = rollup.plan(month_start(first), last)
    # Months read live are allowed only before the first rolled-up one, if no month before
    # it is known at all (no data there: a change would have marked its month).
    if scope.nothing or not p.rolled or any(month > p.rolled[0] for month in p.live):
        return compute()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT md5(COALESCE(string_agg(
                    concat_ws(':', i.id, i.is_active, i.category_id, i.name, cat.name), '|'
                    ORDER BY i.id), '')),
                EXISTS (SELECT 1 FROM {rollup.T_MONTH} WHERE month < %s)
                FROM {CatalogueItem._meta.db_table} i
                JOIN {Category._meta.db_table} cat ON cat.id = i.category_id""",  # noqa: S608
            [p.rolled[0]],
        )
        catalogue, known_before = cursor.fetchone()
    if known_before and p.live:
        return compute()
    key = (key, scope, last, p.stamp, catalogue)
    rows = _KEPT_ANOMALIES.get(key)
    if rows is None:
        rows = compute()
        _KEPT_ANOMALIES.put(key, rows)
    return list(rows)


def kept_demand_anomalies(
    scope: Scope, *, months: int = 12, history_months: int = 24
) -> list[AnomalyRow]:
    """``demand_anomalies`` up to the last complete month, kept per process
    (``_kept_from_rollup``)."""
    last = last_complete_month()
    first = add_months(add_months(last, -(months - 1)), -history_months)

    def now():
        return demand_anomalies(scope, months=months, history_months=history_months, last=last)

    # demand_history reads from the month before the first.
    return _kept_from_rollup(
        scope, add_months(first, -1), last, ("anomalies", months, history_months), now
    )


def kept_demand_forecast(scope: Scope, *, history_months: int = 24) -> list[ForecastRow]:
    """``demand_forecast`` of the history up to the last complete month, kept per process
    (``_kept_from_rollup``): the forecast page's rows and chart."""
    last = last_complete_month()
    first = add_months(last, -(history_months - 1))

    def now():
        return demand_forecast(scope, history_months=history_months, last=last)

    return _kept_from_rollup(scope, add_months(first, -1), last, ("forecast", history_months), now)


@dataclass(frozen=True)
class RareRow:
    item_id: int
    service: str
    slug: str
    category: str
    orders: int
    last_ordered_at: datetime.datetime | None
    in_catalogue_since: datetime.datetime


def rarely_ordered(
    scope: Scope,
    items: QuerySet[CatalogueItem],
    *,
    first: datetime.date,
    last: datetime.date,
    fewer_than: int,
) -> list[RareRow]:
    """Active ``items`` with fewer than ``fewer_than`` orders (in ``scope``) submitted in
    the months ``first`` … ``last``, with the last order ever; candidates to retire.
    The fewest orders first, and among those the longest unordered.

    The counts come from the figures; the last order is one indexed look-up
    (``request_item_last_order_idx``, index-only) per listed item."""
    if items.query.is_empty() or scope.nothing:
        return []
    items_sql, items_params = items.order_by().values("pk").query.sql_with_params()
    figures, params = _figures(scope, first, last, DEMAND_FIGURES, ("item_id",))
    last_where, last_params = scope.sql("r.item_id", "b.department_id", "r.cost_centre_id")
    sql = f"""
    WITH agg AS (
        SELECT f.item_id, SUM(f.orders)::bigint AS orders FROM ({figures}) AS f GROUP BY 1
    )
    SELECT i.id, i.name, i.slug, cat.name, COALESCE(a.orders, 0), lo.submitted_at,
           i.created_at
    FROM {CatalogueItem._meta.db_table} i
    JOIN {Category._meta.db_table} cat ON cat.id = i.category_id
    LEFT JOIN agg a ON a.item_id = i.id
    LEFT JOIN LATERAL (
        SELECT r.submitted_at FROM {ServiceRequest._meta.db_table} r
        JOIN {Employee._meta.db_table} b ON b.id = r.beneficiary_id
        WHERE r.item_id = i.id AND r.submitted_at IS NOT NULL{last_where}
        ORDER BY r.submitted_at DESC LIMIT 1
    ) lo ON true
    WHERE i.is_active AND i.id IN ({items_sql}) AND COALESCE(a.orders, 0) < %s
    ORDER BY 5, lo.submitted_at NULLS FIRST, i.name
    """  # noqa: S608 - only table names, Django's own SQL and the roll-up's SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *last_params, *items_params, fewer_than])
        return [RareRow(*row) for row in cursor.fetchall()]


# --- lead times, automation, satisfaction ----------------------------------------------------
#
# These three read the requests *fulfilled* in the period (``closed_at`` in the local calendar
# months ``first`` … ``last``): the range on the indexed ``(state, closed_at)`` comes first,
# the page's other filters (department, cost centre, category) narrow it further.


def period_bounds(
    first: datetime.date, last: datetime.date
) -> tuple[datetime.datetime, datetime.datetime]:
    """Start of ``first``'s month and start of the month after ``last``, in local time."""
    tz = timezone.get_default_timezone()
    last = month_start(last)
    if last.month < 12:
        after = last.replace(month=last.month + 1)
    elif last.year < datetime.MAXYEAR:
        after = last.replace(year=last.year + 1, month=1)
    else:  # December 9999: its last day is end enough
        after = datetime.date.max
    starts = datetime.datetime.combine(month_start(first), datetime.time(), tzinfo=tz)
    ends = datetime.datetime.combine(after, datetime.time(), tzinfo=tz)
    return starts, ends


def fulfilled_in_period(
    requests: QuerySet[ServiceRequest], *, first: datetime.date, last: datetime.date
) -> QuerySet[ServiceRequest]:
    """The fulfilled requests among ``requests`` whose fulfilment falls in the period."""
    starts, ends = period_bounds(first, last)
    return requests.filter(
        state=RequestState.FULFILLED, closed_at__gte=starts, closed_at__lt=ends
    ).order_by()


@dataclass(frozen=True)
class LeadTimeRow:
    """Lead times of one service (``item_id`` None: all services together).

    Durations are calendar time (weekends and nights included), p50 = median and
    p90 by ``percentile_cont`` (linear interpolation). Approval waiting counts only
    requests that had approval steps; ``with_approval`` says how many.
    """

    item_id: int | None
    service: str
    fulfilled: int
    with_approval: int
    approval_p50: datetime.timedelta | None
    approval_p90: datetime.timedelta | None
    fulfilment_p50: datetime.timedelta | None
    fulfilment_p90: datetime.timedelta | None
    total_p50: datetime.timedelta | None
    total_p90: datetime.timedelta | None
    automated: int

    @property
    def is_total(self) -> bool:
        return self.item_id is None

    @property
    def automation_rate(self) -> Fraction | None:
        """Share of the fulfilled requests fulfilled automatically (0 … 1), exact."""
        return Fraction(self.automated, self.fulfilled) if self.fulfilled else None


def _seconds(value: float | None) -> datetime.timedelta | None:
    return None if value is None else datetime.timedelta(seconds=value)


def lead_times_per_service(
    scope: Scope, *, first: datetime.date, last: datetime.date
) -> list[LeadTimeRow]:
    """p50/p90 of approval waiting, fulfilment and total lead time, and the automation count,
    per service and overall (the last row), for requests fulfilled in the period.

    * approval waiting: ``submitted_at`` → ``approved_at``, only requests with approval steps
      (those approved without steps wait no time and would only pull the figures to zero);
    * fulfilment: ``approved_at`` → ``closed_at`` (the queue time before someone takes it,
      failures and reopening included: the requester waits through all of it);
    * total: ``submitted_at`` → ``closed_at``;
    * automated: requests with ``fulfilled_automatically`` (see docs/controlling.md).

    Counts are exact; the percentiles come from the monthly histograms (``rollup.GAMMA``)
    and are within 1 % of PostgreSQL's ``percentile_cont`` over the raw durations.
    """
    if scope.nothing:
        return []
    p = rollup.plan(month_start(first), month_start(last))
    figures, params = rollup.figures_sql(p, scope, LEAD_TIME_FIGURES, by=("item_id",))
    ctes = f"""
    agg AS (
        SELECT f.item_id, GROUPING(f.item_id) AS overall, SUM(f.fulfilled)::bigint AS fulfilled,
               SUM(f.with_approval)::bigint AS with_approval, SUM(f.automated)::bigint AS automated
        FROM ({figures}) AS f
        GROUP BY GROUPING SETS ((f.item_id), ())
        HAVING SUM(f.fulfilled)::bigint > 0
    )"""  # noqa: S608 - only constants and the roll-up's SQL
    rows = _per_service(ctes, "a.fulfilled, a.with_approval, a.automated", params)
    if not rows:
        return []
    pairs = _percentile_pairs(p, scope)

    def pair(item_id, measure):
        p50, p90 = pairs.get((item_id, measure), (None, None))
        return _seconds(p50), _seconds(p90)

    def row(item_id, name, fulfilled, with_approval, automated):
        return LeadTimeRow(
            item_id,
            name,
            fulfilled,
            with_approval,
            *pair(item_id, rollup.APPROVAL),
            *pair(item_id, rollup.FULFILMENT),
            *pair(item_id, rollup.TOTAL),
            automated,
        )

    # The percentiles are kept (``_PERCENTILE_PAIRS``): the same object while they stay.
    return kept_rows("lead_times", rows, row, anchor=pairs)


Histograms = dict[tuple[int | None, int], list[tuple[int, int]]]

# The rolled months' lead-time histograms summed, per scope and group of months, in this
# process: at a million requests eleven closed months are 216,000 roll-up rows, 0.6-1.8 s to
# sum on every view. The closed months and the open month's roll-up up to today are kept
# apart: the latter changes every day and with every change before today, the former
# rarely. A group's sum changes only when one of its months is recomputed or marked dirty,
# and either changes the group's stamp (its months' versions and computation times), hence
# the key.
# A year's sums at a million requests weigh about 5 MB: a handful of scopes are kept.
_ROLLED_HISTOGRAMS = Memo(32, 32 << 20)


# p50 and p90 of every histogram of a plan, per process, keyed by the kept sums they were
# merged from (their keys carry the months' stamps) and the live buckets themselves: merging
# 120 histograms of a few hundred buckets and reading two percentiles of each was a third
# of the lead-time page's CPU, and the result changes only with the roll-up or today's data.
_PERCENTILE_PAIRS = Memo(64, 4 << 20)


def _percentile_pairs(
    p: rollup.Plan, scope: Scope
) -> dict[tuple[int | None, int], tuple[float | None, float | None]]:
    """(item or None for all, measure) -> (p50, p90) in seconds of the plan's months."""
    keys, kept, live = _histogram_sources(p, scope)
    key = (keys, frozenset(live.items()))
    pairs = _PERCENTILE_PAIRS.get(key)
    if pairs is None:
        histograms = _merged(
            kept, {group: list(zip(*arrays, strict=True)) for group, arrays in live.items()}
        )
        pairs = {
            group: tuple(rollup.percentiles(buckets, (0.5, 0.9)))
            for group, buckets in histograms.items()
        }
        _PERCENTILE_PAIRS.put(key, pairs)
    return pairs


def _histogram_sources(
    p: rollup.Plan, scope: Scope
) -> tuple[tuple, list[Histograms], dict[tuple[int | None, int], tuple[tuple, tuple]]]:
    """The keys of the rolled months' kept sums, those sums, and the live months' buckets
    (per group the buckets and their counts, in bucket order)."""
    tail_month = p.tail[0] if p.tail else None
    groups = [g for g in ([m for m in p.rolled if m != tail_month], [tail_month]) if g and g[0]]
    stamps = {row[0]: row for row in p.stamp}
    # A category is no roll-up dimension: a service moved to another one marks no month, so
    # a category's kept sums are keyed by the services it has now (one small query).
    members = None
    if scope.category_id is not None:
        members = tuple(
            CatalogueItem.objects.filter(category_id=scope.category_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    keys = [(scope, members, tuple(g), tuple(stamps.get(m) for m in g)) for g in groups]
    kept = [_ROLLED_HISTOGRAMS.get(key) for key in keys]
    missing = [i for i, sums in enumerate(kept) if sums is None]
    live: dict[tuple[int | None, int], tuple[tuple, tuple]] = {}
    if missing or p.live or p.tail:
        fresh: list[Histograms] = [{} for _ in missing]
        durations, params = rollup.durations_parts_sql(p, scope, [groups[i] for i in missing])
        # One row per histogram with its buckets and counts as arrays: at a million requests
        # today's rows were 3,500 bucket rows, each a tuple and a dict entry, a third of the
        # selector's 4 ms CPU per view; the driver reads the arrays in one go.
        sql = f"""
        SELECT h.part, h.item_id, h.overall, h.measure,
               array_agg(h.bucket ORDER BY h.bucket), array_agg(h.n ORDER BY h.bucket)
        FROM (
            SELECT d.part, d.item_id, GROUPING(d.item_id) AS overall, d.measure, d.bucket,
                   SUM(d.n)::bigint AS n
            FROM ({durations}) AS d
            GROUP BY GROUPING SETS (
                (d.part, d.item_id, d.measure, d.bucket), (d.part, d.measure, d.bucket))
        ) AS h
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 3, 2, 4
        """  # noqa: S608 - only the roll-up's SQL
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for part, item_id, overall, measure, buckets, counts in cursor.fetchall():
                group = (None if overall else item_id, measure)
                if part < 0:
                    live[group] = (tuple(buckets), tuple(counts))
                else:
                    fresh[part][group] = list(zip(buckets, counts, strict=True))
        for i, sums in zip(missing, fresh, strict=True):
            kept[i] = sums
            _ROLLED_HISTOGRAMS.put(keys[i], sums)
    return tuple(keys), [sums for sums in kept if sums], live


def _merged(kept: list[Histograms], live: Histograms) -> Histograms:
    sources = [source for source in [*kept, live] if source]
    if len(sources) <= 1:
        return sources[0] if sources else {}
    merged: dict[tuple[int | None, int], dict[int, int]] = {}
    for source in sources:
        for group, buckets in source.items():
            counts = merged.setdefault(group, {})
            for bucket, n in buckets:
                counts[bucket] = counts.get(bucket, 0) + n
    return {group: sorted(counts.items()) for group, counts in merged.items()}


def _per_service(ctes: str, columns: str, params) -> list[tuple]:
    """Run ``ctes``, whose last one, ``agg``, is grouped by ``GROUPING SETS ((item_id), ())``
    with the grouping flag as ``overall``; one row per service (item id, name, ``columns``)
    by name, then the row of all services (item id None, name '')."""
    sql = f"""
    WITH {ctes}
    SELECT CASE WHEN a.overall = 0 THEN a.item_id END, COALESCE(i.name, ''), {columns}
    FROM agg a
    LEFT JOIN {CatalogueItem._meta.db_table} i ON a.overall = 0 AND i.id = a.item_id
    ORDER BY a.overall, i.name, a.item_id
    """  # noqa: S608 - only table names, constants and Django's own compiled SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass(frozen=True)
class SatisfactionRow:
    """Ratings of one service's requests fulfilled in the period (``item_id`` None: all)."""

    item_id: int | None
    service: str
    fulfilled: int
    rated: int
    average: Decimal | None
    score_1: int
    score_2: int
    score_3: int
    score_4: int
    score_5: int
    # Of the ratings, those with a comment (the comment list's length).
    commented: int = 0

    @property
    def is_total(self) -> bool:
        return self.item_id is None

    @property
    def distribution(self) -> tuple[int, int, int, int, int]:
        return (self.score_1, self.score_2, self.score_3, self.score_4, self.score_5)


def satisfaction_per_service(
    scope: Scope, *, first: datetime.date, last: datetime.date
) -> list[SatisfactionRow]:
    """Average score (two decimals), number of ratings and their distribution 1 … 5 per
    service and overall (the last row), over the requests fulfilled in the period.

    Services with fulfilled but unrated requests are listed with ``rated`` 0, so the share
    of requesters who answered is visible.
    """
    if scope.nothing:
        return []
    figures, params = _figures(scope, first, last, SATISFACTION_FIGURES, ("item_id",))
    scores = ", ".join(f"SUM(f.score_{n})::bigint AS s{n}" for n in range(1, 6))
    ctes = f"""
    agg AS (
        SELECT f.item_id, GROUPING(f.item_id) AS overall, SUM(f.fulfilled)::bigint AS fulfilled,
               SUM(f.rated)::bigint AS rated,
               ROUND(SUM(f.score_sum)::numeric / NULLIF(SUM(f.rated)::bigint, 0), 2) AS average,
               {scores}, SUM(f.commented)::bigint AS commented
        FROM ({figures}) AS f
        GROUP BY GROUPING SETS ((f.item_id), ())
        HAVING SUM(f.fulfilled)::bigint > 0
    )"""  # noqa: S608 - only constants and the roll-up's SQL
    columns = "a.fulfilled, a.rated, a.average, a.s1, a.s2, a.s3, a.s4, a.s5, a.commented"
    # Kept per result (the average rounded to two places prints alike when equal): the
    # page's table then finds its markup by the rows' identity.
    return kept_rows("satisfaction", _per_service(ctes, columns, params), SatisfactionRow)


def rating_comments(
    requests: QuerySet[ServiceRequest], *, first: datetime.date, last: datetime.date
) -> QuerySet[Rating]:
    """Ratings with a comment of the requests fulfilled in the period, latest first.

    For controlling: service, score, comment and dates only, never who rated.
    """
    return (
        Rating.objects.filter(
            request__in=fulfilled_in_period(requests, first=first, last=last).values("pk")
        )
        .exclude(comment="")
        .select_related("request__item")
        # The request's state too: the FSM mixin reads it when the row is loaded.
        .only(
            "score",
            "comment",
            "rated_at",
            "request__state",
            "request__closed_at",
            "request__item__name",
        )
        .order_by("-rated_at", "-id")
    )


@dataclass(frozen=True)
class CommentRow:
    """A comment as the satisfaction page shows it (service, score, comment, dates)."""

    service: str
    score: int
    comment: str
    fulfilled: datetime.datetime | None
    rated_at: datetime.datetime


# The page statements of comment lists (SQL and parameters), per list (``CommentRows``'s
# ``key``), slice and database: the satisfaction page compiled the same statement on every
# view (0.5 ms, about what reading it costs).
_COMMENT_PAGES = Memo(512, 1 << 20)

# A page of comments as ``CommentRow``s per rows read, per process: the same objects while
# the page's comments stay, so its table is found by their identity (as the satisfaction
# rows, ``kept_rows``); long comments count against the budget.
_KEPT_COMMENTS = Memo(256, 4 << 20)


class CommentRows(TableData):
    """``rating_comments`` as ``CommentRow`` values for a table, read a page (a slice) at a
    time: five columns instead of a rating, its request and its service as model instances
    per row, and rows that render from the table's memo. ``data`` stays the ratings'
    queryset, so the pager counts it as before.

    ``key``: everything the ratings' queryset is a function of (the satisfaction page's:
    its scope and period), so that a page's statement is compiled once per process. With a
    key, ``ratings`` may be a function that makes the queryset: it is called only where a
    page's statement is not kept yet or the pager chooses a later page by id (building it
    through the ORM was 0.7 ms of every view of the satisfaction page)."""

    def __init__(self, ratings: QuerySet[Rating] | Callable[[], QuerySet[Rating]], *, key=None):
        # No TableData.__init__: ``data`` is made when first read.
        self._ratings = ratings
        self.key = key

    @cached_property
    def data(self) -> QuerySet[Rating]:
        ratings = self._ratings
        return ratings if isinstance(ratings, QuerySet) else ratings()

    @cached_property
    def values(self) -> QuerySet:
        return self.data.values_list(
            "request__item__name", "score", "comment", "request__closed_at", "rated_at"
        )

    def __getitem__(self, key):
        if isinstance(key, slice):
            rows = tuple(self._slice(key))
            kept = _KEPT_COMMENTS.get(rows)
            if kept is None:
                kept = tuple(CommentRow(*values) for values in rows)
                _KEPT_COMMENTS.put(rows, kept)
            return list(kept)
        return CommentRow(*self.values[key])

    def _slice(self, part: slice):
        if self.key is None or part.step is not None:
            return self.values[part]
        # The queryset's database, without making it.
        db = self.data.db if "data" in self.__dict__ else router.db_for_read(Rating)
        memo_key = (self.key, part.start, part.stop, db)
        compiled = _COMMENT_PAGES.get(memo_key)
        if compiled is None:
            try:
                sql, params = self.values[part].query.get_compiler(using=db).as_sql()
                compiled = (sql, tuple(params))
            except EmptyResultSet:  # a condition no row meets: no query, as the ORM
                compiled = (None, ())
            _COMMENT_PAGES.put(memo_key, compiled)
        sql, params = compiled
        if sql is None:
            return []
        # The columns need no converters (texts, an integer, timestamps): the rows are
        # what values_list() gives.
        with connections[db].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def __iter__(self):
        return (CommentRow(*values) for values in self.values)

    def __len__(self):
        return self.data.count()
