"""A plausible history of orders for demos and for load checks of the controlling pages.

Everything is generated set-based in PostgreSQL, with ``INSERT … SELECT`` over
``generate_series``, so a million requests take about a minute instead
of an hour of ORM saves. Python only prepares the small tables the SQL draws from: the
catalogue items with their popularity, the people, and the calendar of working days weighted by
a growth trend and a seasonal pattern. ``setseed`` makes a run repeatable.

The history follows the real workflow: timestamps in order, the states a request reaches by
now, one audit record per transition, an approval row for items with an approval policy (the
first step only), and an entitlement for every fulfilled request, some of them revoked since.
Automated items leave their provisioning jobs (a grant per directory action, and the reverse
when the entitlement was revoked); a revoked entitlement of a manual item leaves the task to
remove the access by hand, as the portal opens them.
"""

from __future__ import annotations

import datetime
import json
import random
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalogue.choices import ApproverKind, FulfilmentKind
from catalogue.models import CatalogueItem, Employee
from provisioning.choices import REVERSE, ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningAction, ProvisioningJob
from requests_app.choices import ApprovalStatus, EventKind, RequestState
from requests_app.models import (
    Approval,
    FulfilmentTask,
    Rating,
    RequestEvent,
    RequestHold,
    ServiceRequest,
)

# More orders when people join (September) and at the start of the year; fewer in the
# summer holidays and around Christmas.
SEASON = {1: 1.25, 2: 1.05, 3: 1.0, 4: 0.95, 5: 0.95, 6: 0.9, 7: 0.75, 8: 0.85, 9: 1.3,
          10: 1.1, 11: 1.0, 12: 0.8}  # fmt: skip


@dataclass(frozen=True)
class HistoryResult:
    requests: int
    approvals: int
    events: int
    entitlements: int
    ratings: int = 0
    holds: int = 0
    jobs: int = 0
    tasks: int = 0


WORKDAY_ENDS = datetime.time(17)  # 07:00 + 10 hours, the latest submission the SQL draws
ONE_DAY = datetime.timedelta(days=1)


def working_days(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += datetime.timedelta(days=1)
    return days


def day_weights(days: list[datetime.date], growth: float) -> list[float]:
    """Relative demand per day: linear growth over the period times the month's season."""
    span = max(len(days) - 1, 1)
    return [(1 + growth * i / span) * SEASON[d.month] for i, d in enumerate(days)]


def item_weights(items: list[CatalogueItem], rng: random.Random) -> list[float]:
    """Zipf-like popularity; the last few items are never or hardly ever ordered."""
    order = list(range(len(items)))
    rng.shuffle(order)
    weights = [0.0] * len(items)
    for rank, index in enumerate(order, start=1):
        weights[index] = 1 / rank**0.9
    for index in order[-3:]:
        weights[index] = 0.0
    for index in order[-6:-3]:
        weights[index] = 0.002
    return weights


def pool_weights(items: list[CatalogueItem], weights: list[float], count: int) -> list[float]:
    """Items with a licence pool are ordered about as often as the pool allows: the first
    runs close to its warning level (so the demo shows one), the others stay well inside.

    Each pooled item gets the share target / count of all orders; the others keep their
    relative popularity in what is left."""
    pooled = [i for i, item in enumerate(items) if item.licence_pool_size]
    targets = {
        index: items[index].licence_pool_size * (1.1 if rank == 0 else 0.7)
        for rank, index in enumerate(pooled)
    }
    shares = {index: min(target / count, 0.5 / len(pooled)) for index, target in targets.items()}
    rest = sum(w for i, w in enumerate(weights) if i not in shares)
    left = 1 - sum(shares.values())
    return [
        shares[i] if i in shares else (w / rest * left if rest else 0.0)
        for i, w in enumerate(weights)
    ]


def cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    running, result = 0.0, []
    for weight in weights:
        running += weight
        result.append(running / total)
    result[-1] = 1.0
    return result


def _temp_table(cursor, name: str, columns: str, rows: list[tuple]) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")
    if rows:
        marks = ", ".join(["%s"] * len(rows[0]))
        cursor.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)  # noqa: S608
    cursor.execute(f"ANALYZE {name}")


STEPS = 12  # requests, approvals, events, entitlements, ratings, rating events, holds,
# hold events, SLA due dates, jobs, tasks, vacuum


def working_time_rows(first: datetime.date, last: datetime.date) -> list[tuple]:
    """Per working day of the Land (holidays too): its ordinal, business hours and the
    working seconds before it, so the SQL turns instants into working time and back."""
    from itportal.workdays import _window, is_working_day

    rows, day, n, cum = [], first, 0, 0
    while day <= last:
        if is_working_day(day):
            opens, closes = _window(day)
            length = int((closes - opens).total_seconds())
            n += 1
            rows.append((n, day, opens, length, cum))
            cum += length
        day += datetime.timedelta(days=1)
    return rows


def generate(
    *,
    count: int,
    months: int = 12,
    seed: int = 1,
    growth: float = 0.4,
    now: datetime.datetime | None = None,
    progress=None,
) -> HistoryResult:
    """Add ``count`` requests submitted over the last ``months`` months, ending ``now``
    (default: the present).

    ``progress(step)`` is called after each of the ``STEPS`` steps. The same ``seed`` and
    ``now`` on the same organisation and catalogue give the same history as long as
    PostgreSQL draws its random numbers in the same order, i.e. plans the statements the
    same: on equal statistics (tests ANALYZE first).
    """
    progress = progress or (lambda step: None)
    if connection.vendor != "postgresql":
        raise RuntimeError("The history generator needs PostgreSQL.")
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    now = now or timezone.now()
    today = timezone.localdate(now)
    index = today.year * 12 + today.month - 1 - (months - 1)
    first = datetime.date(index // 12, index % 12 + 1, 1)
    # Requests are placed between 07:00 and 17:00 (_REQUESTS_SQL); those drawn for later
    # today than now would be dropped (the history ends now), and fewer than ``count``
    # written. So today counts only once its working hours are over (a test run at 01:00
    # on a Monday wrote 1,994 of 2,000).
    last = today if timezone.localtime(now).time() >= WORKDAY_ENDS else today - ONE_DAY
    days = working_days(first, last) or working_days(first, today)
    items = list(
        CatalogueItem.objects.active()
        .select_related("category")
        .prefetch_related("form_fields", "approval_steps")
        .order_by("pk")
    )
    people = list(
        Employee.objects.filter(is_active=True)
        .select_related("department", "manager", "department__cost_centre__owner")
        .order_by("pk")
    )
    if not items or not people:
        raise RuntimeError("Seed the catalogue and the organisation first (manage.py seed_demo).")

    item_rows = []
    weights = pool_weights(items, item_weights(items, rng), count)
    for item, cum in zip(items, cumulative(weights), strict=True):
        step = next(iter(sorted(item.approval_steps.all(), key=lambda s: s.position)), None)
        fulfiller = item.service_owner.user_set.order_by("pk").values_list("pk", flat=True).first()
        item_rows.append((
            cum, item.pk, item.version, _json(item.snapshot()), item.price_once,
            item.price_monthly, item.service_owner_id, fulfiller,
            item.fulfilment_kind == FulfilmentKind.AUTOMATED,
            step.approver_kind if step else None,
            (step.label or step.get_approver_kind_display()) if step else None,
            step.group_id if step else None,
        ))  # fmt: skip
    person_rows = []
    for index, person in enumerate(people):
        cost_centre = person.cost_centre_id or person.department.cost_centre_id
        manager_user = person.manager.user_id if person.manager else None
        owner = person.department.cost_centre.owner
        person_rows.append(
            (index, person.pk, person.user_id, cost_centre, manager_user,
             owner.user_id if owner else None)
        )  # fmt: skip
    day_rows = list(zip(cumulative(day_weights(days, growth)), days, strict=True))
    action_rows = _action_rows(
        [item for item in items if item.fulfilment_kind == FulfilmentKind.AUTOMATED]
    )

    tz = settings.TIME_ZONE
    with transaction.atomic(), connection.cursor() as cursor:
        _temp_table(
            cursor,
            "hist_items",
            "cum float8, id int, version int, snapshot jsonb, price_once numeric, "
            "price_monthly numeric, group_id int, fulfiller int, automated bool, "
            "step_kind text, step_label text, step_group int",
            item_rows,
        )
        _temp_table(
            cursor,
            "hist_people",
            "idx int PRIMARY KEY, id int, user_id int, cost_centre_id int, manager_user int, "
            "owner_user int",
            person_rows,
        )
        _temp_table(cursor, "hist_days", "cum float8, day date", day_rows)
        _temp_table(
            cursor,
            "hist_actions",
            "item_id int, position int, kind text, reverse_kind text, target text",
            action_rows,
        )
        # Deadlines may lie up to a year of working days (and the holds) after today.
        _temp_table(
            cursor,
            "hist_wt",
            "n int, day date, opens timestamptz, len int, cum_before bigint",
            working_time_rows(first - datetime.timedelta(days=14), today + datetime.timedelta(800)),
        )
        for column in ("n", "day", "opens", "cum_before"):
            cursor.execute(f"CREATE INDEX ON hist_wt ({column})")
        cursor.execute("CREATE INDEX ON hist_days (cum)")
        cursor.execute("CREATE INDEX ON hist_items (cum)")
        cursor.execute("SELECT setseed(%s)", [((seed % 1000) / 1000.0)])
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM " + ServiceRequest._meta.db_table)  # noqa: S608
        (before,) = cursor.fetchone()
        requests_table = ServiceRequest._meta.db_table
        tables = {
            "table": requests_table,
            "requests": requests_table,
            "approvals": Approval._meta.db_table,
            "events": RequestEvent._meta.db_table,
            "entitlements": Entitlement._meta.db_table,
            "items": CatalogueItem._meta.db_table,
            "ratings": Rating._meta.db_table,
            "holds": RequestHold._meta.db_table,
            "jobs": ProvisioningJob._meta.db_table,
            "tasks": FulfilmentTask._meta.db_table,
            "employees": Employee._meta.db_table,
        }
        counts = []
        for template, params in (
            (_REQUESTS_SQL, {"n": count, "people": len(person_rows), "tz": tz, "now": now}),
            (_APPROVALS_SQL, {"group": ApproverKind.GROUP}),
            (_EVENTS_SQL, {}),
            (_ENTITLEMENTS_SQL, {"active": EntitlementState.ACTIVE,
                                 "revoked": EntitlementState.REVOKED, "now": now}),
            (_RATINGS_SQL, {"now": now}),
            (_RATING_EVENTS_SQL, {}),
            (_HOLDS_SQL, {"now": now}),
            (_HOLD_EVENTS_SQL, {}),
            (_SLA_SQL, {"now": now, "tz": tz}),
            # No draws of their own: the steps above draw the same numbers as before.
            (_JOBS_SQL, {"now": now, "dialect": settings.DIRECTORY.get("dialect", "openldap"),
                         "grant": Direction.GRANT, "revoke": Direction.REVOKE,
                         "revoked": EntitlementState.REVOKED, "J_done": JobState.SUCCEEDED,
                         "J_failed": JobState.FAILED, "J_running": JobState.RUNNING}),
            (_TASKS_SQL, {"now": now, "revoked": EntitlementState.REVOKED,
                          "kind": FulfilmentTask.Kind.REMOVE_ACCESS,
                          "open": FulfilmentTask.State.OPEN, "done": FulfilmentTask.State.DONE}),
        ):  # fmt: skip
            cursor.execute(_sql(template, **tables), _params(before=before, **params))
            counts.append(cursor.rowcount)
            progress(len(counts))
    _settle(requests_table, tables.values())
    progress(STEPS)
    requests, approvals, events, entitlements, ratings, rating_events, holds, hold_events = counts[
        :8
    ]
    jobs, tasks = counts[9:11]
    return HistoryResult(
        requests,
        approvals,
        events + rating_events + hold_events,
        entitlements,
        ratings,
        holds,
        jobs,
        tasks,
    )


def _action_rows(items: list[CatalogueItem]) -> list[tuple]:
    """The directory actions of the automated items: those configured, else one group
    membership named after the item (the bench databases have no directory). A target that
    is a template of the order form's answers (the history has none) gets the item's group
    too."""
    configured = {}
    for action in ProvisioningAction.objects.filter(item__in=items).order_by("item", "position"):
        configured.setdefault(action.item_id, []).append(action)
    base = settings.DIRECTORY.get("group_base") or "ou=groups,dc=example,dc=org"
    rows = []
    for item in items:
        fallback = f"cn={item.slug},{base}"
        actions = configured.get(item.pk) or [
            ProvisioningAction(position=1, kind=ActionKind.ADD_TO_GROUP, target=fallback)
        ]
        for action in actions:
            target = fallback if "{" in action.target else action.target
            if action.kind not in (ActionKind.ADD_TO_GROUP, ActionKind.REMOVE_FROM_GROUP):
                target = ""
            rows.append((item.pk, action.position, action.kind, REVERSE.get(action.kind), target))
    return rows


def _settle(requests_table: str, tables) -> None:
    """Lay the requests out as a live table holds them, then refresh the statistics.

    A portal writes its requests one after the other, so their rows lie roughly in the
    order they were placed; the history's inserts follow that order (``ORDER BY submitted``,
    the ids too), but its one UPDATE of every request (the deadlines) scattered the new row
    versions over the table (correlation of id and position 0.01 at 1,000,000). Then every
    index entry of a person's list fell on another page, and each counted entry cost a
    visibility-map lookup a real table does not pay. CLUSTER on the primary key puts them
    back in the order of their ids.

    VACUUM refreshes the planner's statistics and the visibility map that lets the reports
    read their covering indexes without touching the table (autovacuum would, later). Neither
    VACUUM nor a CLUSTER belongs in a transaction: in one (tests), ANALYZE alone."""
    names = sorted(set(tables))
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("ANALYZE " + ", ".join(names))
            return
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = %s::regclass AND indisprimary",
            [requests_table],
        )
        (primary_key,) = cursor.fetchone()
        cursor.execute(f"CLUSTER {requests_table} USING {primary_key}")
        cursor.execute("VACUUM (ANALYZE) " + ", ".join(names))


def _params(**extra) -> dict:
    """Named parameters for the SQL below: ``%(S)s.FULFILLED`` becomes ``%(S_FULFILLED)s``."""
    values = dict(extra)
    for prefix, choices in (("S", RequestState), ("E", EventKind), ("A", ApprovalStatus)):
        values.update({f"{prefix}_{member.name}": member.value for member in choices})
    return values


def _sql(template: str, **tables) -> str:
    return re.sub(r"%\(([SEA])\)s\.([A-Z_]+)", r"%(\1_\2)s", template.format(**tables))


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


# Draws per request: day, time of day, item, beneficiary, requester, outcome, waits.
# Approval wait (items with a policy) and manual work are exponential with means of 20 and
# 50 working hours; automated fulfilment takes seconds to minutes. Whatever has not happened
# by now has not happened: the request stays in the state it has reached.
_REQUESTS_SQL = """
WITH draws AS MATERIALIZED (
    SELECT random() AS r_day, random() AS r_time, random() AS r_item, random() AS r_person,
           random() AS r_requester, random() AS r_outcome, random() AS r_wait, random() AS r_work
    FROM generate_series(1, %(n)s)
),
timed AS (
    SELECT d.*, i.*, p.id AS beneficiary_id, p.cost_centre_id,
           COALESCE(CASE WHEN d.r_requester < 0.15 THEN q.user_id END, p.user_id)
               AS requester_id,
           ((day.day + interval '7 hours' + d.r_time * interval '10 hours')
               AT TIME ZONE %(tz)s) AS submitted
    FROM draws d
    CROSS JOIN LATERAL (SELECT day FROM hist_days WHERE cum >= d.r_day ORDER BY cum LIMIT 1) day
    CROSS JOIN LATERAL (SELECT * FROM hist_items WHERE cum >= d.r_item ORDER BY cum LIMIT 1) i
    JOIN hist_people p ON p.idx = LEAST(floor(d.r_person * %(people)s)::int, %(people)s - 1)
    JOIN hist_people q ON q.idx = LEAST(floor(d.r_requester * %(people)s * 6)::int %% %(people)s,
                                        %(people)s - 1)
),
planned AS (
    SELECT t.*,
           t.submitted + CASE WHEN t.step_kind IS NULL THEN interval '1 second'
               ELSE -ln(1 - t.r_wait * 0.999) * interval '20 hours' END AS decided,
           CASE WHEN t.r_outcome < 0.05 AND t.step_kind IS NOT NULL THEN 'reject'
                WHEN t.r_outcome < 0.08 THEN 'cancel'
                WHEN t.r_outcome < 0.095 THEN 'fail'
                ELSE 'fulfil' END AS outcome
    FROM timed t
    WHERE t.submitted < %(now)s
),
staged AS (
    SELECT p.*,
           p.decided + CASE WHEN p.automated THEN interval '5 seconds'
               ELSE -ln(1 - p.r_work * 0.7) * interval '8 hours' END AS started,
           p.decided + CASE WHEN p.automated THEN (20 + p.r_work * 280) * interval '1 second'
               ELSE -ln(1 - p.r_work * 0.999) * interval '50 hours' + interval '1 hour' END
               AS finished
    FROM planned p
)
INSERT INTO {table} (
    requester_id, beneficiary_id, item_id, item_version, item_snapshot, answers,
    cost_centre_id, justification, price_once, price_monthly, fulfilment_group_id, assignee_id,
    resolution_note, state, created_at, submitted_at, approved_at, fulfilment_started_at,
    closed_at, approval_steps, fulfilled_automatically, hold_reason, sla_paused_seconds,
    responded_at)
SELECT requester_id, beneficiary_id, id, version, snapshot, '{{}}'::jsonb,
       cost_centre_id, '', price_once, price_monthly, group_id,
       CASE WHEN NOT automated AND outcome IN ('fulfil', 'fail') AND started <= %(now)s
            THEN fulfiller END,
       '', state, submitted - interval '3 minutes', submitted,
       CASE WHEN outcome NOT IN ('reject', 'cancel') AND decided <= %(now)s THEN decided END,
       CASE WHEN outcome IN ('fulfil', 'fail') AND started <= %(now)s THEN started END,
       CASE WHEN state IN (%(S)s.REJECTED, %(S)s.CANCELLED, %(S)s.FULFILLED, %(S)s.FAILED)
            THEN CASE WHEN outcome IN ('reject', 'cancel') THEN decided ELSE finished END END,
       CASE WHEN step_kind IS NULL THEN 0 ELSE 1 END,
       automated AND state = %(S)s.FULFILLED, '', 0,
       CASE WHEN outcome IN ('fulfil', 'fail') AND started <= %(now)s THEN started END
FROM (
    SELECT s.*,
           CASE WHEN s.decided > %(now)s THEN
                    CASE WHEN s.step_kind IS NULL THEN %(S)s.SUBMITTED
                         ELSE %(S)s.AWAITING_APPROVAL END
                WHEN s.outcome = 'reject' THEN %(S)s.REJECTED
                WHEN s.outcome = 'cancel' THEN %(S)s.CANCELLED
                WHEN s.started > %(now)s THEN %(S)s.APPROVED
                WHEN s.finished > %(now)s THEN %(S)s.IN_FULFILMENT
                WHEN s.outcome = 'fail' THEN %(S)s.FAILED
                ELSE %(S)s.FULFILLED END AS state
    FROM staged s
) AS r
ORDER BY submitted
"""

_APPROVALS_SQL = """
INSERT INTO {approvals} (request_id, position, approver_kind, label, approver_id, group_id,
                         routing_note, status, activated_at, escalation_level, decided_by_id,
                         decided_at, comment)
SELECT r.id, 1, i.step_kind, i.step_label,
       CASE WHEN i.step_kind = %(group)s AND i.step_group IS NOT NULL THEN NULL
            ELSE COALESCE(p.manager_user, p.owner_user, r.requester_id) END,
       CASE WHEN i.step_kind = %(group)s THEN i.step_group END,
       '',
       CASE WHEN r.state = %(S)s.AWAITING_APPROVAL THEN %(A)s.PENDING
            WHEN r.state = %(S)s.REJECTED THEN %(A)s.REJECTED
            WHEN r.state = %(S)s.CANCELLED THEN %(A)s.WITHDRAWN
            ELSE %(A)s.APPROVED END,
       r.submitted_at, 0,
       CASE WHEN r.state IN (%(S)s.AWAITING_APPROVAL, %(S)s.CANCELLED) THEN NULL
            ELSE COALESCE(p.manager_user, p.owner_user, i.fulfiller) END,
       CASE WHEN r.state = %(S)s.REJECTED THEN r.closed_at
            WHEN r.state IN (%(S)s.AWAITING_APPROVAL, %(S)s.CANCELLED) THEN NULL
            ELSE r.approved_at END,
       ''
FROM {requests} r
JOIN hist_items i ON i.id = r.item_id
JOIN hist_people p ON p.id = r.beneficiary_id
WHERE r.id > %(before)s AND i.step_kind IS NOT NULL
"""

# One audit record per transition the request went through, in order.
_EVENTS_SQL = """
INSERT INTO {events} (request_id, created_at, actor_id, on_behalf_of_id, kind, from_state,
                      to_state, comment)
SELECT e.request_id, e.at, e.actor, NULL, e.kind, e.from_state, e.to_state, ''
FROM {requests} r
JOIN hist_items i ON i.id = r.item_id
LEFT JOIN {approvals} a ON a.request_id = r.id AND a.position = 1
CROSS JOIN LATERAL (VALUES
    (r.id, r.created_at, r.requester_id, %(E)s.CREATE, '', %(S)s.DRAFT, true),
    (r.id, r.submitted_at, r.requester_id, %(E)s.SUBMIT, %(S)s.DRAFT, %(S)s.SUBMITTED, true),
    (r.id, r.submitted_at, NULL, %(E)s.START_APPROVAL, %(S)s.SUBMITTED,
     %(S)s.AWAITING_APPROVAL, a.id IS NOT NULL),
    (r.id, r.approved_at, a.decided_by_id, %(E)s.APPROVE, %(S)s.AWAITING_APPROVAL,
     %(S)s.APPROVED, a.id IS NOT NULL AND r.approved_at IS NOT NULL),
    (r.id, r.approved_at, NULL, %(E)s.APPROVE_WITHOUT_STEPS, %(S)s.SUBMITTED, %(S)s.APPROVED,
     a.id IS NULL AND r.approved_at IS NOT NULL),
    (r.id, r.closed_at, a.decided_by_id, %(E)s.REJECT, %(S)s.AWAITING_APPROVAL,
     %(S)s.REJECTED, r.state = %(S)s.REJECTED),
    (r.id, r.closed_at, r.requester_id, %(E)s.CANCEL,
     CASE WHEN a.id IS NULL THEN %(S)s.SUBMITTED ELSE %(S)s.AWAITING_APPROVAL END,
     %(S)s.CANCELLED, r.state = %(S)s.CANCELLED),
    (r.id, r.fulfilment_started_at, r.assignee_id, %(E)s.TAKE, %(S)s.APPROVED,
     %(S)s.IN_FULFILMENT, r.fulfilment_started_at IS NOT NULL AND NOT i.automated),
    (r.id, r.fulfilment_started_at, NULL, %(E)s.START_AUTOMATION, %(S)s.APPROVED,
     %(S)s.IN_FULFILMENT, r.fulfilment_started_at IS NOT NULL AND i.automated),
    (r.id, r.closed_at, r.assignee_id, %(E)s.COMPLETE, %(S)s.IN_FULFILMENT, %(S)s.FULFILLED,
     r.state = %(S)s.FULFILLED),
    (r.id, r.closed_at, r.assignee_id, %(E)s.FAIL, %(S)s.IN_FULFILMENT, %(S)s.FAILED,
     r.state = %(S)s.FAILED)
) AS e(request_id, at, actor, kind, from_state, to_state, happened)
WHERE r.id > %(before)s AND e.happened
"""

# Every fulfilled request grants an entitlement; about one in eight has been revoked since,
# at a random time between the grant and now.
_ENTITLEMENTS_SQL = """
INSERT INTO {entitlements} (holder_id, item_id, request_id, state, granted_at, expires_on,
                            revoked_at, revoke_reason, review_note, review_old_department)
SELECT r.beneficiary_id, r.item_id, r.id,
       CASE WHEN x.revoke THEN %(revoked)s ELSE %(active)s END,
       r.closed_at, NULL,
       CASE WHEN x.revoke THEN r.closed_at + x.r * (%(now)s - r.closed_at) END,
       CASE WHEN x.revoke THEN 'No longer needed' ELSE '' END, '', false
FROM {requests} r
JOIN (SELECT id, random() < 0.12 AS revoke, random() AS r
      FROM {requests} WHERE id > %(before)s AND state = %(S)s.FULFILLED) x ON x.id = r.id
JOIN {items} i ON i.id = r.item_id AND i.grants_access
"""

# About a third of the requesters rate within ten days of fulfilment (and before now). Most
# are content; a request that took more than five days scores one point less.
_RATINGS_SQL = """
INSERT INTO {ratings} (request_id, score, comment, rated_by_id, rated_at)
SELECT x.id,
       GREATEST(1, CASE WHEN x.r_score < 0.05 THEN 1 WHEN x.r_score < 0.12 THEN 2
                        WHEN x.r_score < 0.30 THEN 3 WHEN x.r_score < 0.65 THEN 4 ELSE 5 END
                   - CASE WHEN x.closed_at - x.submitted_at > interval '5 days' THEN 1 ELSE 0 END),
       CASE WHEN x.r_comment < 0.05 THEN 'Schnell erledigt, danke!'
            WHEN x.r_comment < 0.10 THEN 'Hat leider recht lange gedauert.'
            WHEN x.r_comment < 0.13 THEN 'Eine kurze Rückmeldung zwischendurch wäre gut gewesen.'
            ELSE '' END,
       x.requester_id, x.closed_at + x.r_delay * interval '10 days'
FROM (SELECT r.id, r.requester_id, r.submitted_at, r.closed_at, random() AS r_rate,
             random() AS r_score, random() AS r_comment, random() AS r_delay
      FROM {requests} r WHERE r.id > %(before)s AND r.state = %(S)s.FULFILLED) x
WHERE x.r_rate < 0.33 AND x.closed_at + x.r_delay * interval '10 days' < %(now)s
"""

_RATING_EVENTS_SQL = """
INSERT INTO {events} (request_id, created_at, actor_id, on_behalf_of_id, kind, from_state,
                      to_state, comment)
SELECT g.request_id, g.rated_at, g.rated_by_id, NULL, %(E)s.RATE, %(S)s.FULFILLED,
       %(S)s.FULFILLED, 'Bewertung: ' || g.score || ' von 5'
FROM {ratings} g
WHERE g.request_id > %(before)s
"""

# About one in twenty-five requests taken by hand waited on hold once, for the requester or
# a supplier, during the middle of its fulfilment; half of those still open still wait.
_HOLDS_SQL = """
INSERT INTO {holds} (request_id, reason, note, started_at, started_by_id, ended_at, ended_by_id)
SELECT x.id, CASE WHEN x.requester THEN 'requester' ELSE 'supplier' END,
       CASE WHEN x.requester THEN 'Bitte Raumnummer und Telefon angeben.'
            ELSE 'Lieferant hat einen Liefertermin genannt.' END,
       x.hold_from, x.assignee_id,
       CASE WHEN NOT x.still THEN x.hold_to END,
       CASE WHEN x.still THEN NULL WHEN x.requester THEN x.requester_id ELSE x.assignee_id END
FROM (SELECT r.id, r.assignee_id, r.requester_id, d.r_reason < 0.5 AS requester,
             r.state = %(S)s.IN_FULFILMENT AND d.r_hold < 0.02 AS still, d.r_hold,
             r.fulfilment_started_at
                 + 0.2 * (COALESCE(r.closed_at, %(now)s) - r.fulfilment_started_at) AS hold_from,
             r.fulfilment_started_at
                 + 0.6 * (COALESCE(r.closed_at, %(now)s) - r.fulfilment_started_at) AS hold_to
      FROM {requests} r
      CROSS JOIN LATERAL (SELECT random() + 0 * r.id AS r_hold, random() + 0 * r.id AS r_reason) d
      WHERE r.id > %(before)s AND r.assignee_id IS NOT NULL
        AND r.fulfilment_started_at IS NOT NULL
        AND r.state IN (%(S)s.IN_FULFILMENT, %(S)s.FULFILLED, %(S)s.FAILED)) x
WHERE x.r_hold < 0.04
"""

_HOLD_EVENTS_SQL = """
INSERT INTO {events} (request_id, created_at, actor_id, on_behalf_of_id, kind, from_state,
                      to_state, comment)
SELECT h.request_id, e.at, e.actor, NULL, e.kind, %(S)s.IN_FULFILMENT, %(S)s.IN_FULFILMENT,
       e.comment
FROM {holds} h
CROSS JOIN LATERAL (VALUES
    (h.started_at, h.started_by_id, %(E)s.HOLD,
     CASE WHEN h.reason = 'requester' THEN 'Wartet auf Antragsteller(in): '
          ELSE 'Wartet auf Lieferant: ' END || h.note, true),
    (h.ended_at, h.ended_by_id, %(E)s.RESUME, '', h.ended_at IS NOT NULL)
) AS e(at, actor, kind, comment, happened)
WHERE h.request_id > %(before)s AND e.happened
"""

# The jobs of automated fulfilments: one per directory action, from the approval on, in the
# request's state (succeeded when fulfilled, failed when it failed, running while it runs);
# and the reverse of each for a revoked entitlement, done at the revocation.
_JOBS_SQL = """
INSERT INTO {jobs} (request_id, entitlement_id, direction, position, kind, user_uid, target_dn,
                    attributes, dialect, state, attempts, last_error, log, created_at,
                    updated_at, started_at, finished_at, due_at, lease_until, wakes)
SELECT r.id, NULL::bigint, %(grant)s, a.position, a.kind, p.personnel_number, a.target,
       '{{}}'::jsonb, %(dialect)s,
       CASE r.state WHEN %(S)s.FULFILLED THEN %(J_done)s WHEN %(S)s.FAILED THEN %(J_failed)s
            ELSE %(J_running)s END,
       CASE WHEN r.state = %(S)s.FAILED THEN 5 ELSE 1 END,
       CASE WHEN r.state = %(S)s.FAILED
            THEN 'insufficientAccessRights: no write access to the group' ELSE '' END,
       '', r.approved_at, COALESCE(r.closed_at, r.fulfilment_started_at),
       r.fulfilment_started_at, r.closed_at, NULL::timestamptz,
       CASE WHEN r.closed_at IS NULL THEN r.fulfilment_started_at + interval '5 minutes' END, 0
FROM {requests} r
JOIN hist_actions a ON a.item_id = r.item_id
JOIN {employees} p ON p.id = r.beneficiary_id
WHERE r.id > %(before)s AND r.fulfilment_started_at IS NOT NULL
  AND r.state IN (%(S)s.FULFILLED, %(S)s.FAILED, %(S)s.IN_FULFILMENT)
UNION ALL
SELECT e.request_id, e.id, %(revoke)s, a.position, a.reverse_kind, p.personnel_number,
       a.target, '{{}}'::jsonb, %(dialect)s, %(J_done)s, 1, '', '', e.revoked_at,
       LEAST(e.revoked_at + interval '20 seconds', %(now)s), e.revoked_at,
       LEAST(e.revoked_at + interval '20 seconds', %(now)s), NULL, NULL::timestamptz, 0
FROM {entitlements} e
JOIN hist_actions a ON a.item_id = e.item_id AND a.reverse_kind IS NOT NULL
JOIN {employees} p ON p.id = e.holder_id
WHERE e.request_id > %(before)s AND e.state = %(revoked)s
"""

# A revoked entitlement of a manual item: the fulfilling group removes the access by hand,
# 4 to 43 hours later; those revoked in the last two days wait in the queue still.
_TASKS_SQL = """
INSERT INTO {tasks} (kind, state, request_id, person_id, fulfilment_group_id, reason,
                     created_at, done_at, done_by_id, note)
SELECT %(kind)s,
       CASE WHEN e.revoked_at > %(now)s - interval '2 days' THEN %(open)s ELSE %(done)s END,
       e.request_id, e.holder_id, i.group_id, e.revoke_reason, e.revoked_at,
       CASE WHEN e.revoked_at <= %(now)s - interval '2 days'
            THEN e.revoked_at + (4 + e.id %% 40) * interval '1 hour' END,
       CASE WHEN e.revoked_at <= %(now)s - interval '2 days' THEN i.fulfiller END, ''
FROM {entitlements} e
JOIN hist_items i ON i.id = e.item_id AND NOT i.automated AND i.group_id IS NOT NULL
WHERE e.request_id > %(before)s AND e.state = %(revoked)s
"""

# Working seconds (since the start of hist_wt) at an instant, and the instant at a number of
# working seconds: the same business hours and holidays as itportal/workdays.py.
_WS_AT = """(SELECT w.cum_before + LEAST(GREATEST(EXTRACT(EPOCH FROM {t} - w.opens), 0), w.len)
    FROM hist_wt w WHERE w.opens <= {t} ORDER BY w.opens DESC LIMIT 1)"""

# The deadlines as requests_app/sla.py sets them at the approval (and moves them after a
# hold); the breaches of the past stamped as sent, so the demo's beat mails only new ones.
# Each lookup in hist_wt must be one index probe (a million requests): the approval day's
# ordinal through the day index (n grows with day), and working seconds compared as bigint
# (a numeric bound makes PostgreSQL filter cum_before row by row).
_SLA_SQL = """
WITH paused AS (
    SELECT h.request_id AS id,
           SUM(floor(WS[h.ended_at] - WS[GREATEST(h.started_at, r.approved_at)]))::bigint AS seconds
    FROM {holds} h JOIN {requests} r ON r.id = h.request_id
    WHERE h.request_id > %(before)s AND h.ended_at IS NOT NULL
    GROUP BY h.request_id
),
targets AS (
    SELECT r.id, r.responded_at, r.state,
           NULLIF(r.item_snapshot->>'sla_target_days', '')::int AS days,
           NULLIF(r.item_snapshot->>'response_target_hours', '')::int AS hours,
           COALESCE(p.seconds, 0) AS paused,
           (SELECT w.n FROM hist_wt w
            WHERE w.day <= (r.approved_at AT TIME ZONE %(tz)s)::date
            ORDER BY w.day DESC LIMIT 1) AS approved_n,
           WS[r.approved_at] AS approved_ws
    FROM {requests} r LEFT JOIN paused p ON p.id = r.id
    WHERE r.id > %(before)s AND r.approved_at IS NOT NULL
),
due AS (
    SELECT t.*, b.day AS base_day, b.cum_before + b.len AS base_close_ws,
           (SELECT w.opens + (t.approved_ws + t.hours * 3600 - w.cum_before) * interval '1 second'
            FROM hist_wt w
            WHERE t.hours > 0 AND w.cum_before < ceil(t.approved_ws + t.hours * 3600)::bigint
            ORDER BY w.cum_before DESC LIMIT 1) AS respond_by
    FROM targets t LEFT JOIN hist_wt b ON t.days > 0 AND b.n = t.approved_n + t.days
),
final AS (
    SELECT d.id, d.paused, d.respond_by, d.state, d.responded_at,
           CASE WHEN d.paused > 0 THEN
                (SELECT w.day FROM hist_wt w WHERE w.cum_before < d.base_close_ws + d.paused
                 ORDER BY w.cum_before DESC LIMIT 1)
                ELSE d.base_day END AS due_on
    FROM due d
)
UPDATE {requests} r
SET sla_paused_seconds = f.paused,
    fulfilment_due_on = f.due_on,
    response_due_at = f.respond_by,
    hold_reason = COALESCE((SELECT h.reason FROM {holds} h
                            WHERE h.request_id = r.id AND h.ended_at IS NULL), ''),
    sla_escalated_at = CASE WHEN f.state IN (%(S)s.APPROVED, %(S)s.IN_FULFILMENT)
                             AND f.due_on < (%(now)s AT TIME ZONE %(tz)s)::date THEN %(now)s END,
    response_breached_at = CASE WHEN f.state IN (%(S)s.APPROVED, %(S)s.IN_FULFILMENT)
                                 AND f.responded_at IS NULL AND f.respond_by < %(now)s
                                THEN f.respond_by END
FROM final f
WHERE r.id = f.id
"""
_SLA_SQL = re.sub(r"WS\[([^\]]*)\]", lambda m: _WS_AT.format(t=m.group(1)), _SLA_SQL)
