"""Reads for the controlling pages. Every figure is aggregated in one SQL statement.

The request set comes from a Django queryset (already narrowed by the filters); it is
embedded as a subquery, and the months of the period come from ``generate_series``, so
the number of queries does not grow with the number of requests.

Months are calendar months in the portal's time zone (``settings.TIME_ZONE``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import groupby

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalogue.models import CatalogueItem, Category, CostCentre, Department
from metrics.controlling.forecast import HORIZON, Forecast, add_months, forecast
from provisioning.choices import EntitlementState
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


def _months_cte() -> str:
    """Calendar months of the period with their start and end as timestamptz in local time.

    Parameters: time zone, time zone, first month, last month.
    """
    return """
    months AS (
        SELECT m::date AS month,
               (m AT TIME ZONE %s) AS starts,
               ((m + interval '1 month') AT TIME ZONE %s) AS ends
        FROM generate_series(%s::timestamp, %s::timestamp, interval '1 month') AS m
    )"""


# The calendar month (local time) of a timestamptz column; one time-zone parameter.
LOCAL_MONTH = "date_trunc('month', {col} AT TIME ZONE %s)::date"


def _months_params(first: datetime.date, last: datetime.date) -> list:
    tz = settings.TIME_ZONE
    return [tz, tz, month_start(first), month_start(last)]


def _request_rows(requests: QuerySet[ServiceRequest], *columns, **expressions) -> tuple[str, tuple]:
    """The filtered requests' columns as SQL, for a ``NOT MATERIALIZED`` CTE.

    Selecting from the filtered queryset itself (rather than ``id IN (…)``) lets PostgreSQL
    push each part's range conditions into the scan and use the indexes on the timestamps.
    """
    return requests.order_by().values(*columns, **expressions).query.sql_with_params()


def costs_per_cost_centre(
    requests: QuerySet[ServiceRequest], *, first: datetime.date, last: datetime.date
) -> list[CostRow]:
    """One-off and monthly charges per cost centre and month, at order-time prices.

    * One-off: ``price_once`` of each request fulfilled in that month (``closed_at``).
    * Monthly: ``price_monthly`` for every month in which the request's entitlement was
      active at some time: granted before the month ends and not revoked before it starts.
      Months that have not begun yet are not charged.
    The cost centre is the one the request was charged to when it was placed.
    """
    if requests.query.is_empty():
        return []
    now = timezone.now()
    columns = ("id", "cost_centre_id", "price_once", "price_monthly", "state", "closed_at")
    rows_sql, rows_params = _request_rows(requests, *columns)
    sql = f"""
    WITH {_months_cte()},
    reqs ({", ".join(columns)}) AS NOT MATERIALIZED ({rows_sql}),
    once AS (
        SELECT r.cost_centre_id, {LOCAL_MONTH.format(col="r.closed_at")} AS month,
               SUM(r.price_once) AS once, COUNT(*) AS fulfilled
        FROM reqs r
        WHERE r.state = %s AND r.closed_at >= (SELECT MIN(starts) FROM months)
              AND r.closed_at < (SELECT MAX(ends) FROM months)
        GROUP BY 1, 2
    ),
    spans AS (
        -- Entitlements with the same first and last charged month collapse into one row
        -- before they meet the months, so the range join stays small.
        SELECT r.cost_centre_id,
               {LOCAL_MONTH.format(col="e.granted_at")} AS first_month,
               {LOCAL_MONTH.format(col="(e.revoked_at - interval '1 microsecond')")}
                   AS last_month,
               SUM(r.price_monthly) AS monthly, COUNT(*) AS entitlements
        FROM reqs r
        JOIN {Entitlement._meta.db_table} e ON e.request_id = r.id
        WHERE r.state = %s AND (e.revoked_at IS NOT NULL OR e.state <> %s)
              AND e.granted_at < LEAST((SELECT MAX(ends) FROM months), %s)
              AND (e.revoked_at IS NULL OR e.revoked_at > (SELECT MIN(starts) FROM months))
        GROUP BY 1, 2, 3
    ),
    monthly AS (
        SELECT s.cost_centre_id, m.month, SUM(s.monthly) AS monthly,
               SUM(s.entitlements) AS entitlements
        FROM spans s
        JOIN months m ON m.month >= s.first_month AND m.starts <= %s
             AND (s.last_month IS NULL OR m.month <= s.last_month)
        GROUP BY 1, 2
    )
    SELECT COALESCE(o.month, mo.month) AS month, cc.code, cc.name,
           COALESCE(o.fulfilled, 0), COALESCE(o.once, 0.00),
           COALESCE(mo.entitlements, 0), COALESCE(mo.monthly, 0.00)
    FROM once o
    FULL OUTER JOIN monthly mo
         ON mo.cost_centre_id = o.cost_centre_id AND mo.month = o.month
    JOIN {CostCentre._meta.db_table} cc ON cc.id = COALESCE(o.cost_centre_id, mo.cost_centre_id)
    ORDER BY month, cc.code
    """  # noqa: S608 - only table names and Django's own compiled SQL are interpolated
    params = [
        *_months_params(first, last),
        *rows_params,
        settings.TIME_ZONE,
        RequestState.FULFILLED,
        settings.TIME_ZONE,
        settings.TIME_ZONE,
        RequestState.FULFILLED,  # only fulfilled requests have entitlements: use the index
        EntitlementState.REVOKED,
        now,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [CostRow(*row) for row in cursor.fetchall()]


# The second grouping of the usage report: its value per request and its label in SQL.
_BREAKDOWN = {
    BREAKDOWN_SERVICE: (Value(0), "''"),
    BREAKDOWN_DEPARTMENT: (F("beneficiary__department_id"), "d.code || ' ' || d.name"),
    BREAKDOWN_COST_CENTRE: (F("cost_centre_id"), "cc.code || ' ' || cc.name"),
}


def usage_per_service(
    requests: QuerySet[ServiceRequest],
    *,
    first: datetime.date,
    last: datetime.date,
    breakdown: str = BREAKDOWN_SERVICE,
) -> list[UsageRow]:
    """Orders per month (by submission) and entitlements active at each month's end.

    For the current month "month end" is now. ``breakdown`` adds the beneficiary's
    department or the charged cost centre as a second grouping.
    """
    if requests.query.is_empty():
        return []
    group, label_sql = _BREAKDOWN[breakdown]
    rows_sql, rows_params = _request_rows(
        requests, "id", "item_id", "submitted_at", "state", grp=group
    )
    sql = f"""
    WITH {_months_cte()},
    reqs (id, item_id, submitted_at, state, grp) AS NOT MATERIALIZED ({rows_sql}),
    orders AS (
        SELECT r.item_id, r.grp, {LOCAL_MONTH.format(col="r.submitted_at")} AS month,
               COUNT(*) AS orders
        FROM reqs r
        WHERE r.submitted_at >= (SELECT MIN(starts) FROM months)
              AND r.submitted_at < (SELECT MAX(ends) FROM months)
        GROUP BY 1, 2, 3
    ),
    spans AS (
        -- Active at the end of every month from the grant month up to the month before
        -- the revocation; equal spans collapse before they meet the months.
        SELECT r.item_id, r.grp,
               {LOCAL_MONTH.format(col="e.granted_at")} AS first_month,
               {LOCAL_MONTH.format(col="e.revoked_at")} AS revoked_month,
               COUNT(*) AS entitlements
        FROM reqs r
        JOIN {Entitlement._meta.db_table} e ON e.request_id = r.id
        WHERE r.state = %s AND (e.revoked_at IS NOT NULL OR e.state <> %s)
              AND e.granted_at < LEAST((SELECT MAX(ends) FROM months), %s)
              AND (e.revoked_at IS NULL OR e.revoked_at > (SELECT MIN(starts) FROM months))
        GROUP BY 1, 2, 3, 4
    ),
    active AS (
        SELECT s.item_id, s.grp, m.month, SUM(s.entitlements) AS active
        FROM spans s
        JOIN months m ON m.month >= s.first_month AND m.starts <= %s
             AND (s.revoked_month IS NULL OR m.month < s.revoked_month)
        GROUP BY 1, 2, 3
    ),
    counts AS (
        SELECT COALESCE(o.item_id, a.item_id) AS item_id, COALESCE(o.grp, a.grp) AS grp,
               COALESCE(o.month, a.month) AS month,
               COALESCE(o.orders, 0) AS orders, COALESCE(a.active, 0) AS active
        FROM orders o
        FULL OUTER JOIN active a
             ON a.item_id = o.item_id AND a.grp = o.grp AND a.month = o.month
    )
    SELECT c.month, i.name, COALESCE({label_sql}, ''), c.orders, c.active
    FROM counts c
    JOIN {CatalogueItem._meta.db_table} i ON i.id = c.item_id
    LEFT JOIN {Department._meta.db_table} d
         ON %s = '{BREAKDOWN_DEPARTMENT}' AND d.id = c.grp
    LEFT JOIN {CostCentre._meta.db_table} cc
         ON %s = '{BREAKDOWN_COST_CENTRE}' AND cc.id = c.grp
    ORDER BY c.month, i.name, 3
    """  # noqa: S608 - only table names, whitelisted columns and Django's SQL are interpolated
    now = timezone.now()
    params = [
        *_months_params(first, last),
        *rows_params,
        settings.TIME_ZONE,
        settings.TIME_ZONE,
        settings.TIME_ZONE,
        RequestState.FULFILLED,  # only fulfilled requests have entitlements: use the index
        EntitlementState.REVOKED,
        now,
        now,
        breakdown,
        breakdown,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [UsageRow(*row) for row in cursor.fetchall()]


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
    rows = (
        with_licence_usage(items.filter(licence_pool_size__isnull=False))
        .annotate(
            granted=Coalesce(Subquery(_window_count("granted_at", since, now)), 0),
            revoked=Coalesce(Subquery(_window_count("revoked_at", since, now)), 0),
        )
        .select_related("category")
        .order_by("name", "pk")
    )
    today = timezone.localdate(now)
    return [
        PoolRow(
            item_id=item.pk,
            service=item.name,
            slug=item.slug,
            category=item.category.name,
            is_active=item.is_active,
            size=item.licence_pool_size,
            warning_level=item.licence_warning_level,
            in_use=item.licences_in_use,
            reserved=item.licences_reserved,
            granted=item.granted,
            revoked=item.revoked,
            trend_days=trend_days,
            today=today,
        )
        for item in rows
    ]


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


def demand_history(
    requests: QuerySet[ServiceRequest], *, first: datetime.date, last: datetime.date
) -> list[DemandRow]:
    """Orders per active service and month (by submission), months without orders as 0.

    A service's series starts after its first month with an order, counted from the month
    before ``first``: a service ordered before the period runs from ``first``; one first
    ordered inside it starts the month after, because it entered the catalogue during that
    month, whose count would read as a jump in demand. So a service added last spring is
    not read as "no demand" for the year before, nor as a surge in its first weeks.
    """
    if requests.query.is_empty():
        return []
    rows_sql, rows_params = _request_rows(requests, "item_id", "submitted_at")
    sql = f"""
    WITH {_months_cte()},
    reqs (item_id, submitted_at) AS NOT MATERIALIZED ({rows_sql}),
    counts AS (
        SELECT r.item_id, {LOCAL_MONTH.format(col="r.submitted_at")} AS month,
               COUNT(*) AS orders
        FROM reqs r
        WHERE r.submitted_at >= (%s::timestamp AT TIME ZONE %s)
              AND r.submitted_at < (SELECT MAX(ends) FROM months)
        GROUP BY 1, 2
    ),
    firsts AS (SELECT item_id, MIN(month) AS first_month FROM counts GROUP BY 1)
    SELECT i.id, i.name, cat.name, m.month, COALESCE(c.orders, 0)
    FROM firsts f
    JOIN {CatalogueItem._meta.db_table} i ON i.id = f.item_id AND i.is_active
    JOIN {Category._meta.db_table} cat ON cat.id = i.category_id
    JOIN months m ON m.month > f.first_month
    LEFT JOIN counts c ON c.item_id = f.item_id AND c.month = m.month
    ORDER BY i.name, i.id, m.month
    """  # noqa: S608 - only table names and Django's own compiled SQL are interpolated
    lead_in = add_months(month_start(first), -1)
    params = [
        *_months_params(first, last),
        *rows_params,
        settings.TIME_ZONE,
        lead_in,
        settings.TIME_ZONE,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
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
    requests: QuerySet[ServiceRequest],
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
        demand_history(requests, first=first, last=last), key=lambda row: row.item_id
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
class RareRow:
    item_id: int
    service: str
    slug: str
    category: str
    orders: int
    last_ordered_at: datetime.datetime | None
    in_catalogue_since: datetime.datetime


def rarely_ordered(
    requests: QuerySet[ServiceRequest],
    items: QuerySet[CatalogueItem],
    *,
    first: datetime.date,
    last: datetime.date,
    fewer_than: int,
) -> list[RareRow]:
    """Active ``items`` with fewer than ``fewer_than`` orders (of ``requests``) submitted in
    the months ``first`` … ``last``, with the last order ever; candidates to retire.
    The fewest orders first, and among those the longest unordered."""
    if items.query.is_empty():
        return []
    items_sql, items_params = items.order_by().values("pk").query.sql_with_params()
    if requests.query.is_empty():
        rows_sql, rows_params = "SELECT NULL::bigint, NULL::timestamptz WHERE false", ()
    else:
        rows_sql, rows_params = _request_rows(requests, "item_id", "submitted_at")
    sql = f"""
    WITH {_months_cte()},
    reqs (item_id, submitted_at) AS NOT MATERIALIZED ({rows_sql}),
    agg AS (
        SELECT r.item_id,
               COUNT(*) FILTER (
                   WHERE r.submitted_at >= (SELECT MIN(starts) FROM months)
                     AND r.submitted_at < (SELECT MAX(ends) FROM months)
               ) AS orders,
               MAX(r.submitted_at) AS last_ordered_at
        FROM reqs r
        WHERE r.submitted_at IS NOT NULL
        GROUP BY 1
    )
    SELECT i.id, i.name, i.slug, cat.name, COALESCE(a.orders, 0), a.last_ordered_at,
           i.created_at
    FROM {CatalogueItem._meta.db_table} i
    JOIN {Category._meta.db_table} cat ON cat.id = i.category_id
    LEFT JOIN agg a ON a.item_id = i.id
    WHERE i.is_active AND i.id IN ({items_sql}) AND COALESCE(a.orders, 0) < %s
    ORDER BY 5, a.last_ordered_at NULLS FIRST, i.name
    """  # noqa: S608 - only table names and Django's own compiled SQL are interpolated
    params = [*_months_params(first, last), *rows_params, *items_params, fewer_than]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
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


def _percentiles(expression: str, condition: str = "") -> str:
    """p50 and p90 of ``expression`` in one sort, as an interval[2]."""
    where = f" FILTER (WHERE {condition})" if condition else ""
    return f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {expression}){where}"


def lead_times_per_service(
    requests: QuerySet[ServiceRequest], *, first: datetime.date, last: datetime.date
) -> list[LeadTimeRow]:
    """p50/p90 of approval waiting, fulfilment and total lead time, and the automation count,
    per service and overall (the last row), for requests fulfilled in the period.

    * approval waiting: ``submitted_at`` → ``approved_at``, only requests with approval steps
      (those approved without steps wait no time and would only pull the figures to zero);
    * fulfilment: ``approved_at`` → ``closed_at`` (the queue time before someone takes it,
      failures and reopening included: the requester waits through all of it);
    * total: ``submitted_at`` → ``closed_at``;
    * automated: requests with ``fulfilled_automatically`` (see docs/controlling.md).
    """
    if requests.query.is_empty():
        return []
    reqs = fulfilled_in_period(requests, first=first, last=last).values(
        "item_id",
        "submitted_at",
        "approved_at",
        "closed_at",
        "fulfilled_automatically",
        "approval_steps",
    )
    reqs_sql, reqs_params = reqs.query.sql_with_params()
    ctes = f"""
    reqs (item_id, submitted_at, approved_at, closed_at, automated, steps) AS ({reqs_sql}),
    agg AS (
        SELECT item_id, GROUPING(item_id) AS overall, COUNT(*) AS fulfilled,
               COUNT(*) FILTER (WHERE steps > 0) AS with_approval,
               {_percentiles("approved_at - submitted_at", "steps > 0")} AS approval,
               {_percentiles("closed_at - approved_at")} AS fulfilment,
               {_percentiles("closed_at - submitted_at")} AS total,
               COUNT(*) FILTER (WHERE automated) AS automated
        FROM reqs
        GROUP BY GROUPING SETS ((item_id), ())
        HAVING COUNT(*) > 0
    )"""  # noqa: S608 - only constants and Django's own compiled SQL
    columns = "a.fulfilled, a.with_approval, a.approval, a.fulfilment, a.total, a.automated"
    rows = _per_service(ctes, columns, reqs_params)
    return [
        LeadTimeRow(
            item_id,
            name,
            fulfilled,
            with_approval,
            *_pair(approval),
            *_pair(fulfilment),
            *_pair(total),
            automated,
        )
        for item_id, name, fulfilled, with_approval, approval, fulfilment, total, automated in rows
    ]


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


def _pair(values: list | None) -> tuple:
    return (values[0], values[1]) if values else (None, None)


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

    @property
    def is_total(self) -> bool:
        return self.item_id is None

    @property
    def distribution(self) -> tuple[int, int, int, int, int]:
        return (self.score_1, self.score_2, self.score_3, self.score_4, self.score_5)


def satisfaction_per_service(
    requests: QuerySet[ServiceRequest], *, first: datetime.date, last: datetime.date
) -> list[SatisfactionRow]:
    """Average score (two decimals), number of ratings and their distribution 1 … 5 per
    service and overall (the last row), over the requests fulfilled in the period.

    Services with fulfilled but unrated requests are listed with ``rated`` 0, so the share
    of requesters who answered is visible.
    """
    if requests.query.is_empty():
        return []
    reqs_sql, reqs_params = (
        fulfilled_in_period(requests, first=first, last=last)
        .values("pk", "item_id")
        .query.sql_with_params()
    )
    scores = ", ".join(f"COUNT(*) FILTER (WHERE ra.score = {n}) AS s{n}" for n in range(1, 6))
    ctes = f"""
    reqs (id, item_id) AS ({reqs_sql}),
    agg AS (
        SELECT r.item_id, GROUPING(r.item_id) AS overall, COUNT(*) AS fulfilled,
               COUNT(ra.id) AS rated, ROUND(AVG(ra.score), 2) AS average, {scores}
        FROM reqs r
        LEFT JOIN {Rating._meta.db_table} ra ON ra.request_id = r.id
        GROUP BY GROUPING SETS ((r.item_id), ())
        HAVING COUNT(*) > 0
    )"""  # noqa: S608 - only table names, constants and Django's own compiled SQL
    columns = "a.fulfilled, a.rated, a.average, a.s1, a.s2, a.s3, a.s4, a.s5"
    rows = _per_service(ctes, columns, reqs_params)
    return [SatisfactionRow(*row) for row in rows]


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
