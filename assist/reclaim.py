"""Rarely used entitlements: held, but probably not needed any more; candidates to reclaim
licences and to review first in a recertification.

What counts as a sign, from what the portal stores (see docs/assistance.md):

* **left**: the holder is no longer active (the directory sync or the portal switched them
  off) but the access is still active — weighs 3;
* **moved**: the sync flagged the access after a change of department (``review_note``) — 2;
* **not signed in**: the holder has signed in neither to the portal nor to the directory for
  ASSIST_IDLE_DAYS days (or never) — 1. The directory's last sign-in is read by the sync
  (OpenLDAP's lastbind ``authTimestamp``, AD's ``lastLogonTimestamp``); a directory that keeps
  none leaves the portal's sign-in alone. Sign-ins, not the use of the service: a weak sign;
* **few peers**: fewer than ASSIST_OUTLIER_SHARE of the holder's department colleagues hold
  it, in a department of at least ASSIST_MIN_PEER_GROUP — 1.

The risk is the sum. Everything is counted in the database as annotations, so another app
(governance: the recertification's order) can sort its own queryset by it:
``with_reclaim_risk(reviews, entitlement="entitlement__").order_by("-reclaim_risk")``.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Now
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from assist.selectors import _Count
from catalogue.models import CatalogueItem, Department, Employee
from itportal.memo import Memo
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement

WEIGHTS = {"left": 3, "moved": 2, "idle": 1, "few_peers": 1}
LABELS = {
    "left": _("holder no longer active"),
    "moved": _("holder changed department"),
    "idle": _("holder not signed in to the portal or the directory for a long time"),
    "few_peers": _("few colleagues in the department hold it"),
}


def _idle(holder: str, idle_since) -> Q:
    """Neither the portal's nor the directory's last sign-in since ``idle_since`` (or ever)."""
    return (
        Q(**{f"{holder}user__last_login__isnull": True})
        | Q(**{f"{holder}user__last_login__lt": idle_since})
    ) & (
        Q(**{f"{holder}directory_last_logon__isnull": True})
        | Q(**{f"{holder}directory_last_logon__lt": idle_since})
    )


def _flag(condition: Q) -> Case:
    return Case(
        When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


def with_reclaim_risk(queryset: QuerySet, *, entitlement: str = "") -> QuerySet:
    """``queryset`` (of entitlements, or of rows pointing to one through ``entitlement``,
    e.g. "entitlement__") annotated with the signs (``reclaim_left``, ``reclaim_moved``,
    ``reclaim_idle``, ``reclaim_few_peers``) and their weighted sum ``reclaim_risk``.
    Correlated counts: one statement whatever the number of rows."""
    p = entitlement
    idle_since = timezone.now() - timedelta(days=settings.ASSIST_IDLE_DAYS)
    colleagues = (
        Employee.objects.filter(is_active=True, department=OuterRef(f"{p}holder__department"))
        .exclude(pk=OuterRef(f"{p}holder"))
        .order_by()
    )
    holding = Exists(
        Entitlement.objects.filter(
            holder=OuterRef("pk"),
            item=OuterRef(OuterRef(f"{p}item")),
            state=EntitlementState.ACTIVE,
        )
    )
    queryset = queryset.annotate(
        reclaim_left=_flag(Q(**{f"{p}holder__is_active": False})),
        reclaim_moved=_flag(~Q(**{f"{p}review_note": ""})),
        reclaim_idle=_flag(_idle(f"{p}holder__", idle_since)),
        reclaim_peers=_Count(colleagues.values("pk")),
        reclaim_peer_holders=_Count(colleagues.filter(holding).values("pk")),
    )
    few = Q(reclaim_peers__gte=settings.ASSIST_MIN_PEER_GROUP) & Q(
        reclaim_peer_holders__lt=ExpressionWrapper(
            Cast(F("reclaim_peers"), FloatField()) * settings.ASSIST_OUTLIER_SHARE,
            output_field=FloatField(),
        )
    )
    queryset = queryset.annotate(reclaim_few_peers=_flag(few))
    risk = sum(
        (
            Case(
                When(**{f"reclaim_{sign}": True}, then=Value(weight)),
                default=Value(0),
                output_field=IntegerField(),
            )
            for sign, weight in WEIGHTS.items()
        ),
        Value(0, output_field=IntegerField()),
    )
    return queryset.annotate(reclaim_risk=risk)


# One point of reclaim risk in the recertification's "by risk" score (governance/risk.py), whose
# own signals weigh 100 (segregation of duties), 30 (directory), 10 (no end date) and the
# monthly price in euros: a holder who left (3 points) counts like a directory change.
RECERTIFICATION_WEIGHT = 10


def risk_expression():
    """The reclaim risk as one integer expression over Entitlement rows (no annotations
    needed), for governance.risk.register: registered by AssistConfig.ready while
    ASSIST_ENABLED and ASSIST_ANOMALIES are on."""
    # Computed when the query runs (the expression is built once, at start-up).
    idle_since = ExpressionWrapper(
        Now() - Value(timedelta(days=settings.ASSIST_IDLE_DAYS)), output_field=DateTimeField()
    )
    colleagues = (
        Employee.objects.filter(is_active=True, department=OuterRef("holder__department"))
        .exclude(pk=OuterRef("holder"))
        .order_by()
    )
    holding = Exists(
        Entitlement.objects.filter(
            holder=OuterRef("pk"), item=OuterRef(OuterRef("item")), state=EntitlementState.ACTIVE
        )
    )
    peers = _Count(colleagues.values("pk"))
    holders = _Count(colleagues.filter(holding).values("pk"))

    def points(condition, weight):
        return Case(
            When(condition, then=Value(weight)), default=Value(0), output_field=IntegerField()
        )

    few = points(
        GreaterThanOrEqual(peers, settings.ASSIST_MIN_PEER_GROUP)
        & LessThan(
            ExpressionWrapper(holders * Value(1.0), output_field=FloatField()),
            ExpressionWrapper(
                peers * Value(settings.ASSIST_OUTLIER_SHARE), output_field=FloatField()
            ),
        ),
        WEIGHTS["few_peers"],
    )
    return RECERTIFICATION_WEIGHT * (
        points(Q(holder__is_active=False), WEIGHTS["left"])
        + points(~Q(review_note=""), WEIGHTS["moved"])
        + points(_idle("holder__", idle_since), WEIGHTS["idle"])
        + few
    )


def reclaim_reasons(row) -> list[str]:
    """The signs of one annotated row, in words (translated)."""
    return [str(LABELS[sign]) for sign in WEIGHTS if getattr(row, f"reclaim_{sign}", False)]


@dataclass(frozen=True)
class Candidate:
    entitlement: Entitlement
    risk: int
    reasons: list[str]

    @property
    def monthly(self):
        return self.entitlement.item.price_monthly


def candidates_queryset() -> QuerySet[Entitlement]:
    """Active entitlements that cost something (a monthly price or a licence pool) with at
    least one sign, highest risk first, then the dearest. One Django query with correlated
    counts per row: what ``ranked_candidates`` computes, the reference its tests compare
    with (at 900,000 entitlements it runs for minutes)."""
    return (
        with_reclaim_risk(
            Entitlement.objects.filter(state=EntitlementState.ACTIVE).filter(
                Q(item__price_monthly__gt=0) | Q(item__licence_pool_size__isnull=False)
            )
        )
        .filter(reclaim_risk__gt=0)
        .select_related("item", "holder__user", "holder__department")
        .order_by("-reclaim_risk", "-item__price_monthly", "item__name", "id")
    )


@dataclass(frozen=True)
class Ranked:
    """One candidate of ``ranked_candidates``: the entitlement's id, its risk and signs."""

    entitlement_id: int
    risk: int
    left: bool
    moved: bool
    idle: bool
    few_peers: bool

    @property
    def reasons(self) -> list[str]:
        return signs_in_words(self)


def signs_in_words(row) -> list[str]:
    """The signs of a row with ``left``, ``moved``, ``idle``, ``few_peers``, in words."""
    return [str(LABELS[sign]) for sign in WEIGHTS if getattr(row, sign)]


def _ranked_sql(limit: int | None) -> tuple[str, list]:
    """The candidates in ``candidates_queryset``'s order, computed per holder and service.

    Every sign but "moved" belongs to the holder or to holder and service, so the signs are
    worked out once per *group* (holder × service × moved or not; a few thousand, one index
    probe each) instead of once per entitlement: the colleagues and those of them holding the
    service are counted per department and service from the groups. With a ``limit`` only the
    groups of the first ties of (risk, price, name) that hold at least ``limit`` groups before
    them can contribute (each group has an entitlement), and only their first ``limit``
    entitlements by id are read."""
    idle_since = timezone.now() - timedelta(days=settings.ASSIST_IDLE_DAYS)
    active = EntitlementState.ACTIVE.value
    t_ent = Entitlement._meta.db_table
    t_emp = Employee._meta.db_table
    t_user = get_user_model()._meta.db_table
    t_item = CatalogueItem._meta.db_table
    cut = "WHERE c.before < %s" if limit is not None else ""
    per_group = "LIMIT %s" if limit is not None else ""
    outer_limit = "LIMIT %s" if limit is not None else ""
    sql = f"""
    WITH emp AS MATERIALIZED (
        SELECT e.id, e.department_id, e.is_active,
               (u.last_login IS NULL OR u.last_login < %s)
               AND (e.directory_last_logon IS NULL OR e.directory_last_logon < %s) AS idle
        FROM {t_emp} e JOIN {t_user} u ON u.id = e.user_id
    ),
    pairs AS MATERIALIZED (
        SELECT * FROM (
            SELECT emp.id AS holder, emp.department_id AS dept, emp.is_active, emp.idle,
                   i.id AS item, i.name, i.price_monthly AS price,
                   EXISTS (SELECT 1 FROM {t_ent} x WHERE x.holder_id = emp.id
                           AND x.item_id = i.id AND x.state = %s AND x.review_note = '') AS plain,
                   EXISTS (SELECT 1 FROM {t_ent} x WHERE x.holder_id = emp.id
                           AND x.item_id = i.id AND x.state = %s AND x.review_note <> '')
                       AS moved
            FROM emp CROSS JOIN {t_item} i
            WHERE i.price_monthly > 0 OR i.licence_pool_size IS NOT NULL
        ) p
        WHERE p.plain OR p.moved
    ),
    peers AS (
        SELECT department_id AS dept, COUNT(*) AS n FROM {t_emp} WHERE is_active GROUP BY 1
    ),
    holding AS (SELECT dept, item, COUNT(*) AS h FROM pairs WHERE is_active GROUP BY 1, 2),
    groups AS (
        SELECT p.holder, p.item, p.price, p.name, g.moved, NOT p.is_active AS left_,
               p.idle,
               COALESCE(pe.n, 0) - p.is_active::int >= %s
               AND (COALESCE(h.h, 0) - p.is_active::int)::float8
                   < (COALESCE(pe.n, 0) - p.is_active::int)::float8 * %s AS few
        FROM pairs p
        LEFT JOIN peers pe ON pe.dept = p.dept
        LEFT JOIN holding h ON h.dept = p.dept AND h.item = p.item
        CROSS JOIN LATERAL (
            SELECT false WHERE p.plain UNION ALL SELECT true WHERE p.moved
        ) g(moved)
    ),
    ranked AS (
        SELECT g.*, %s * g.left_::int + %s * g.moved::int + %s * g.idle::int
                    + %s * g.few::int AS risk
        FROM groups g
    ),
    c AS (
        SELECT r.*,
               COUNT(*) OVER (ORDER BY r.risk DESC, r.price DESC, r.name)
               - COUNT(*) OVER (PARTITION BY r.risk, r.price, r.name) AS before
        FROM ranked r
        WHERE r.risk > 0
    )
    SELECT x.id, c.risk, c.left_, c.moved, c.idle, c.few
    FROM c
    CROSS JOIN LATERAL (
        SELECT x.id FROM {t_ent} x
        WHERE x.holder_id = c.holder AND x.item_id = c.item AND x.state = %s
          AND (x.review_note <> '') = c.moved
        ORDER BY x.id {per_group}
    ) x
    {cut}
    ORDER BY c.risk DESC, c.price DESC, c.name, x.id {outer_limit}
    """  # noqa: S608 - only table names are interpolated
    params = [
        idle_since,
        idle_since,
        active,
        active,
        settings.ASSIST_MIN_PEER_GROUP,
        settings.ASSIST_OUTLIER_SHARE,
        WEIGHTS["left"],
        WEIGHTS["moved"],
        WEIGHTS["idle"],
        WEIGHTS["few_peers"],
        active,
    ]
    if limit is not None:
        params += [limit, limit, limit]
    return sql, params


def ranked_candidates(limit: int | None = None) -> list[Ranked]:
    """The first ``limit`` (default: all) candidates with their signs; one statement."""
    if limit is not None and limit <= 0:
        return []
    sql, params = _ranked_sql(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [Ranked(*row) for row in cursor.fetchall()]


_LOADED = 2000  # entitlements per query when loading the candidates


def _candidates(ranked: list[Ranked]) -> list[Candidate]:
    """The ranked rows with their entitlements (holder, department, service) loaded."""
    result = []
    related = Entitlement.objects.select_related("item", "holder__user", "holder__department")
    for start in range(0, len(ranked), _LOADED):
        chunk = ranked[start : start + _LOADED]
        loaded = related.in_bulk([row.entitlement_id for row in chunk])
        result += [
            Candidate(loaded[row.entitlement_id], row.risk, row.reasons)
            for row in chunk
            if row.entitlement_id in loaded
        ]
    return result


def reclaim_candidates(limit: int | None = None) -> list[Candidate]:
    """The candidates computed now (the CSV of all of them; the page reads the stored first
    ones, ``stored_candidates``)."""
    return _candidates(ranked_candidates(limit))


STORED = 100  # candidates kept for the page (metrics.controlling.views.RECLAIM_SHOWN)


def refresh_stored() -> int:
    """Rank the candidates now and replace the stored first ones; their number."""
    from assist.models import ReclaimCandidate, ReclaimRun

    ranked = ranked_candidates(STORED)
    with transaction.atomic():
        with connection.cursor() as cursor:  # one writer at a time; readers go on
            cursor.execute(f"LOCK TABLE {ReclaimCandidate._meta.db_table} IN EXCLUSIVE MODE")
        ReclaimCandidate.objects.all().delete()
        ReclaimCandidate.objects.bulk_create(
            ReclaimCandidate(
                position=position,
                entitlement_id=row.entitlement_id,
                risk=row.risk,
                left=row.left,
                moved=row.moved,
                idle=row.idle,
                few_peers=row.few_peers,
            )
            for position, row in enumerate(ranked, start=1)
        )
        ReclaimRun.objects.update_or_create(pk=1, defaults={"computed_at": timezone.now()})
    return len(ranked)


def _stored_as_of() -> datetime.datetime:
    """When the stored candidates were computed; computed now if never."""
    from assist.models import ReclaimRun

    sql, params = _as_of_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    computed_at = found[0] if found else None
    if computed_at is None:
        refresh_stored()
        computed_at = ReclaimRun.objects.values_list("computed_at", flat=True).get(pk=1)
    return computed_at


def ensure_stored() -> None:
    """Compute the stored candidates if they never were: a page reading them in a read-only
    transaction (metrics.controlling.rollup.snapshot) calls this first."""
    _stored_as_of()


def _stored(limit: int):
    from assist.models import ReclaimCandidate

    return ReclaimCandidate.objects.filter(entitlement__state=EntitlementState.ACTIVE).order_by(
        "position"
    )[:limit]


def stored_candidates(limit: int = STORED) -> tuple[datetime.datetime, list[Candidate]]:
    """The stored first candidates (computed now if never) and when they were computed.
    Entitlements revoked since are left out."""
    computed_at = _stored_as_of()
    rows = _stored(limit).select_related(
        "entitlement__item", "entitlement__holder__user", "entitlement__holder__department"
    )
    return computed_at, [Candidate(row.entitlement, row.risk, signs_in_words(row)) for row in rows]


@dataclass(frozen=True)
class CandidateRow:
    """A stored candidate as the page shows it, in plain values: the page reads the columns
    it shows instead of five model instances per row, and a row that did not change renders
    from the table's memo (``metrics.controlling.tables.CaptionedTable``)."""

    holder: str
    department: str | None
    service: str
    since: datetime.datetime | None
    monthly: Decimal | None
    risk: int
    reasons: tuple[str, ...]


# The page's candidate rows per process, for the rows' digest and the language (their
# reasons are translated): the same objects on every view while nothing changed, so the
# table's markup is found by their identity (metrics/templatetags/reports.py) instead of by
# the fields of a hundred new rows (a tenth of the anomalies page's time).
_KEPT_ROWS = Memo(16, 4 << 20)


def stored_rows(limit: int = STORED) -> tuple[datetime.datetime, list[CandidateRow]]:
    """``stored_candidates`` as ``CandidateRow``s (the holder's name as ``display_name``).

    One statement reads when the candidates were computed and a digest of the rows shown
    (their columns as text); the rows themselves are read only for a digest not kept yet.
    Reading, converting and hashing the hundred rows and the date apart were half of this
    read's CPU on every view of the anomalies page."""
    sql, params = _stored_rows_statement(limit)
    with connection.cursor() as cursor:
        cursor.execute(_stored_digest_statement(sql), params)
        computed_at, digest = cursor.fetchone()
        if computed_at is None:  # never computed: now, then their digest
            _stored_as_of()
            cursor.execute(_stored_digest_statement(sql), params)
            computed_at, digest = cursor.fetchone()
    key = (get_language(), digest)
    result = _KEPT_ROWS.get(key)
    if result is None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            result = _candidate_rows(cursor.fetchall())
        # Kept only where the digest and the rows are of one state: in a transaction (the
        # page reads in one snapshot, metrics.controlling.rollup.snapshot), not between two
        # statements of which the second may see the next run's candidates.
        if connection.in_atomic_block:
            _KEPT_ROWS.put(key, result)
    return computed_at, list(result)


def _candidate_rows(rows) -> list[CandidateRow]:
    labels = [str(LABELS[sign]) for sign in WEIGHTS]  # translated once, not per row
    result = []
    for first_name, last_name, username, department, service, since, monthly, risk, *signs in rows:
        result.append(
            CandidateRow(
                holder=f"{first_name} {last_name}".strip() or username,  # User.get_full_name()
                department=department,
                service=service,
                since=since,
                monthly=monthly,
                risk=risk,
                reasons=tuple(label for label, sign in zip(labels, signs, strict=True) if sign),
            )
        )
    return result


# The page's two reads without the ORM (the same SQL on every view): building and compiling
# the candidates' join and converting its 100 rows through it was 2.2 ms of the anomalies
# page's 17 ms CPU, the run's date 0.4 ms twice a view.
@functools.cache
def _as_of_statement() -> tuple[str, tuple]:
    from assist.models import ReclaimRun

    run = ReclaimRun.objects.filter(pk=1).values_list("computed_at").order_by()[:1]
    sql, params = run.query.sql_with_params()
    return sql, tuple(params)


def _stored_rows_statement(limit: int) -> tuple[str, tuple]:
    """``_stored(limit)`` with the holder's name and department and the service's name and
    price. The holder's and the service's columns are each read by a subquery planned on its
    own (OFFSET 0 keeps PostgreSQL from pulling it into the join): as one join of six tables
    (the ORM's values_list) its planning alone took 1.4 ms of every view, 0.45 ms so."""
    from assist.models import ReclaimCandidate

    t = {
        "candidate": ReclaimCandidate._meta.db_table,
        "entitlement": Entitlement._meta.db_table,
        "employee": Employee._meta.db_table,
        "user": get_user_model()._meta.db_table,
        "department": Department._meta.db_table,
        "item": CatalogueItem._meta.db_table,
    }
    signs = ", ".join(f'c."{sign}"' for sign in WEIGHTS)  # in the order of LABELS
    sql = f"""
    SELECT h.first_name, h.last_name, h.username, h.department, i.name, e.granted_at,
           i.price_monthly, c.risk, {signs}
    FROM {t["candidate"]} c
    JOIN {t["entitlement"]} e ON e.id = c.entitlement_id
    CROSS JOIN LATERAL (
        SELECT u.first_name, u.last_name, u.username, d.name AS department
        FROM {t["employee"]} emp
        JOIN {t["user"]} u ON u.id = emp.user_id
        JOIN {t["department"]} d ON d.id = emp.department_id
        WHERE emp.id = e.holder_id
        OFFSET 0
    ) h
    CROSS JOIN LATERAL (
        SELECT i.name, i.price_monthly FROM {t["item"]} i WHERE i.id = e.item_id OFFSET 0
    ) i
    WHERE e.state = %s
    ORDER BY c.position
    LIMIT %s
    """  # noqa: S608 - only table and column names are interpolated
    return sql, (EntitlementState.ACTIVE.value, limit)


@functools.cache
def _stored_digest_statement(rows_sql: str) -> str:
    """When the candidates were computed (NULL if never) and the MD5 of ``rows_sql``'s rows
    as text (a row's text tells NULL from an empty text), in their order: aggregated from
    the sorted subquery as it delivers them; the same parameters."""
    from assist.models import ReclaimRun

    return f"""
    SELECT (SELECT computed_at FROM {ReclaimRun._meta.db_table} WHERE id = 1),
           (SELECT md5(COALESCE(string_agg(r::text, '|'), '')) FROM ({rows_sql}) AS r)
    """  # noqa: S608 - only a table name and the rows' own statement
