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

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from catalogue.models import CatalogueItem, CostCentre, Department, Employee
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
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


def _request_ids(requests: QuerySet[ServiceRequest]) -> tuple[str, tuple]:
    return requests.order_by().values("pk").query.sql_with_params()


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
    ids_sql, ids_params = _request_ids(requests)
    sql = f"""
    WITH {_months_cte()},
    reqs AS (
        SELECT r.id, r.cost_centre_id, r.price_once, r.price_monthly, r.state, r.closed_at
        FROM {ServiceRequest._meta.db_table} r
        WHERE r.id IN ({ids_sql})
    ),
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
        WHERE e.revoked_at IS NOT NULL OR e.state <> %s
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
        *ids_params,
        settings.TIME_ZONE,
        RequestState.FULFILLED,
        settings.TIME_ZONE,
        settings.TIME_ZONE,
        EntitlementState.REVOKED,
        timezone.now(),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [CostRow(*row) for row in cursor.fetchall()]


_BREAKDOWN_SQL = {
    BREAKDOWN_SERVICE: ("0", "''"),
    BREAKDOWN_DEPARTMENT: ("emp.department_id", "d.code || ' ' || d.name"),
    BREAKDOWN_COST_CENTRE: ("r.cost_centre_id", "cc.code || ' ' || cc.name"),
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
    key_sql, label_sql = _BREAKDOWN_SQL[breakdown]
    ids_sql, ids_params = _request_ids(requests)
    sql = f"""
    WITH {_months_cte()},
    reqs AS (
        SELECT r.id, r.item_id, r.submitted_at, {key_sql} AS grp
        FROM {ServiceRequest._meta.db_table} r
        JOIN {Employee._meta.db_table} emp ON emp.id = r.beneficiary_id
        WHERE r.id IN ({ids_sql})
    ),
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
        WHERE e.revoked_at IS NOT NULL OR e.state <> %s
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
        *ids_params,
        settings.TIME_ZONE,
        settings.TIME_ZONE,
        settings.TIME_ZONE,
        EntitlementState.REVOKED,
        now,
        breakdown,
        breakdown,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [UsageRow(*row) for row in cursor.fetchall()]


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
