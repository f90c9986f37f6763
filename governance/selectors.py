"""Reads for governance: the segregation-of-duties report (the rules themselves are
evaluated in ``governance.sod``), and recertification."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import connections, router
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from governance.models import SodException, SodFinding
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement


def open_findings() -> QuerySet[SodFinding]:
    """The holder report: one row per rule and person found breaking it by the last scan,
    with the expiry of an approved exception in force. One query (and a count) per page,
    whatever the number of rules or holdings: the scan did the evaluation."""
    return finding_rows(unresolved_findings())


def unresolved_findings() -> QuerySet[SodFinding]:
    """The findings of the holder report, conditions only: the report filters, sorts and
    counts these and reads its page's rows through ``finding_rows``."""
    return SodFinding.objects.filter(resolved_at__isnull=True)


def finding_rows(findings: QuerySet[SodFinding]) -> QuerySet[SodFinding]:
    """``findings`` with what the report shows of each: the rule, the holder, and the expiry
    of an approved exception in force."""
    today = timezone.localdate()
    excepted = SodException.objects.filter(
        rule=OuterRef("rule"),
        holder=OuterRef("holder"),
        state=SodException.State.APPROVED,
        valid_until__gte=today,
    ).order_by("-valid_until")
    return findings.annotate(
        excepted_until=Subquery(excepted.values("valid_until")[:1])
    ).select_related("rule", "holder__user", "holder__department")


# --- recertification ---------------------------------------------------------------------


def _tasks_of(user) -> QuerySet:
    """The review tasks ``user`` decides, unlocked, filters only (pages and counts)."""
    from itportal.roles import is_it_admin

    return _tasks_where(user.pk, is_it_admin(user), timezone.localdate())


def _tasks_where(user_id: int, it_admin: bool, on_date) -> QuerySet:
    """``_tasks_of`` by the user's id, role and the day (of the substitutions), which are
    all it depends on: ``review_counts`` compiles it once with stand-ins for them."""
    from governance.models import Campaign, ReviewTask
    from requests_app.selectors import principals_substituted_by

    principals = principals_substituted_by(user_id, on_date=on_date)
    mine = Q(reviewer=user_id) | Q(reviewer__in=principals)
    if it_admin:
        mine |= Q(reviewer__isnull=True)
    return (
        ReviewTask.objects.filter(mine, locked=False)
        .filter(
            review__campaign__state=Campaign.State.OPEN,
            # revoked meanwhile (a leaver, by hand): nothing left to decide
            review__entitlement__state=EntitlementState.ACTIVE,
        )
        .exclude(review__entitlement__holder__user=user_id)
    )


def undecided_tasks_for(user) -> QuerySet:
    """What still waits for ``user``'s decision on "Zugriffe prüfen" (the header's count;
    read through the partial index review_task_undecided)."""
    from governance.choices import TaskDecision

    return _tasks_of(user).filter(decision=TaskDecision.PENDING)


def tasks_for(user) -> QuerySet:
    """Open review tasks ``user`` decides (as reviewer, as the reviewer's substitute today,
    or, IT admins, those without a reviewer), never on their own access; undecided first."""
    from django.db.models import Case, IntegerField, Value, When

    return (
        _tasks_of(user)
        .select_related(
            "review__campaign",
            "review__entitlement__item",
            "review__entitlement__holder__user",
            "review__entitlement__holder__department",
            "escalated_from",
        )
        .annotate(
            undecided=Case(
                When(decision="pending", then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by(
            "undecided",
            "review__campaign__due_on",
            "review__entitlement__holder__user__last_name",
            "id",
        )
    )


def flagged_for(user) -> QuerySet[Entitlement]:
    """Access of the user's staff flagged after a change of department, still active."""
    return (
        _flagged_where(user.pk, timezone.localdate())
        .select_related("item", "holder__user", "holder__department")
        .order_by("holder__user__last_name", "id")
    )


def _flagged_where(user_id: int, on_date) -> QuerySet[Entitlement]:
    """``flagged_for``'s rows by the user's id and the day, filters only."""
    from requests_app.selectors import principals_substituted_by

    managers = Q(holder__manager__user=user_id) | Q(
        holder__manager__user__in=principals_substituted_by(user_id, on_date=on_date)
    )
    return (
        Entitlement.objects.filter(managers, state=EntitlementState.ACTIVE)
        .exclude(review_note="")
        .exclude(holder__user=user_id)
    )


# The stand-in for the day in ``review_counts``' statement: no substitution starts or ends
# on it, and it is no value of any other condition there.
_DAY_MARK = datetime.date(1000, 1, 1)
# ``review_counts``' statements by database, role and bound: SQL, parameters and where the
# user's id and the day go among them. Two roles and one bound: a handful.
_REVIEW_COUNTS: dict[tuple, tuple[str, tuple, tuple[int, ...], tuple[int, ...]]] = {}


def review_counts(user, limit: int) -> tuple[int, int]:
    """The numbers of ``tasks_for(user)`` and of ``flagged_for(user)``, each at most
    ``limit + 1`` (as ``itportal.inputs.bounded_count`` counts them), in one statement
    compiled once per role: building and compiling the two querysets' filters (the
    substitutions' subquery twice) was a third of "Zugriffe prüfen"'s CPU, on every view
    of a page that is empty between campaigns."""
    from itportal.roles import is_it_admin

    it_admin = is_it_admin(user)
    db = router.db_for_read(Entitlement)
    key = (db, it_admin, limit)
    statement = _REVIEW_COUNTS.get(key)
    if statement is None:
        statement = _REVIEW_COUNTS[key] = _review_counts_statement(db, it_admin, limit)
    sql, params, users, days = statement
    params = list(params)
    for index in users:
        params[index] = user.pk
    today = timezone.localdate()
    for index in days:
        params[index] = today
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        tasks, flagged = cursor.fetchone()
    return tasks, flagged


def _review_counts_statement(db: str, it_admin: bool, limit: int) -> tuple:
    from itportal.statements import MARK_32

    counts, params = [], []
    for rows in (_tasks_where(MARK_32, it_admin, _DAY_MARK), _flagged_where(MARK_32, _DAY_MARK)):
        ids = rows.order_by().values("pk")[: limit + 1]
        sql, ids_params = ids.query.get_compiler(using=db).as_sql()
        # Only SQL compiled by the ORM is interpolated; the values are parameters.
        counts.append(f"(SELECT COUNT(*) FROM ({sql}) subquery)")  # noqa: S608
        params.extend(ids_params)
    users = tuple(index for index, value in enumerate(params) if value == MARK_32)
    days = tuple(index for index, value in enumerate(params) if value == _DAY_MARK)
    if len(users) != 6 or len(days) != 4:
        raise RuntimeError("The user's and the day's stand-ins are not where expected.")
    return f"SELECT {', '.join(counts)}", tuple(params), users, days


def campaigns_with_counts() -> QuerySet:
    from django.db.models import Count

    from governance.models import Campaign, Review

    D = Review.Decision
    return (
        Campaign.objects.annotate(
            total=Count("reviews"),
            kept=Count("reviews", filter=Q(reviews__decision__in=[D.KEEP, D.REDUCE])),
            removed=Count("reviews", filter=Q(reviews__decision=D.REMOVE)),
            unconfirmed=Count("reviews", filter=Q(reviews__decision=D.UNCONFIRMED)),
            pending=Count("reviews", filter=Q(reviews__decision=D.PENDING)),
        )
        .select_related("started_by", "scope_item", "scope_department")
        .order_by("-started_at", "-id")
    )


def campaign_stages(campaign) -> QuerySet:
    return campaign.stages.order_by("number")


def pending_by_reviewer(campaign) -> QuerySet:
    """Who still has to decide how much in the stage under way: the campaign page's
    follow-up list."""
    from django.db.models import Count

    from governance.choices import TaskDecision
    from governance.models import ReviewTask

    return (
        ReviewTask.objects.filter(
            review__campaign=campaign,
            stage=campaign.current_stage,
            locked=False,
            decision=TaskDecision.PENDING,
        )
        .values("reviewer", "reviewer__first_name", "reviewer__last_name", "reviewer__username")
        .annotate(pending=Count("id"))
        .order_by("-pending", "reviewer")
    )


def campaign_scope(campaign) -> QuerySet[Entitlement]:
    """The active lasting access a campaign reviews: all, one service's, one department's
    (and its sub-departments'), or the ``risk_limit`` riskiest (governance/risk.py)."""
    from governance import risk
    from governance.choices import CampaignScope

    entitlements = Entitlement.objects.filter(
        state=EntitlementState.ACTIVE, item__grants_access=True
    ).order_by()
    if campaign.scope == CampaignScope.ITEM:
        return entitlements.filter(item=campaign.scope_item_id)
    if campaign.scope == CampaignScope.DEPARTMENT:
        return entitlements.filter(
            Q(holder__department=campaign.scope_department_id)
            | Q(holder__department__parent=campaign.scope_department_id)
        )
    if campaign.scope == CampaignScope.RISK:
        return risk.riskiest(entitlements, campaign.risk_limit)
    return entitlements


def campaign_report_rows(campaign) -> QuerySet:
    """Every reviewer's decision of a campaign, stage by stage: the auditors' report."""
    from governance.models import ReviewTask

    return (
        ReviewTask.objects.filter(review__campaign=campaign)
        .select_related(
            "review__entitlement__item",
            "review__entitlement__holder__user",
            "review__entitlement__holder__department",
            "reviewer",
            "decided_by",
            "escalated_from",
        )
        .order_by("review__entitlement__holder__user__last_name", "review_id", "stage", "id")
    )


@dataclass(frozen=True)
class Requirement:
    code: str
    title: str
    how: str


def bsi_requirements(campaign) -> list[Requirement]:
    """The BSI IT-Grundschutz requirements a campaign serves, with how (for the auditors)."""
    from django.utils.translation import gettext as _

    from catalogue.choices import FulfilmentKind

    result = [
        Requirement(
            "ORP.4.A3",
            _("Documentation of the access rights: rights are checked regularly"),
            _(
                "Each access in scope was put to a reviewer; each decision is listed with who "
                "made it and when. Removals ran through the portal's deprovisioning."
            ),
        )
    ]
    if campaign.reviews.filter(
        entitlement__item__fulfilment_kind=FulfilmentKind.AUTOMATED
    ).exists():
        result.append(
            Requirement(
                "APP.2.2",
                _("Active Directory: accounts and group memberships no longer needed removed"),
                _(
                    "Directory accounts and group memberships the portal provisions were in "
                    "scope; removed ones were taken out of the directory by provisioning jobs."
                ),
            )
        )
    return result
