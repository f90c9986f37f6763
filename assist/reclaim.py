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

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
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
from django.utils.translation import gettext_lazy as _

from assist.selectors import _Count
from catalogue.models import Employee
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
    least one sign, highest risk first, then the dearest."""
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


def reclaim_candidates(limit: int | None = None) -> list[Candidate]:
    rows = candidates_queryset()
    if limit is not None:
        rows = rows[:limit]
    return [Candidate(row, row.reclaim_risk, reclaim_reasons(row)) for row in rows]
