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
