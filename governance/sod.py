"""Segregation of duties: what a person holds, by which way, and when; which rules that breaks.

Reads only. A rule has two sides, each a set of services and directory groups, met by
holding *any* of its members or *all* of them. A person holds

- a service through an active entitlement (from when it was granted until it expires) or
  an open request for it (from today until the order's "valid until" date);
- a directory group through any such service whose provisioning adds them to the group or
  to a group nested in it (the nesting as last read from the directory, ``GroupNesting``),
  and through a membership given by hand that reconciliation found.

Two holdings count together only where their periods overlap; one holding never meets
both sides. The same evaluation serves the order check, the approval check and the scan
that fills the holder report (``sod_services.sod_scan``).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product

from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from governance.models import GroupNesting, SodException, SodMatch, SodRule, SodSide
from provisioning.choices import ActionKind, EntitlementState
from provisioning.holders import dn_key
from provisioning.models import Entitlement, ManualMembership, ProvisioningAction
from requests_app.choices import OPEN_STATES
from requests_app.models import ServiceRequest

MAX_NESTING_DEPTH = 10  # directory loops or absurd depths end here


# --- periods -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """From ``start`` to ``end``, both days included; None is open-ended."""

    start: datetime.date | None = None
    end: datetime.date | None = None

    def intersect(self, other: Window) -> Window | None:
        starts = [d for d in (self.start, other.start) if d is not None]
        ends = [d for d in (self.end, other.end) if d is not None]
        start = max(starts) if starts else None
        end = min(ends) if ends else None
        if start is not None and end is not None and end < start:
            return None
        return Window(start, end)


def _date_answer(answers: dict, key: str) -> datetime.date | None:
    value = (answers or {}).get(key) if key else None
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def request_window(
    answers: dict,
    snapshot: dict,
    *,
    needed_from: datetime.date | None = None,
    today: datetime.date | None = None,
) -> Window:
    """An order's period: from the day it is needed (provisioning waits for it), today at
    the earliest, until its "valid until" answer, if the item has one."""
    today = today or timezone.localdate()
    start = max(today, needed_from) if needed_from else today
    end = _date_answer(answers, (snapshot or {}).get("valid_until_field") or "")
    return Window(start, end)


def entitlement_window(entitlement) -> Window:
    return Window(timezone.localdate(entitlement.granted_at), entitlement.expires_on)


# --- holdings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """One way a person holds a service: an entitlement, an open request, the order being
    placed, or a membership given by hand (``item_id`` None, one group)."""

    source: str  # "entitlement" | "request" | "order" | "manual"
    source_id: int | None
    item_id: int | None
    label: str
    window: Window
    groups: tuple[str, ...] = ()  # directory groups the holding adds its holder to


@dataclass(frozen=True)
class Reach:
    """How a holding meets one rule member: directly, or through a group path (from the
    group the holding adds its holder to, up the nesting, to the rule's group)."""

    holding: Holding
    member: str  # "item:<id>" or "group:<dn>"
    group_path: tuple[str, ...] = ()


@dataclass
class SideMet:
    window: Window
    reaches: tuple[Reach, ...]

    @property
    def sources(self) -> set[tuple[str, int | None]]:
        return {(r.holding.source, r.holding.source_id) for r in self.reaches}


@dataclass
class Hit:
    rule: SodRule
    window: Window
    first: tuple[Reach, ...]
    second: tuple[Reach, ...]
    excepted_until: datetime.date | None = None

    def involves(self, source: str, source_id: int | None) -> bool:
        return any(
            r.holding.source == source and r.holding.source_id == source_id
            for r in (*self.first, *self.second)
        )

    def evidence(self) -> dict:
        def row(reach: Reach) -> dict:
            h = reach.holding
            return {
                "source": h.source,
                "id": h.source_id,
                "item_id": h.item_id,
                "label": h.label,
                "member": reach.member,
                "group_path": list(reach.group_path),
                "from": h.window.start.isoformat() if h.window.start else None,
                "until": h.window.end.isoformat() if h.window.end else None,
            }

        return {"first": [row(r) for r in self.first], "second": [row(r) for r in self.second]}


@dataclass
class Context:
    """What the evaluation needs besides the holdings, read once per check or scan."""

    rules: list[SodRule]
    members: dict[int, dict[str, list[str]]] = field(default_factory=dict)  # rule → side → keys
    item_groups: dict[int, tuple[str, ...]] = field(default_factory=dict)
    parents: dict[str, set[str]] = field(default_factory=dict)
    _paths: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def paths(self, group: str) -> dict[str, tuple[str, ...]]:
        """``group_paths`` of ``group``, worked out once per check or scan."""
        if group not in self._paths:
            self._paths[group] = group_paths(group, self.parents)
        return self._paths[group]


def group_label(dn: str) -> str:
    """A group's name for people: the value of its first RDN."""
    first = dn.split(",", 1)[0]
    return first.partition("=")[2] or dn


def group_parents() -> dict[str, set[str]]:
    parents: dict[str, set[str]] = defaultdict(set)
    for parent, child in GroupNesting.objects.values_list("parent_dn", "child_dn"):
        parents[child].add(parent)
    return parents


def group_paths(dn: str, parents: dict[str, set[str]]) -> dict[str, tuple[str, ...]]:
    """Every group ``dn`` reaches, with one shortest path to it (``dn`` first)."""
    start = dn_key(dn)
    paths = {start: (start,)}
    frontier = [start]
    for _depth in range(MAX_NESTING_DEPTH):
        following = []
        for group in frontier:
            for parent in sorted(parents.get(group, ())):
                if parent not in paths:
                    paths[parent] = (*paths[group], parent)
                    following.append(parent)
        if not following:
            break
        frontier = following
    return paths


def item_groups(item_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = defaultdict(list)
    for item_id, target in ProvisioningAction.objects.filter(
        item__in=set(item_ids), kind=ActionKind.ADD_TO_GROUP
    ).values_list("item_id", "target"):
        if target and "{" not in target:  # a templated DN is not one known group
            found[item_id].append(dn_key(target))
    return {k: tuple(v) for k, v in found.items()}


def load_context(rules: list[SodRule]) -> Context:
    context = Context(rules=rules)
    for rule in rules:
        sides: dict[str, list[str]] = {SodSide.FIRST: [], SodSide.SECOND: []}
        for member in rule.members.all():
            key = f"item:{member.item_id}" if member.item_id else f"group:{dn_key(member.group_dn)}"
            sides[member.side].append(key)
        context.members[rule.pk] = sides
    if any(k.startswith("group:") for s in context.members.values() for v in s.values() for k in v):
        context.parents = group_parents()
    return context


def active_rules(rule_ids: Iterable[int] | None = None) -> list[SodRule]:
    rules = SodRule.objects.filter(is_active=True).prefetch_related("members__item")
    if rule_ids is not None:
        rules = rules.filter(pk__in=list(rule_ids))
    return list(rules)


def _reaches(holding: Holding, key: str, context: Context) -> tuple[str, ...] | None:
    """None: the holding does not meet member ``key``; else the group path (may be empty)."""
    kind, _sep, value = key.partition(":")
    if kind == "item":
        return () if holding.item_id is not None and str(holding.item_id) == value else None
    for group in holding.groups:
        paths = context.paths(group)
        if value in paths:
            return paths[value]
    return None


def _side(holdings: list[Holding], keys: list[str], match: str, context) -> list[SideMet]:
    """The ways ``holdings`` meet one side: each with the period it is met in."""
    per_member: list[list[Reach]] = []
    for key in keys:
        reaches = []
        for holding in holdings:
            path = _reaches(holding, key, context)
            if path is not None:
                reaches.append(Reach(holding, key, path))
        per_member.append(reaches)
    if not keys:
        return []
    if match == SodMatch.ANY:
        return [SideMet(r.holding.window, (r,)) for reaches in per_member for r in reaches]
    met = []
    for combination in product(*per_member):  # all of: one holding per member, at once
        window: Window | None = Window()
        for reach in combination:
            window = window.intersect(reach.holding.window) if window else None
        if window is not None:
            met.append(SideMet(window, tuple(combination)))
    return met


def evaluate(holdings: list[Holding], context: Context, *, involving=None) -> list[Hit]:
    """The rules ``holdings`` break: one hit per rule (the first overlapping combination).
    ``involving``: (source, id) of a holding every combination must contain (the order
    being checked), so that a conflict held already does not hide the new one."""
    hits = []
    for rule in context.rules:
        keys = context.members.get(rule.pk) or {}
        first = _side(holdings, keys.get(SodSide.FIRST, []), rule.first_match, context)
        if not first:
            continue
        second = _side(holdings, keys.get(SodSide.SECOND, []), rule.second_match, context)
        for a, b in product(first, second):
            if a.sources & b.sources:
                continue  # one holding never meets both sides
            if involving is not None and involving not in (a.sources | b.sources):
                continue
            window = a.window.intersect(b.window)
            if window is not None:
                hits.append(Hit(rule, window, a.reaches, b.reaches))
                break
    return hits


# --- what one person holds -----------------------------------------------------------------


def holdings_of(
    employee_ids: Iterable[int], *, with_requests: bool, ignore_request_id=None, today=None
) -> dict[int, list[Holding]]:
    """Per person: active entitlements, open requests (if asked), memberships by hand."""
    from catalogue.models import Employee

    employee_ids = list(employee_ids)
    today = today or timezone.localdate()
    found: dict[int, list[Holding]] = defaultdict(list)
    rows = Entitlement.objects.filter(
        holder__in=employee_ids, state=EntitlementState.ACTIVE
    ).select_related("item")
    entitlements = list(rows)
    requests = []
    if with_requests:
        requests = list(
            ServiceRequest.objects.filter(beneficiary__in=employee_ids, state__in=OPEN_STATES)
            .exclude(pk=ignore_request_id)
            .select_related("item")
        )
    groups = item_groups({e.item_id for e in entitlements} | {r.item_id for r in requests})
    for e in entitlements:
        found[e.holder_id].append(
            Holding(
                "entitlement",
                e.pk,
                e.item_id,
                e.item.name,
                entitlement_window(e),
                groups.get(e.item_id, ()),
            )
        )
    for r in requests:
        found[r.beneficiary_id].append(
            Holding(
                "request",
                r.pk,
                r.item_id,
                r.item.name,
                request_window(r.answers, r.item_snapshot, needed_from=r.needed_from, today=today),
                groups.get(r.item_id, ()),
            )
        )
    uids = dict(Employee.objects.filter(pk__in=employee_ids).values_list("personnel_number", "pk"))
    uids = {uid.lower(): pk for uid, pk in uids.items()}
    if uids:
        manual = ManualMembership.objects.annotate(uid=Lower("member_uid")).filter(uid__in=uids)
        for m in manual:
            found[uids[m.member_uid.lower()]].append(
                Holding(
                    "manual",
                    m.pk,
                    None,
                    m.group_dn,
                    Window(timezone.localdate(m.first_seen), None),
                    (dn_key(m.group_dn),),
                )
            )
    return found


def effective_exceptions(pairs: Iterable[tuple[int, int]], *, today=None) -> dict:
    """(rule id, holder id) → the latest expiry of an approved exception in force."""
    pairs = list(pairs)
    if not pairs:
        return {}
    today = today or timezone.localdate()
    match = Q()
    for rule_id, holder_id in pairs:
        match |= Q(rule_id=rule_id, holder_id=holder_id)
    found: dict[tuple[int, int], datetime.date] = {}
    for rule_id, holder_id, until in SodException.objects.filter(
        match, state=SodException.State.APPROVED, valid_until__gte=today
    ).values_list("rule_id", "holder_id", "valid_until"):
        key = (rule_id, holder_id)
        found[key] = max(until, found.get(key, until))
    return found


def rules_touching(item_id: int) -> list[SodRule]:
    """Active rules the item can take part in: as a member, or through a group it grants
    (also a group nested in a rule's group)."""
    rules = active_rules()
    if not rules:
        return []
    context = load_context(rules)
    groups = item_groups([item_id]).get(item_id, ())
    probe = Holding("order", None, item_id, "", Window(), groups)
    return [
        rule
        for rule in rules
        if any(
            _reaches(probe, key, context) is not None
            for keys in context.members[rule.pk].values()
            for key in keys
        )
    ]


def conflicts_of_order(
    *, beneficiary, item, answers=None, needed_from=None, service_request=None, today=None
) -> list[Hit]:
    """The rules that ordering (or approving) ``item`` for ``beneficiary`` would break,
    with what else is held; hits covered by an approved exception are marked."""
    today = today or timezone.localdate()
    rules = rules_touching(item.pk)
    if not rules:
        return []
    context = load_context(rules)
    context.item_groups = item_groups([item.pk])
    if service_request is not None:
        answers, snapshot = service_request.answers, service_request.item_snapshot
        needed_from = service_request.needed_from
    else:
        snapshot = item.snapshot() if hasattr(item, "snapshot") else {}
    order = Holding(
        "order",
        None,
        item.pk,
        item.name,
        request_window(answers or {}, snapshot, needed_from=needed_from, today=today),
        context.item_groups.get(item.pk, ()),
    )
    held = holdings_of(
        [beneficiary.pk],
        with_requests=True,
        ignore_request_id=service_request.pk if service_request is not None else None,
        today=today,
    )[beneficiary.pk]
    hits = evaluate([*held, order], context, involving=("order", None))
    excepted = effective_exceptions(((h.rule.pk, beneficiary.pk) for h in hits), today=today)
    for hit in hits:
        hit.excepted_until = excepted.get((hit.rule.pk, beneficiary.pk))
    return hits


def candidates(rule: SodRule, context: Context) -> set[int]:
    """People who hold something of each side of ``rule``: a superset of those who break it,
    found in two indexed queries per side instead of reading everyone's holdings."""
    from catalogue.models import Employee

    result: set[int] | None = None
    keys = context.members.get(rule.pk) or {}
    all_groups = None
    for side in (SodSide.FIRST, SodSide.SECOND):
        items = {int(k[5:]) for k in keys.get(side, []) if k.startswith("item:")}
        groups = {k[6:] for k in keys.get(side, []) if k.startswith("group:")}
        manual_groups: set[str] = set()
        if groups:
            if all_groups is None:
                all_groups = _known_groups()
            # Every group that reaches one of the rule's groups through nesting.
            reaching = {g for g in all_groups if groups & set(group_paths(g, context.parents))}
            reaching |= groups
            manual_groups = reaching
            items |= {item_id for item_id, target in _group_actions() if dn_key(target) in reaching}
        people = set(
            Entitlement.objects.filter(item__in=items, state=EntitlementState.ACTIVE)
            .order_by()
            .values_list("holder_id", flat=True)
            .distinct()
        )
        if manual_groups:
            uids = {
                u.lower()
                for u in ManualMembership.objects.filter(group_dn__in=manual_groups)
                .values_list("member_uid", flat=True)
                .distinct()
                if u
            }
            if uids:
                people |= set(
                    Employee.objects.annotate(uid=Lower("personnel_number"))
                    .filter(uid__in=uids)
                    .values_list("pk", flat=True)
                )
        result = people if result is None else result & people
        if not result:
            return set()
    return result or set()


def _group_actions() -> list[tuple[int, str]]:
    """(item, group DN) of every "add to group" action: configuration, a few hundred rows."""
    return [
        (item_id, target)
        for item_id, target in ProvisioningAction.objects.filter(
            kind=ActionKind.ADD_TO_GROUP
        ).values_list("item_id", "target")
        if target and "{" not in target
    ]


def _known_groups() -> set[str]:
    known = {dn_key(target) for _item, target in _group_actions()}
    known |= set(ManualMembership.objects.values_list("group_dn", flat=True).distinct())
    known |= set(GroupNesting.objects.values_list("child_dn", flat=True))
    return {dn_key(g) for g in known}


def exceptions_to_recertify(*, within_days: int = 30, today=None):
    """Approved exceptions that expire within ``within_days`` and have no renewal asked for
    or approved: what a recertification campaign (or the exceptions page) puts before
    IT administration and data protection. A queryset, for the recertification's use."""
    today = today or timezone.localdate()
    return (
        SodException.objects.filter(
            state=SodException.State.APPROVED,
            valid_until__gte=today,
            valid_until__lte=today + datetime.timedelta(days=within_days),
        )
        .exclude(renewals__state__in=[SodException.State.REQUESTED, SodException.State.APPROVED])
        .select_related("rule", "holder__user")
        .order_by("valid_until", "id")
    )
