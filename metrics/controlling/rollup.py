# ruff: noqa: S608 - SQL built from table names, constants and placeholders; values are parameters
"""Monthly roll-ups of the controlling figures: how they are computed, kept and read.

A *figures row* is one month × service × department (the beneficiary's) × cost centre
(charged) with counts and amounts (``metrics.models.MonthlyFigures``); a *durations row* is
one bucket of a lead-time histogram (``MonthlyDurations``). The same SQL computes them for
the roll-up of a closed month and, live, for the months a page needs that are not rolled up
(the open month, a month marked dirty, a month before the first run): a page's figures are
the roll-up rows of the current months plus the live rows of the others, so they always equal
the raw aggregate.

Entitlement figures of a month depend on every entitlement granted before it. Live they are
carried forward from the last current roll-up month *F* before the live months: its
entitlements active at month end (stored per row) plus the grants since *F* minus the
revocations since *F* (indexed ranges on ``granted_at`` and ``revoked_at``), so the open
month reads one month of changes, not the half million active entitlements. Without a
current month before, *F* is "the beginning" and every entitlement is read.

Database triggers (installed by migration ``metrics.0001``, see ``TRIGGERS``) mark the closed
months a change touches as dirty, in the changing transaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
import time
from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from catalogue.models import CatalogueItem, Employee
from itportal.memo import Memo
from metrics.models import MonthlyDurations, MonthlyFigures, MonthlySla, RollupMonth
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import RequestState
from requests_app.models import Rating, ServiceRequest

logger = logging.getLogger(__name__)

# Lead-time histograms: bucket k holds durations in (GAMMA^(k-1), GAMMA^k] seconds and reads
# as 2·GAMMA^k / (GAMMA + 1): within (GAMMA − 1) / (GAMMA + 1) < 1 % of any value in it, so
# a percentile interpolated between two buckets is within 1 % of the exact one.
GAMMA = 1.02
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
_BUCKET_OFFSET = 20000  # keeps every positive bucket above 0 (durations down to 1 µs)
APPROVAL, FULFILMENT, TOTAL = 1, 2, 3

FIGURES = (
    "orders",
    "fulfilled",
    "once",
    "automated",
    "with_approval",
    "rated",
    "score_sum",
    "score_1",
    "score_2",
    "score_3",
    "score_4",
    "score_5",
    "commented",
    "charged",
    "monthly",
    "active_end",
    "active_end_monthly",
)
DIMENSIONS = ("item_id", "department_id", "cost_centre_id")

# Which part of the live SQL computes which figures. A page reads only the parts of the
# figures it shows: at a million requests the open month's fulfilled requests with their
# ratings and its entitlement changes cost 50 ms each, for pages that sum only the orders.
ORDER_FIGURES = frozenset({"orders"})
RATING_FIGURES = frozenset(
    {"rated", "score_sum", *(f"score_{n}" for n in range(1, 6)), "commented"}
)
FULFILMENT_FIGURES = frozenset({"fulfilled", "once", "automated", "with_approval"})
ENTITLEMENT_FIGURES = frozenset({"charged", "monthly", "active_end", "active_end_monthly"})

T_REQ = ServiceRequest._meta.db_table
T_EMP = Employee._meta.db_table
T_ENT = Entitlement._meta.db_table
T_RATING = Rating._meta.db_table
T_ITEM = CatalogueItem._meta.db_table
T_FIG = MonthlyFigures._meta.db_table
T_DUR = MonthlyDurations._meta.db_table
T_MONTH = RollupMonth._meta.db_table
T_SLA = MonthlySla._meta.db_table

FULFILLED = RequestState.FULFILLED.value
REVOKED = EntitlementState.REVOKED.value


def bucket_sql(seconds: str) -> str:
    """SQL: the histogram bucket of a duration in seconds (float8); 0 for 0, negative for <0."""
    k = f"CEIL(LN(GREATEST(ABS({seconds}), 1e-6)) / LN({GAMMA}))::int + {_BUCKET_OFFSET}"
    return f"(CASE WHEN {seconds} = 0 THEN 0 WHEN {seconds} > 0 THEN {k} ELSE -({k}) END)"


def bucket_seconds(bucket: int) -> float:
    """The value a bucket reads as, in seconds."""
    if bucket == 0:
        return 0.0
    k = abs(bucket) - _BUCKET_OFFSET
    value = 2 * GAMMA**k / (GAMMA + 1)
    return value if bucket > 0 else -value


@dataclass(frozen=True)
class Scope:
    """What a page counts: the filters of ``ControllingFilterSet`` as ids (None = all)."""

    department_id: int | None = None
    cost_centre_id: int | None = None
    category_id: int | None = None
    item_id: int | None = None
    nothing: bool = False  # invalid filters: an empty report

    def sql(self, item: str, department: str, cost_centre: str) -> tuple[str, list]:
        """`` AND …`` conditions on the given columns, and their parameters."""
        parts, params = [], []
        for column, value in (
            (department, self.department_id),
            (cost_centre, self.cost_centre_id),
            (item, self.item_id),
        ):
            if value is not None:
                parts.append(f" AND {column} = %s")
                params.append(value)
        if self.category_id is not None:
            parts.append(f" AND {item} IN (SELECT id FROM {T_ITEM} WHERE category_id = %s)")
            params.append(self.category_id)
        return "".join(parts), params

    @property
    def level(self) -> int:
        """The durations level that breaks down by exactly the filtered dimensions."""
        return (self.department_id is not None) + 2 * (self.cost_centre_id is not None)


ALL = Scope()


# --- months ----------------------------------------------------------------------------------


def add_months(month: datetime.date, n: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + n
    return datetime.date(index // 12, index % 12 + 1, 1)


def month_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """Start of ``month`` and of the month after, in the portal's time zone."""
    tz = timezone.get_default_timezone()
    month = month.replace(day=1)
    after = add_months(month, 1) if month < datetime.date(9999, 12, 1) else datetime.date.max
    return (
        datetime.datetime.combine(month, datetime.time(), tzinfo=tz),
        datetime.datetime.combine(after, datetime.time(), tzinfo=tz),
    )


def open_month(now: datetime.datetime | None = None) -> datetime.date:
    return timezone.localdate(now or timezone.now()).replace(day=1)


def month_range(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        if month.year == 9999 and month.month == 12:
            break
        month = add_months(month, 1)
    return months


@dataclass(frozen=True)
class Plan:
    """Which months of a period come from the roll-up and which are read live."""

    rolled: list[datetime.date]
    live: list[datetime.date]
    # Each run of consecutive live months, with the current roll-up month before it whose
    # entitlements it carries forward (None: from the beginning).
    runs: list[tuple[list[datetime.date], datetime.date | None]]
    now: datetime.datetime
    # (month, version, computed_at) of each rolled month: what the roll-up rows the plan
    # reads were computed from. A recomputed month or one marked dirty changes it.
    stamp: tuple = ()
    # (open month, cut-off): the open month is in ``rolled`` with its roll-up up to the
    # cut-off (the start of an hour), and only the rest of it, from the cut-off on, is live.
    tail: tuple[datetime.date, datetime.datetime] | None = None
    # Computing a roll-up of the open month up to an hour: the live months end here.
    cut: datetime.datetime | None = None


@contextlib.contextmanager
def snapshot():
    """The block's reads in one snapshot: a REPEATABLE READ, READ ONLY transaction.

    A page reads the plan (which months come from the roll-up, the open month's cut-off)
    and then the figures, in separate statements. Under READ COMMITTED a roll-up committed
    between them (the open month's cut-off moved on at the start of an hour, a back-dated
    change recomputed) is half seen: the open month's new roll-up plus the live rows from
    its old cut-off counts an hour twice. In one snapshot the plan and the rows agree, and the
    kept sums are keyed by the stamps of the rows they were read with. Read only: such a
    transaction never fails to serialize and never writes. Everything that reads has to
    run inside (a template's queries too, a streamed export's rows before it streams). A
    transaction is also what PgBouncer's transaction pooling keeps on one connection.
    Without parallel workers: a page's queries read small index ranges, and on a busy
    server a Gather's workers took 30 ms to start and probed twice the rows (the comment
    count at a million requests: 53 ms parallel, 14 ms not).

    Inside a transaction already (tests, ``ATOMIC_REQUESTS``) the block runs in that one:
    its isolation level can only be set before its first statement."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                " SET LOCAL max_parallel_workers_per_gather = 0"
            )
        yield


def plan(first: datetime.date, last: datetime.date, now: datetime.datetime | None = None) -> Plan:
    """One query: the current roll-up months up to ``last``, and the open month's roll-up up
    to an hour if it is current."""
    now = now or timezone.now()
    # As SQL: every controlling view asks, and the ORM compiled it each time (0.3 ms CPU).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT month, version, computed_at, through FROM {T_MONTH}"
            " WHERE NOT dirty AND month <= %s ORDER BY month",
            [last],
        )
        rows = cursor.fetchall()
    tail = None
    for month, _version, _computed, through in rows:
        if through is not None and month == open_month(now) and through <= now:
            tail = (month, through)
    result = _plan([row[0] for row in rows if row[3] is None], first, last, now, tail=tail)
    rolled = set(result.rolled)
    return dataclasses.replace(result, stamp=tuple(row[:3] for row in rows if row[0] in rolled))


def _plan(current, first, last, now, *, tail=None) -> Plan:
    fresh = set(current)
    closed_before = open_month(now)
    months = month_range(first, last)
    if tail is not None and tail[0] not in months:
        tail = None
    rolled = [m for m in months if (m in fresh and m < closed_before) or (tail and m == tail[0])]
    live = [m for m in months if m not in rolled and month_bounds(m)[0] <= now]
    runs: list[tuple[list[datetime.date], datetime.date | None]] = []
    for month in live:
        if runs and runs[-1][0][-1] == add_months(month, -1):
            runs[-1][0].append(month)
        else:
            earlier = [m for m in current if m < month and m < closed_before]
            runs.append(([month], earlier[-1] if earlier else None))
    return Plan(rolled=rolled, live=live, runs=runs, now=now, tail=tail)


def _months_values(
    months: list[datetime.date], cut: datetime.datetime | None = None
) -> tuple[str, list]:
    """The months with their bounds (each ending at ``cut`` at the latest)."""
    periods = []
    for month in months:
        starts, ends = month_bounds(month)
        periods.append((month, starts, min(ends, cut) if cut else ends))
    return _periods_values(periods)


def _periods_values(
    periods: list[tuple[datetime.date, datetime.datetime, datetime.datetime]],
) -> tuple[str, list]:
    """(month, starts, ends) rows: the instants [starts, ends) count for that month."""
    rows, params = [], []
    for month, starts, ends in periods:
        rows.append("(%s::date, %s::timestamptz, %s::timestamptz)")
        params += [month, starts, ends]
    return f"(VALUES {', '.join(rows)}) AS m(month, starts, ends)", params


def _live_periods(plan: Plan) -> list[tuple[datetime.date, datetime.datetime, datetime.datetime]]:
    """What orders, fulfilments and durations read live: the live months, and the open
    month from its roll-up's cut-off on."""
    periods = []
    for month in plan.live:
        starts, ends = month_bounds(month)
        periods.append((month, starts, min(ends, plan.cut) if plan.cut else ends))
    if plan.tail is not None:
        month, since = plan.tail
        periods.append((month, since, month_bounds(month)[1]))
    return periods


# --- the figures SQL -------------------------------------------------------------------------

# Amounts keep two decimal places even where only zeros are summed.
_AMOUNTS = ("once", "monthly", "active_end_monthly")
_ZERO = {name: "0.00" if name in _AMOUNTS else "0" for name in FIGURES}


def _select(month: str, dims: tuple[str, str, str], **figures: str) -> str:
    values = {**_ZERO, **figures}
    return ", ".join([month, *dims, *(f"{values[name]} AS {name}" for name in FIGURES)])


def live_figures_sql(
    plan: Plan, scope: Scope, figures: frozenset[str] | None = None
) -> tuple[str, list]:
    """Figures rows of ``plan.live`` from the raw tables (several rows per key possible).

    ``figures`` (default: all) names the figures the caller sums; parts of the SQL that
    compute none of them are left out, so the other figures of the rows may read 0."""
    needed = frozenset(FIGURES) if figures is None else figures
    if not needed or not needed <= set(FIGURES):
        raise ValueError(f"figures to compute, of {FIGURES}: not {sorted(needed)}")
    months_sql, months_params = _periods_values(_live_periods(plan))
    where, where_params = scope.sql("r.item_id", "b.department_id", "r.cost_centre_id")
    dims = ("r.item_id", "b.department_id", "r.cost_centre_id")
    parts = []
    if needed & ORDER_FIGURES:
        parts.append(_live_orders(months_sql, months_params, where, where_params, dims))
    if needed & (FULFILMENT_FIGURES | RATING_FIGURES):
        parts.append(
            _live_fulfilled(
                months_sql,
                months_params,
                where,
                where_params,
                dims,
                ratings=bool(needed & RATING_FIGURES),
            )
        )
    if needed & ENTITLEMENT_FIGURES:
        for months, base in plan.runs:
            parts += _entitlement_parts(months, base, plan.now, scope, cut=plan.cut)
        if plan.tail is not None:
            month, since = plan.tail
            parts += _entitlement_parts([month], None, plan.now, scope, since=since)
    return _union(parts)


def _live_orders(months_sql, months_params, where, where_params, dims) -> tuple[str, list]:
    """Orders, by submission month."""
    return (
        f"""SELECT {_select("r.month", dims, orders="COUNT(*)")}
            FROM (
                SELECT m.month, r.item_id, r.beneficiary_id, r.cost_centre_id
                FROM {T_REQ} r JOIN {months_sql}
                     ON r.submitted_at >= m.starts AND r.submitted_at < m.ends
                OFFSET 0
            ) r
            JOIN {T_EMP} b ON b.id = r.beneficiary_id
            WHERE true{where}
            GROUP BY 1, 2, 3, 4""",
        [*months_params, *where_params],
    )


def _live_fulfilled(
    months_sql, months_params, where, where_params, dims, *, ratings: bool
) -> tuple[str, list]:
    """Fulfilled, one-off costs, automation, approval steps and (``ratings``) the ratings:
    by fulfilment month."""
    rating_figures = {}
    rating_join = ""
    if ratings:
        rating_figures = {
            "rated": "COUNT(ra.id)",
            "score_sum": "COALESCE(SUM(ra.score), 0)",
            **{f"score_{n}": f"COUNT(*) FILTER (WHERE ra.score = {n})" for n in range(1, 6)},
            "commented": "COUNT(*) FILTER (WHERE ra.commented)",
        }
        rating_join = f"""
            -- One index look-up per request (a hash join would read every rating).
            LEFT JOIN LATERAL (
                SELECT x.id, x.score, x.comment <> '' AS commented
                FROM {T_RATING} x WHERE x.request_id = r.id LIMIT 1
            ) ra ON true"""
    return (
        f"""SELECT {
            _select(
                "r.month",
                dims,
                fulfilled="COUNT(*)",
                once="SUM(r.price_once)",
                automated="COUNT(*) FILTER (WHERE r.fulfilled_automatically)",
                with_approval="COUNT(*) FILTER (WHERE r.approval_steps > 0)",
                **rating_figures,
            )
        }
            FROM ({_fulfilled_in(months_sql)}) r
            JOIN {T_EMP} b ON b.id = r.beneficiary_id{rating_join}
            WHERE true{where}
            GROUP BY 1, 2, 3, 4""",
        [*months_params, FULFILLED, *where_params],
    )


def _entitlement_parts(
    months: list[datetime.date],
    base: datetime.date | None,
    now,
    scope: Scope,
    *,
    cut: datetime.datetime | None = None,
    since: datetime.datetime | None = None,
) -> list[tuple[str, list]]:
    """Entitlements charged in and active at the end of consecutive ``months``: those active
    at the end of ``base`` (its roll-up rows), plus the grants since, minus the revocations
    since (an entitlement's revocation at a month's first instant ends its charge there).

    ``cut``: the months end there (the open month's roll-up up to an hour: charged up to the
    cut-off, active at it). ``since``: only the changes from this cut-off on, to add to the
    open month's roll-up rows up to it (read as a rolled month): its ``charged`` already
    holds every entitlement of the month granted before, its ``active_end`` those active at
    the cut-off, so a grant since adds to both, a revocation since of an earlier grant ends
    only its activity."""
    months_sql, months_params = _months_values(months, cut)
    where, where_params = scope.sql("r.item_id", "b.department_id", "r.cost_centre_id")
    base_end = since or (month_bounds(base)[1] if base else "-infinity")
    max_end = month_bounds(months[-1])[1]
    if cut:
        max_end = min(max_end, cut)
    # (With ``since``, the earlier grants read are revoked at or after it, so after the
    # month's start: the first branch of ``charged`` is 0 for them, as it must be.)
    charged = (
        "CASE WHEN e.g < %s::timestamptz THEN CASE WHEN e.rv <= m.starts THEN -1 ELSE 0 END"
        " WHEN e.g < LEAST(m.ends, %s::timestamptz) AND (e.rv IS NULL OR e.rv > m.starts)"
        " THEN 1 ELSE 0 END"
    )
    active = (
        "CASE WHEN e.g < %s::timestamptz THEN CASE WHEN e.rv < m.ends THEN -1 ELSE 0 END"
        " WHEN e.g < LEAST(m.ends, %s::timestamptz) AND (e.rv IS NULL OR e.rv >= m.ends)"
        " THEN 1 ELSE 0 END"
    )
    parts = [
        (
            f"""SELECT {
                _select(
                    "m.month",
                    ("e.item_id", "e.department_id", "e.cost_centre_id"),
                    charged=f"SUM({charged})",
                    monthly=f"SUM(({charged}) * e.price)",
                    active_end=f"SUM({active})",
                    active_end_monthly=f"SUM(({active}) * e.price)",
                )
            }
            FROM (
                SELECT e.g, e.rv, r.price_monthly AS price,
                       r.item_id, b.department_id, r.cost_centre_id
                FROM (
                    -- The grants and revocations since the base month come first (fenced, so
                    -- a filter cannot make the planner walk a department's whole history).
                    SELECT e.request_id, e.granted_at AS g, e.revoked_at AS rv
                    FROM {T_ENT} e
                    WHERE (e.revoked_at IS NOT NULL OR e.state <> %s)
                      AND ((e.granted_at >= %s::timestamptz AND e.granted_at < %s)
                           OR (e.granted_at < %s::timestamptz AND e.revoked_at >= %s::timestamptz
                               AND e.revoked_at <= %s))
                    OFFSET 0
                ) e
                JOIN {T_REQ} r ON r.id = e.request_id
                JOIN {T_EMP} b ON b.id = r.beneficiary_id
                WHERE r.state = %s{where}
            ) e CROSS JOIN {months_sql}
            GROUP BY 1, 2, 3, 4""",
            [
                *[base_end, now] * 4,
                REVOKED,
                base_end,
                max_end,
                base_end,
                base_end,
                max_end,
                FULFILLED,
                *where_params,
                *months_params,
            ],
        )
    ]
    if base is not None and since is None:
        base_where, base_params = scope.sql("f.item_id", "f.department_id", "f.cost_centre_id")
        parts.append(
            (
                f"""SELECT {
                    _select(
                        "m.month",
                        ("f.item_id", "f.department_id", "f.cost_centre_id"),
                        charged="f.active_end",
                        monthly="f.active_end_monthly",
                        active_end="f.active_end",
                        active_end_monthly="f.active_end_monthly",
                    )
                }
                FROM {T_FIG} f CROSS JOIN {months_sql}
                WHERE f.month = %s{base_where}""",
                [*months_params, base, *base_params],
            )
        )
    return parts


def _fulfilled_in(months_sql: str) -> str:
    """The requests fulfilled in the months (one range each on ``request_state_closed_idx``,
    whose included columns are all this reads), fenced so a filter cannot change the plan."""
    return f"""
        SELECT m.month, r.id, r.item_id, r.beneficiary_id, r.cost_centre_id, r.price_once,
               r.fulfilled_automatically, r.approval_steps, r.submitted_at, r.approved_at,
               r.closed_at
        FROM {T_REQ} r JOIN {months_sql}
             ON r.state = %s AND r.closed_at >= m.starts AND r.closed_at < m.ends
        OFFSET 0"""


def _union(parts: list[tuple[str, list]]) -> tuple[str, list]:
    sql = "\nUNION ALL\n".join(f"({part})" for part, _ in parts)
    return sql, [param for _, params in parts for param in params]


def figures_sql(
    plan: Plan,
    scope: Scope,
    figures: frozenset[str] | None = None,
    *,
    by: tuple[str, ...] | None = None,
) -> tuple[str, list]:
    """SQL of the period's figures rows: roll-up rows of ``plan.rolled``, live rows of
    ``plan.live``; several rows per key possible, so sum them up by what the page groups.
    Only the ``figures`` named (default: all) are complete (``live_figures_sql``).

    ``by`` (of ``KEYS``): what the caller groups by. The rolled months' rows are then summed
    by it once per process (``kept_sums``) and read from parameters, with the other keys
    NULL, instead of summing the roll-up rows on every view."""
    parts = []
    kept = kept_sums(plan, scope, figures, by) if by is not None else None
    if kept is not None:
        if kept.count:
            parts.append(_kept_part(kept, scope))
    else:
        where, params = scope.sql("f.item_id", "f.department_id", "f.cost_centre_id")
        columns = ", ".join(
            ["f.month", *(f"f.{d}" for d in DIMENSIONS), *(f"f.{n}" for n in FIGURES)]
        )
        parts.append(
            (
                f"SELECT {columns} FROM {T_FIG} f WHERE f.month = ANY(%s){where}",
                [plan.rolled, *params],
            )
        )
    if plan.live or plan.tail:
        parts.append(live_figures_sql(plan, scope, figures))
    if not parts:  # nothing rolled up in scope, nothing live: no rows, typed as the others
        parts.append(_kept_part(_joined(by or KEYS, (), []), ALL))
    return _union(parts)


# --- the rolled months' sums, kept per process -----------------------------------------------

KEYS = ("month", *DIMENSIONS)
_KEY_TYPES = {"month": "date", "item_id": "bigint", "department_id": "bigint",
              "cost_centre_id": "bigint"}  # fmt: skip

# At a million requests a year's roll-up rows are tens of thousands (month × service ×
# department × cost centre), 8-17 ms to sum on every view of a page that shows a few hundred
# sums; they change only when one of their months is recomputed or marked dirty, and either
# changes the plan's stamp (the months' versions and computation times), hence the key. A
# page's sums weigh a few tens of kilobytes: every page, filter and period of a busy day fits.
_KEPT_SUMS = Memo(256, 16 << 20)


@dataclass(frozen=True)
class KeptSums:
    """The figures of some rolled months summed by ``by``: ``count`` rows, as one column per
    name of ``by`` then of ``figures``, each the inside of a PostgreSQL array literal
    (``1,2,3``). Literals because psycopg dumps a list element by element in Python, a
    tenth of the costs page's CPU for its 228 rows at 10,000 requests; the literals are kept."""

    by: tuple[str, ...]
    figures: tuple[str, ...]
    count: int
    columns: tuple[str, ...]


def kept_sums(
    plan: Plan, scope: Scope, figures: frozenset[str] | None, by: tuple[str, ...]
) -> KeptSums | None:
    """The sums of ``plan.rolled`` by ``by`` in ``scope``, from the process's memo or summed
    now (one query), or None where the plan does not say what its months were computed from.

    Kept apart: the closed months and the open month's roll-up up to an hour (the latter is
    recomputed every hour and the former rarely). A category is not a roll-up dimension
    (services move between categories without marking any month), so in a category's scope
    the sums are kept per service and the category is applied when they are read."""
    if not set(by) <= set(KEYS) or len(set(by)) != len(by):
        raise ValueError(f"keys to sum by, of {KEYS}: not {by}")
    stamps = {row[0]: row for row in plan.stamp}
    if not plan.rolled or any(month not in stamps for month in plan.rolled):
        return None
    names = tuple(n for n in FIGURES if figures is None or n in figures)
    if scope.category_id is not None and "item_id" not in by:
        by = (*by, "item_id")
    kept_scope = dataclasses.replace(scope, category_id=None)
    tail_month = plan.tail[0] if plan.tail else None
    groups = [g for g in ([m for m in plan.rolled if m != tail_month], [tail_month]) if g and g[0]]
    # The open month's cut-off too: its rows up to another cut-off are other rows, even if a
    # caller recomputed them at the same instant (``now``) and version.
    keys = [
        (
            "figures",
            kept_scope,
            by,
            names,
            tuple(g),
            tuple(stamps[m] for m in g),
            plan.tail if g == [tail_month] else None,
        )
        for g in groups
    ]
    found = [_KEPT_SUMS.get(key) for key in keys]
    missing = [i for i, sums in enumerate(found) if sums is None]
    if missing:
        for i, sums in zip(
            missing,
            _sum_rolled(kept_scope, by, names, [groups[i] for i in missing]),
            strict=True,
        ):
            found[i] = sums
            _KEPT_SUMS.put(keys[i], sums)
    return _joined(by, names, [sums for sums in found if sums.count])


def _joined(by: tuple[str, ...], names: tuple[str, ...], parts: list[KeptSums]) -> KeptSums:
    if len(parts) == 1:
        return parts[0]
    width = len(by) + len(names)
    columns = [",".join(part.columns[i] for part in parts) for i in range(width)]
    return KeptSums(by, names, sum(part.count for part in parts), tuple(columns))


def _sum_rolled(
    scope: Scope, by: tuple[str, ...], names: tuple[str, ...], groups: list[list[datetime.date]]
) -> list[KeptSums]:
    """Each group's roll-up rows summed by ``by`` (keys whose sums are all 0 left out)."""
    where, where_params = scope.sql("f.item_id", "f.department_id", "f.cost_centre_id")
    keys = ", ".join(f"f.{key}" for key in by)
    sums = ", ".join(f"SUM(f.{n})" if n in _AMOUNTS else f"SUM(f.{n})::bigint" for n in names)
    nonzero = " OR ".join(f"SUM(f.{n}) <> 0" for n in names)
    parts = [
        (
            f"SELECT {i} AS part, {keys}, {sums} FROM {T_FIG} f"
            f" WHERE f.month = ANY(%s){where} GROUP BY {keys} HAVING {nonzero}",
            [months, *where_params],
        )
        for i, months in enumerate(groups)
    ]
    sql, params = _union(parts)
    result: list[list[tuple]] = [[] for _ in groups]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for part, *row in cursor.fetchall():
            result[part].append(tuple(row))
    width = len(by) + len(names)
    return [
        KeptSums(
            by,
            names,
            len(rows),
            tuple(",".join(_literal(row[i]) for row in rows) for i in range(width)),
        )
        for rows in result
    ]


def _literal(value) -> str:
    """A key or sum as an element of an array literal: ints, dates, amounts (never with an
    exponent, which ``str`` of a Decimal may use)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(int(value))


def _kept_part(kept: KeptSums, scope: Scope) -> tuple[str, list]:
    """The kept sums as figures rows: the keys not summed by NULL, the figures not kept 0."""
    arrays, params = [], []
    for name, column in zip((*kept.by, *kept.figures), kept.columns, strict=True):
        kind = _KEY_TYPES.get(name) or ("numeric" if name in _AMOUNTS else "bigint")
        arrays.append(f"%s::{kind}[]")
        params.append(f"{{{column}}}")
    columns = [
        f"k.{name}" if name in kept.by else f"NULL::{_KEY_TYPES[name]} AS {name}" for name in KEYS
    ] + [f"k.{name}" if name in kept.figures else f"{_ZERO[name]} AS {name}" for name in FIGURES]
    where, where_params = "", []
    if scope.category_id is not None:
        where = f" AND k.item_id IN (SELECT id FROM {T_ITEM} WHERE category_id = %s)"
        where_params = [scope.category_id]
    return (
        f"SELECT {', '.join(columns)} FROM unnest({', '.join(arrays)})"
        f" AS k({', '.join((*kept.by, *kept.figures))}) WHERE true{where}",
        [*params, *where_params],
    )


def live_durations_sql(plan: Plan, scope: Scope) -> tuple[str, list]:
    """(month, item, department, cost centre, measure, bucket, n) of the live months (and
    of the open month from its roll-up's cut-off on)."""
    months_sql, months_params = _periods_values(_live_periods(plan))
    where, where_params = scope.sql("r.item_id", "b.department_id", "r.cost_centre_id")
    sql = f"""
    SELECT r.month, r.item_id, b.department_id, r.cost_centre_id, x.measure,
           {bucket_sql("x.seconds")} AS bucket, COUNT(*) AS n
    FROM ({_fulfilled_in(months_sql)}) r
    JOIN {T_EMP} b ON b.id = r.beneficiary_id
    CROSS JOIN LATERAL (VALUES
        ({APPROVAL}, CASE WHEN r.approval_steps > 0
                     THEN EXTRACT(EPOCH FROM r.approved_at - r.submitted_at)::float8 END),
        ({FULFILMENT}, EXTRACT(EPOCH FROM r.closed_at - r.approved_at)::float8),
        ({TOTAL}, EXTRACT(EPOCH FROM r.closed_at - r.submitted_at)::float8)
    ) AS x(measure, seconds)
    WHERE x.seconds IS NOT NULL{where}
    GROUP BY 1, 2, 3, 4, 5, 6"""
    return sql, [*months_params, FULFILLED, *where_params]


def durations_sql(plan: Plan, scope: Scope, *, rolled: bool = True) -> tuple[str, list]:
    """(item, measure, bucket, n, live) rows of the period: roll-up (unless not ``rolled``;
    ``live`` 0) plus live (``live`` 1)."""
    where, params = scope.sql("d.item_id", "d.department_id", "d.cost_centre_id")
    parts = []
    if rolled:
        parts.append(
            (
                f"SELECT d.item_id, d.measure, d.bucket, d.count AS n, 0 AS live FROM {T_DUR} d "
                f"WHERE d.level = %s AND d.month = ANY(%s){where}",
                [scope.level, plan.rolled, *params],
            )
        )
    if plan.live or plan.tail:
        live_sql, live_params = live_durations_sql(plan, scope)
        parts.append(
            (f"SELECT item_id, measure, bucket, n, 1 AS live FROM ({live_sql}) l", live_params)
        )
    return _union(parts)


def durations_parts_sql(
    plan: Plan, scope: Scope, groups: list[list[datetime.date]]
) -> tuple[str, list]:
    """(part, item, measure, bucket, n) rows: the roll-up rows of each group of rolled months
    (``part`` its index), and the live rows (``part`` -1: live months, the open month's rest)."""
    where, params = scope.sql("d.item_id", "d.department_id", "d.cost_centre_id")
    parts = [
        (
            f"SELECT {i} AS part, d.item_id, d.measure, d.bucket, d.count AS n FROM {T_DUR} d "
            f"WHERE d.level = %s AND d.month = ANY(%s){where}",
            [scope.level, months, *params],
        )
        for i, months in enumerate(groups)
    ]
    if plan.live or plan.tail:
        live_sql, live_params = live_durations_sql(plan, scope)
        parts.append(
            (f"SELECT -1 AS part, item_id, measure, bucket, n FROM ({live_sql}) l", live_params)
        )
    return _union(parts)


# --- service levels ----------------------------------------------------------------------------

SLA_FIGURES = ("fulfilled", "met", "responded", "response_met")


def live_sla_sql(plan: Plan, scope: Scope) -> tuple[str, list]:
    """(month, item, department, cost centre, fulfilled, met, responded, response_met) of
    the live months (and the open month from its roll-up's cut-off on): requests fulfilled
    in the month with a fulfilment deadline and those fulfilled on or before its day (the
    local date of fulfilment), with a response target and those answered by it (never
    answered: missed). One row per key."""
    months_sql, months_params = _periods_values(_live_periods(plan))
    where, where_params = scope.sql("r.item_id", "b.department_id", "r.cost_centre_id")
    sql = f"""
    SELECT m.month, r.item_id, b.department_id, r.cost_centre_id,
           COUNT(*) FILTER (WHERE r.fulfilment_due_on IS NOT NULL) AS fulfilled,
           COUNT(*) FILTER (
               WHERE (r.closed_at AT TIME ZONE %s)::date <= r.fulfilment_due_on) AS met,
           COUNT(*) FILTER (WHERE r.response_due_at IS NOT NULL) AS responded,
           COUNT(*) FILTER (WHERE r.responded_at <= r.response_due_at) AS response_met
    FROM {T_REQ} r
    JOIN {months_sql} ON r.state = %s AND r.closed_at >= m.starts AND r.closed_at < m.ends
    JOIN {T_EMP} b ON b.id = r.beneficiary_id
    WHERE (r.fulfilment_due_on IS NOT NULL OR r.response_due_at IS NOT NULL){where}
    GROUP BY 1, 2, 3, 4"""
    return sql, [settings.TIME_ZONE, *months_params, FULFILLED, *where_params]


# The rolled months' SLA rows summed by month and service, kept per process under the plan's
# stamp like ``kept_sums``: at a million requests a year's roll-up rows are 7,700 (month ×
# service × department × cost centre), 4-5 ms to sum on every view of the SLA page.
_KEPT_SLA = Memo(64, 8 << 20)


def kept_sla_rows(plan: Plan, scope: Scope) -> tuple[tuple | None, tuple[tuple, ...]]:
    """The (month, item_id, fulfilled, met, responded, response_met) sums of ``plan.rolled``
    by month and service in ``scope`` without its category (a category is no roll-up
    dimension, see ``kept_sums``: the caller applies it), one row per key, and the key they
    are kept under: from the process's memo or summed now (one query). The key is None where
    the plan does not say what its months were computed from: the rows are summed now and
    not kept."""
    if not plan.rolled:
        return ("sla", ()), ()
    kept_scope = dataclasses.replace(scope, category_id=None)
    stamps = {row[0]: row for row in plan.stamp}
    if any(month not in stamps for month in plan.rolled):
        return None, _sum_rolled_sla(kept_scope, plan.rolled)
    key = ("sla", kept_scope, tuple(stamps[m] for m in plan.rolled), plan.tail)
    rows = _KEPT_SLA.get(key)
    if rows is None:
        rows = _sum_rolled_sla(kept_scope, plan.rolled)
        _KEPT_SLA.put(key, rows)
    return key, rows


def _sum_rolled_sla(scope: Scope, months: list[datetime.date]) -> tuple[tuple, ...]:
    """The SLA rows of ``months`` in ``scope`` summed by month and service."""
    where, params = scope.sql("s.item_id", "s.department_id", "s.cost_centre_id")
    sums = ", ".join(f"SUM(s.{name})::bigint" for name in SLA_FIGURES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.month, s.item_id, {sums} FROM {T_SLA} s"
            f" WHERE s.month = ANY(%s){where} GROUP BY 1, 2",
            [months, *params],
        )
        return tuple(cursor.fetchall())


def fill_sla_rows() -> int:
    """The SLA rows of every current roll-up month that has none (after migration
    ``metrics.0004`` added them to months rolled up before; the open month up to its
    roll-up's cut-off): computed from the requests as they are now, which is what the
    month's other rows were computed from (a change since would have marked it dirty)."""
    months = list(
        RollupMonth.objects.filter(dirty=False)
        .exclude(month__in=MonthlySla.objects.values("month"))
        .order_by("month")
        .values_list("month", "through")
    )
    closed = [month for month, through in months if through is None]
    plans = [Plan(rolled=[], live=closed, runs=[], now=timezone.now())] if closed else []
    plans += [
        Plan(rolled=[], live=[month], runs=[], now=through, cut=through)
        for month, through in months
        if through is not None
    ]
    names = ", ".join(["month", *DIMENSIONS, *SLA_FIGURES])
    with connection.cursor() as cursor:
        for p in plans:
            sql, params = live_sla_sql(p, ALL)
            cursor.execute(f"INSERT INTO {T_SLA} ({names}) SELECT * FROM ({sql}) AS x", params)
    return len(months)


# --- keeping the roll-up ---------------------------------------------------------------------


def _first_data_month() -> datetime.date | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT LEAST((SELECT MIN(submitted_at) FROM {T_REQ}),"
            f" (SELECT MIN(granted_at) FROM {T_ENT}))"
        )
        first = cursor.fetchone()[0]
    return timezone.localdate(first).replace(day=1) if first else None


def months_to_compute(now: datetime.datetime | None = None) -> list[datetime.date]:
    """Closed months that are dirty, rolled up only up to an hour while they were open, or have
    data and were never rolled up; oldest first."""
    closed_before = open_month(now)
    known = {
        m: (dirty, through)
        for m, dirty, through in RollupMonth.objects.values_list("month", "dirty", "through")
    }
    todo = {
        m
        for m, (dirty, through) in known.items()
        if (dirty or through is not None) and m < closed_before
    }
    first = _first_data_month()
    if first is not None:
        todo |= {m for m in month_range(first, add_months(closed_before, -1)) if m not in known}
    return sorted(todo)


# The open month is rolled up to the start of an hour once the hour is this old: a
# transaction that began before the cut-off and commits after the computation read the
# raw tables would otherwise be missed (its trigger judged its change to be of this hour).
OPEN_MONTH_MARGIN = datetime.timedelta(minutes=10)


def open_month_cut(now: datetime.datetime | None = None) -> datetime.datetime | None:
    """Up to where the open month is rolled up now: the latest start of an hour at least
    ``OPEN_MONTH_MARGIN`` ago, if that is after the month's start.

    Hours, not days: what a page reads live is the rest, at a million requests a day's
    1,300 fulfilments and 900 entitlement changes by the evening, an hour's few dozen.
    Hours of UTC, as the marking triggers count them (``_mark``): absolute instants, so a
    daylight-saving change repeats or skips no cut-off (every whole-hour zone's days and
    months start at one of them)."""
    now = now or timezone.now()
    cut = (now - OPEN_MONTH_MARGIN).astimezone(datetime.UTC)
    cut = cut.replace(minute=0, second=0, microsecond=0)
    if cut <= month_bounds(open_month(now))[0]:
        return None
    return cut


def open_month_due(now: datetime.datetime | None = None) -> datetime.datetime | None:
    """The cut-off to roll up the open month to, if its roll-up is dirty, missing or older."""
    now = now or timezone.now()
    cut = open_month_cut(now)
    if cut is None:
        return None
    row = RollupMonth.objects.filter(month=open_month(now)).values_list("dirty", "through").first()
    if row is not None and not row[0] and row[1] == cut:
        return None
    return cut


def recompute_month(
    month: datetime.date,
    *,
    now: datetime.datetime | None = None,
    through: datetime.datetime | None = None,
) -> bool:
    """Roll up one closed month, or (``through``: a cut-off in it) the open month up to the
    cut-off; False if a change marked it again meanwhile (stays dirty)."""
    now = now or timezone.now()
    if through is None and month >= open_month(now):
        raise ValueError("only closed months are rolled up")
    if through is not None and not (month_bounds(month)[0] < through <= now):
        raise ValueError("the open month is rolled up to an instant in it, in the past")
    RollupMonth.objects.get_or_create(month=month)
    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if outermost:
                # One snapshot for the base month's rows, the raw tables and the version: a
                # change committed meanwhile fails the final update (the month stays dirty).
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return _recompute(month, now, through)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "40001":  # serialization failure
            raise
        return False


def _recompute(
    month: datetime.date, now: datetime.datetime, through: datetime.datetime | None
) -> bool:
    version = RollupMonth.objects.values_list("version", flat=True).get(month=month)
    current = list(
        RollupMonth.objects.filter(dirty=False, through__isnull=True, month__lt=month)
        .order_by("-month")
        .values_list("month", flat=True)[:1]
    )
    base = current[0] if current else None
    p = Plan(rolled=[], live=[month], runs=[([month], base)], now=through or now, cut=through)
    MonthlyFigures.objects.filter(month=month).delete()
    MonthlyDurations.objects.filter(month=month).delete()
    MonthlySla.objects.filter(month=month).delete()
    figures, params = live_figures_sql(p, ALL)
    names = ", ".join(FIGURES)
    sums = ", ".join(f"SUM({n})" for n in FIGURES)
    nonzero = " OR ".join(f"SUM({n}) <> 0" for n in FIGURES)
    dims = ", ".join(DIMENSIONS)
    durations, duration_params = live_durations_sql(p, ALL)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {T_FIG} (month, {dims}, {names})
            SELECT month, {dims}, {sums} FROM ({figures}) AS x
            GROUP BY month, {dims} HAVING {nonzero}""",
            params,
        )
        cursor.execute(
            f"""INSERT INTO {T_DUR}
                (month, level, item_id, department_id, cost_centre_id, measure, bucket, count)
            SELECT month, (1 - GROUPING(department_id)) + 2 * (1 - GROUPING(cost_centre_id)),
                   item_id, department_id, cost_centre_id, measure, bucket, SUM(n)
            FROM ({durations}) AS x
            GROUP BY GROUPING SETS (
                (month, item_id, measure, bucket),
                (month, item_id, department_id, measure, bucket),
                (month, item_id, cost_centre_id, measure, bucket),
                (month, item_id, department_id, cost_centre_id, measure, bucket))""",
            duration_params,
        )
        sla, sla_params = live_sla_sql(p, ALL)
        sla_names = ", ".join(["month", *DIMENSIONS, *SLA_FIGURES])
        cursor.execute(f"INSERT INTO {T_SLA} ({sla_names}) SELECT * FROM ({sla}) AS x", sla_params)
    return bool(
        RollupMonth.objects.filter(month=month, version=version).update(
            dirty=False, computed_at=now, through=through
        )
    )


def refresh(*, budget_seconds: float = 120.0, now: datetime.datetime | None = None) -> dict:
    """Recompute the months that need it, oldest first, then the open month up to the start
    of an hour (``open_month_cut``), until the time budget is spent (the next run goes on)."""
    started = time.monotonic()
    todo = months_to_compute(now)
    done, raced = [], []
    for month in todo:
        if time.monotonic() - started > budget_seconds:
            break
        (done if recompute_month(month, now=now) else raced).append(month)
    left = len(todo) - len(done) - len(raced)
    open_through = None
    # The open month's roll-up carries its entitlements forward from the closed months'.
    cut = open_month_due(now) if not left else None
    if cut is not None and time.monotonic() - started <= budget_seconds:
        if recompute_month(open_month(now), now=now, through=cut):
            open_through = cut
        else:
            raced.append(open_month(now))
    if (done or open_through) and not connection.in_atomic_block:
        # Fresh rows are not yet all-visible: without this the pages' index-only scans visit
        # the heap for every row until autovacuum comes by (three times slower at 1M).
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {T_FIG}, {T_DUR}, {T_SLA}")
    result = {
        "computed": [f"{m:%Y-%m}" for m in done],
        "changed_meanwhile": [f"{m:%Y-%m}" for m in raced],
        "left": left,
        "open_month_through": open_through.isoformat() if open_through else None,
    }
    logger.info("controlling roll-up refreshed", extra=result)
    return result


def mark_all_dirty() -> int:
    """After a change of TIME_ZONE or a restore: every month is recomputed by the next run."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {T_MONTH} SET dirty = true, version = version + 1")
        return cursor.rowcount


# --- percentiles from histograms --------------------------------------------------------------


def percentile(buckets: list[tuple[int, int]], fraction: float) -> float | None:
    """``percentile_cont(fraction)`` over a histogram [(bucket, n)] sorted by bucket, read
    with each bucket's value (seconds)."""
    return percentiles(buckets, (fraction,))[0]


def percentiles(buckets: list[tuple[int, int]], fractions: tuple[float, ...]) -> list[float | None]:
    """``percentile`` of each fraction, from one pass over the histogram (the lead-time page
    reads two of each of 120 histograms of a few hundred buckets)."""
    cumulative = list(accumulate(n for _, n in buckets))
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return [None] * len(fractions)
    result = []
    for fraction in fractions:
        position = fraction * (total - 1)
        low = math.floor(position)
        # The first buckets whose running count passes the low rank and the one after it.
        low_value = bucket_seconds(buckets[bisect_right(cumulative, low)][0])
        above = bisect_right(cumulative, low + 1)
        if above == len(buckets) or position == low:
            result.append(low_value)
            continue
        high_value = bucket_seconds(buckets[above][0])
        result.append(low_value + (position - low) * (high_value - low_value))
    return result


# --- triggers that mark closed months dirty ----------------------------------------------------


def _mark(ranges: str) -> str:
    """SQL that marks the closed months of ``ranges`` (lo, hi timestamptz; hi NULL = up to
    now) dirty, and the open month if a range begins before the current hour (its roll-up
    reaches up to the start of an hour at most, ``open_month_cut``). Months are locked in
    order, so two marking transactions cannot deadlock; changes of this hour (new orders,
    fulfilments with their grants, revocations) lock nothing."""
    tz = settings.TIME_ZONE.replace("'", "")
    local = f"date_trunc('month', %s AT TIME ZONE '{tz}')"
    last_closed = f"(date_trunc('month', now() AT TIME ZONE '{tz}') - interval '1 month')"
    # The clock, not the transaction's start: a transaction begun in the hour before that
    # changes it marks the open month. The hour of UTC, compared as instants (see
    # ``open_month_cut``), whatever the session's time zone.
    open_month = f"date_trunc('month', clock_timestamp() AT TIME ZONE '{tz}')"
    this_hour = "(date_trunc('hour', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return f"""
    INSERT INTO {T_MONTH} (month, dirty, version)
    SELECT DISTINCT s.m::date, true, 1
    FROM ({ranges}) AS ranges(lo, hi)
    CROSS JOIN LATERAL generate_series(
        {local % "ranges.lo"},
        LEAST({local % "COALESCE(ranges.hi, 'infinity')"},
              CASE WHEN ranges.lo < {this_hour} THEN {open_month}
                   ELSE {last_closed} END),
        interval '1 month') AS s(m)
    WHERE ranges.lo IS NOT NULL AND ranges.lo < now()
    ORDER BY 1
    ON CONFLICT (month) DO UPDATE SET dirty = true, version = {T_MONTH}.version + 1;"""


# Whether a side of a request counts for the orders, the fulfilled figures, the entitlements.
_ORDER_KEY = "({t}.submitted_at, {t}.item_id, {t}.cost_centre_id, {t}.beneficiary_id)"
_FULFILLED_KEY = (
    "({t}.state, {t}.closed_at, {t}.price_once, {t}.fulfilled_automatically, "
    "{t}.approval_steps, {t}.approved_at, {t}.submitted_at, {t}.item_id, {t}.cost_centre_id, "
    "{t}.beneficiary_id)"
)
_ENTITLEMENT_KEY = (
    "({t}.state = '" + FULFILLED + "', {t}.price_monthly, {t}.item_id, {t}.cost_centre_id, "
    "{t}.beneficiary_id)"
)
_COUNTED = "({t}.revoked_at IS NOT NULL OR {t}.state <> '" + REVOKED + "')"


def _one_side_request(t: str) -> str:
    return f"""
        SELECT {t}.submitted_at, {t}.submitted_at FROM {t}
        UNION ALL SELECT {t}.closed_at, {t}.closed_at FROM {t} WHERE {t}.state = '{FULFILLED}'"""


def _request_update() -> str:
    def changed(key):
        return f"{key.format(t='o')} IS DISTINCT FROM {key.format(t='n')}"

    return f"""
        SELECT o.submitted_at, o.submitted_at FROM o JOIN n ON n.id = o.id
            WHERE {changed(_ORDER_KEY)}
        UNION ALL SELECT n.submitted_at, n.submitted_at FROM o JOIN n ON n.id = o.id
            WHERE {changed(_ORDER_KEY)}
        UNION ALL SELECT o.closed_at, o.closed_at FROM o JOIN n ON n.id = o.id
            WHERE o.state = '{FULFILLED}' AND {changed(_FULFILLED_KEY)}
        UNION ALL SELECT n.closed_at, n.closed_at FROM o JOIN n ON n.id = o.id
            WHERE n.state = '{FULFILLED}' AND {changed(_FULFILLED_KEY)}
        UNION ALL SELECT e.granted_at, e.revoked_at FROM o JOIN n ON n.id = o.id
            JOIN {T_ENT} e ON e.request_id = o.id
            WHERE {changed(_ENTITLEMENT_KEY)} AND {_COUNTED.format(t="e")}"""


def _entitlement_update() -> str:
    counted_o, counted_n = _COUNTED.format(t="o"), _COUNTED.format(t="n")
    same = f"o.request_id = n.request_id AND {counted_o} = {counted_n}"
    return f"""
        SELECT o.granted_at, o.revoked_at FROM o JOIN n ON n.id = o.id
            WHERE NOT ({same}) AND {counted_o}
        UNION ALL SELECT n.granted_at, n.revoked_at FROM o JOIN n ON n.id = o.id
            WHERE NOT ({same}) AND {counted_n}
        UNION ALL SELECT LEAST(o.granted_at, n.granted_at), GREATEST(o.granted_at, n.granted_at)
            FROM o JOIN n ON n.id = o.id
            WHERE {same} AND {counted_n} AND o.granted_at IS DISTINCT FROM n.granted_at
        UNION ALL SELECT LEAST(o.revoked_at, n.revoked_at),
                CASE WHEN o.revoked_at IS NULL OR n.revoked_at IS NULL THEN NULL
                     ELSE GREATEST(o.revoked_at, n.revoked_at) END
            FROM o JOIN n ON n.id = o.id
            WHERE {same} AND {counted_n} AND o.revoked_at IS DISTINCT FROM n.revoked_at"""


def _rating_side(t: str) -> str:
    return f"""
        SELECT r.closed_at, r.closed_at FROM {t} JOIN {T_REQ} r ON r.id = {t}.request_id
        WHERE r.state = '{FULFILLED}'"""


def _rating_update() -> str:
    # The score, and whether there is a comment (``commented``): a comment corrected into
    # another changes no figure.
    return f"""
        SELECT r.closed_at, r.closed_at FROM o JOIN n ON n.id = o.id
        JOIN {T_REQ} r ON r.id IN (o.request_id, n.request_id)
        WHERE r.state = '{FULFILLED}'
          AND (o.score, o.request_id, o.comment = '')
              IS DISTINCT FROM (n.score, n.request_id, n.comment = '')"""


def _employee_update() -> str:
    moved = "SELECT n.id FROM o JOIN n ON n.id = o.id WHERE o.department_id <> n.department_id"
    return f"""
        SELECT r.submitted_at, r.submitted_at FROM {T_REQ} r WHERE r.beneficiary_id IN ({moved})
        UNION ALL SELECT r.closed_at, r.closed_at FROM {T_REQ} r
            WHERE r.beneficiary_id IN ({moved}) AND r.state = '{FULFILLED}'
        UNION ALL SELECT e.granted_at, e.revoked_at FROM {T_ENT} e
            JOIN {T_REQ} r ON r.id = e.request_id WHERE r.beneficiary_id IN ({moved})"""


def _trigger_bodies() -> dict[str, dict[str, str]]:
    """table -> operation -> ranges SQL (transition tables ``o`` and ``n``)."""
    return {
        T_REQ: {
            "INSERT": _one_side_request("n"),
            "DELETE": _one_side_request("o"),
            "UPDATE": _request_update(),
        },
        T_ENT: {
            "INSERT": f"SELECT n.granted_at, n.revoked_at FROM n WHERE {_COUNTED.format(t='n')}",
            "DELETE": f"SELECT o.granted_at, o.revoked_at FROM o WHERE {_COUNTED.format(t='o')}",
            "UPDATE": _entitlement_update(),
        },
        T_RATING: {
            "INSERT": _rating_side("n"),
            "DELETE": _rating_side("o"),
            "UPDATE": _rating_update(),
        },
        T_EMP: {"UPDATE": _employee_update()},
    }


_REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS n",
    "DELETE": "REFERENCING OLD TABLE AS o",
    "UPDATE": "REFERENCING OLD TABLE AS o NEW TABLE AS n",
}


def _install_sql(bodies: dict[str, dict[str, str]], prefix: str) -> str:
    statements = []
    for table, operations in bodies.items():
        for operation, ranges in operations.items():
            name = f"{prefix}_{table}_{operation.lower()}"
            statements.append(
                f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
{_mark(ranges)}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {name} ON {table};
CREATE TRIGGER {name} AFTER {operation} ON {table} {_REFERENCING[operation]}
    FOR EACH STATEMENT EXECUTE FUNCTION {name}();"""
            )
    return "\n".join(statements)


def _drop_sql(bodies: dict[str, dict[str, str]], prefix: str) -> str:
    statements = []
    for table, operations in bodies.items():
        for operation in operations:
            name = f"{prefix}_{table}_{operation.lower()}"
            statements.append(
                f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();"
            )
    return "\n".join(statements)


def install_triggers_sql() -> str:
    """CREATE OR REPLACE the marking functions and (re)create their statement triggers."""
    return _install_sql(_trigger_bodies(), "metrics_dirty")


def drop_triggers_sql() -> str:
    return _drop_sql(_trigger_bodies(), "metrics_dirty")


# Service levels (``MonthlySla``): a fulfilled request's deadlines and first response. Its
# other columns are in the figures' key above; these have their own trigger, installed by
# migration ``metrics.0004`` once the columns exist.
_SLA_KEY = "({t}.fulfilment_due_on, {t}.response_due_at, {t}.responded_at)"


def _sla_trigger_bodies() -> dict[str, dict[str, str]]:
    changed = f"{_SLA_KEY.format(t='o')} IS DISTINCT FROM {_SLA_KEY.format(t='n')}"
    return {
        T_REQ: {
            "UPDATE": f"""
        SELECT o.closed_at, o.closed_at FROM o JOIN n ON n.id = o.id
            WHERE o.state = '{FULFILLED}' AND {changed}
        UNION ALL SELECT n.closed_at, n.closed_at FROM o JOIN n ON n.id = o.id
            WHERE n.state = '{FULFILLED}' AND {changed}"""
        }
    }


def install_sla_triggers_sql() -> str:
    return _install_sql(_sla_trigger_bodies(), "metrics_dirty_sla")


def drop_sla_triggers_sql() -> str:
    return _drop_sql(_sla_trigger_bodies(), "metrics_dirty_sla")
