"""Reads for segregation of duties: conflicts of one order, and of everyone's holdings."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from governance.models import SodRule
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import OPEN_STATES
from requests_app.models import ServiceRequest


@dataclass(frozen=True)
class Conflict:
    rule: SodRule
    other_item_name: str
    held: bool  # held as an entitlement; otherwise ordered and still open


def rules_for(item_id: int) -> QuerySet[SodRule]:
    return SodRule.objects.filter(
        Q(first_item=item_id) | Q(second_item=item_id), is_active=True
    ).select_related("first_item", "second_item")


def conflicts_of(*, beneficiary_id: int, item_id: int, ignore_request_id=None) -> list[Conflict]:
    """What the beneficiary holds or has ordered that must not go with ``item_id``."""
    rules = list(rules_for(item_id))
    if not rules:
        return []
    others = {rule.other(item_id): rule for rule in rules}
    held = set(
        Entitlement.objects.filter(
            holder=beneficiary_id, item__in=others, state=EntitlementState.ACTIVE
        ).values_list("item_id", flat=True)
    )
    ordered = set(
        ServiceRequest.objects.filter(
            beneficiary=beneficiary_id, item__in=others, state__in=OPEN_STATES
        )
        .exclude(pk=ignore_request_id)
        .values_list("item_id", flat=True)
    )
    conflicts = []
    for other_id, rule in others.items():
        if other_id in held or other_id in ordered:
            other = rule.second_item if other_id == rule.second_item_id else rule.first_item
            conflicts.append(Conflict(rule, other.name, held=other_id in held))
    return conflicts


def holder_conflicts() -> QuerySet[Entitlement]:
    """One row per person, rule and active entitlement of the rule's first service whose
    holder also actively holds the rule's second service: the report for IT admins and
    auditors. One query, whatever the number of rules."""
    second = Entitlement.objects.filter(
        holder=OuterRef("holder"),
        item=OuterRef("rule_second_item"),
        state=EntitlementState.ACTIVE,
    )
    return (
        Entitlement.objects.filter(state=EntitlementState.ACTIVE)
        .filter(item__sod_first__is_active=True)
        .annotate(
            rule_id=F("item__sod_first__id"),
            rule_name=F("item__sod_first__name"),
            rule_second_item=F("item__sod_first__second_item"),
            second_item_name=F("item__sod_first__second_item__name"),
        )
        .filter(Exists(second))
        .select_related("holder__user", "holder__department", "item")
    )


# --- recertification ---------------------------------------------------------------------


def reviews_for(user) -> QuerySet:
    """Undecided reviews of open campaigns that ``user`` decides: as reviewer, as the
    reviewer's substitute today, or (IT admins) those without a reviewer; never their own."""
    from governance.models import Campaign, Review
    from itportal.roles import is_it_admin
    from requests_app.selectors import principals_substituted_by

    mine = Q(reviewer=user) | Q(reviewer__in=principals_substituted_by(user))
    if is_it_admin(user):
        mine |= Q(reviewer__isnull=True)
    return (
        Review.objects.filter(mine, decision=Review.Decision.PENDING)
        .filter(campaign__state=Campaign.State.OPEN)
        .exclude(entitlement__holder__user=user)
        .select_related(
            "campaign",
            "entitlement__item",
            "entitlement__holder__user",
            "entitlement__holder__department",
        )
        .order_by("campaign__due_on", "entitlement__holder__user__last_name", "id")
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
    return Campaign.objects.annotate(
        total=Count("reviews"),
        kept=Count("reviews", filter=Q(reviews__decision=D.KEEP)),
        removed=Count("reviews", filter=Q(reviews__decision=D.REMOVE)),
        pending=Count("reviews", filter=Q(reviews__decision=D.PENDING)),
    ).select_related("started_by")


def pending_by_reviewer(campaign) -> QuerySet:
    """Who still has to decide how much: the campaign page's follow-up list."""
    from django.db.models import Count

    from governance.models import Review

    return (
        Review.objects.filter(campaign=campaign, decision=Review.Decision.PENDING)
        .values("reviewer", "reviewer__first_name", "reviewer__last_name", "reviewer__username")
        .annotate(pending=Count("id"))
        .order_by("-pending")
    )


def campaign_rows(campaign) -> QuerySet:
    from governance.models import Review

    return (
        Review.objects.filter(campaign=campaign)
        .select_related(
            "entitlement__item",
            "entitlement__holder__user",
            "entitlement__holder__department",
            "reviewer",
            "decided_by",
        )
        .order_by("id")
    )
