"""Reads for governance: the segregation-of-duties report (the rules themselves are
evaluated in ``governance.sod``), and recertification."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from governance.models import SodException, SodFinding
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement


def open_findings() -> QuerySet[SodFinding]:
    """The holder report: one row per rule and person found breaking it by the last scan,
    with the expiry of an approved exception in force. One query (and a count) per page,
    whatever the number of rules or holdings: the scan did the evaluation."""
    today = timezone.localdate()
    excepted = SodException.objects.filter(
        rule=OuterRef("rule"),
        holder=OuterRef("holder"),
        state=SodException.State.APPROVED,
        valid_until__gte=today,
    ).order_by("-valid_until")
    return (
        SodFinding.objects.filter(resolved_at__isnull=True)
        .annotate(excepted_until=Subquery(excepted.values("valid_until")[:1]))
        .select_related("rule", "holder__user", "holder__department")
    )


# --- recertification ---------------------------------------------------------------------


def _tasks_of(user) -> QuerySet:
    """The review tasks ``user`` decides, unlocked, filters only (pages and counts)."""
    from governance.models import Campaign, ReviewTask
    from itportal.roles import is_it_admin
    from requests_app.selectors import principals_substituted_by

    mine = Q(reviewer=user) | Q(reviewer__in=principals_substituted_by(user))
    if is_it_admin(user):
        mine |= Q(reviewer__isnull=True)
    return (
        ReviewTask.objects.filter(mine, locked=False)
        .filter(
            review__campaign__state=Campaign.State.OPEN,
            # revoked meanwhile (a leaver, by hand): nothing left to decide
            review__entitlement__state=EntitlementState.ACTIVE,
        )
        .exclude(review__entitlement__holder__user=user)
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
    from requests_app.selectors import principals_substituted_by

    managers = Q(holder__manager__user=user) | Q(
        holder__manager__user__in=principals_substituted_by(user)
    )
    return (
        Entitlement.objects.filter(managers, state=EntitlementState.ACTIVE)
        .exclude(review_note="")
        .exclude(holder__user=user)
        .select_related("item", "holder__user", "holder__department")
        .order_by("holder__user__last_name", "id")
    )


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
