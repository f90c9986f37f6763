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

from django.conf import settings
from django.db import connection
from django.db.models import F, QuerySet, Value
from django.utils import timezone

from catalogue.models import CatalogueItem, CostCentre, Department
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest


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
