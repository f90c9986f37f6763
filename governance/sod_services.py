"""Writes for segregation of duties: rules and their versions, the holder scan, the
directory's group nesting, and approved exceptions."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from governance import sod
from governance.models import (
    GroupNesting,
    SodException,
    SodFinding,
    SodMatch,
    SodRule,
    SodRuleMember,
    SodRuleVersion,
    SodSide,
)
from itportal import workdays
from itportal.exceptions import ActionConflict
from itportal.locks import advisory_lock
from itportal.roles import DATA_PROTECTION, IT_ADMIN, is_data_protection_officer, is_it_admin
from provisioning.holders import dn_key

SCAN_CHUNK = 500
EXCEPTION_MAX_DAYS = 366
TEXT_MAX = 2000


# --- rules -------------------------------------------------------------------------------


def rule_content(rule: SodRule) -> dict:
    """What a version of the rule says, as kept in ``SodRuleVersion``."""
    members = {SodSide.FIRST: [], SodSide.SECOND: []}
    for member in rule.members.select_related("item").order_by("side", "id"):
        members[member.side].append(
            {"item": member.item_id, "name": member.item.name}
            if member.item_id
            else {"group": dn_key(member.group_dn)}
        )
    return {
        "name": rule.name,
        "reason": rule.reason,
        "requirement": rule.requirement,
        "is_active": rule.is_active,
        "first_match": rule.first_match,
        "second_match": rule.second_match,
        "first": members[SodSide.FIRST],
        "second": members[SodSide.SECOND],
    }


@transaction.atomic
def sod_rule_record_version(*, rule_id: int, user=None) -> SodRule:
    """Keep the rule's content as a new version when it changed since the last one, and
    rescan its holders after commit. Called after every save (service, admin)."""
    rule = SodRule.objects.select_for_update().get(pk=rule_id)
    content = rule_content(rule)
    latest = rule.versions.order_by("-version").first()
    if latest is not None and latest.content == content:
        return rule
    rule.version = latest.version + 1 if latest is not None else rule.version
    rule.changed_at = timezone.now()
    rule.save(update_fields=["version", "changed_at"])
    SodRuleVersion.objects.create(
        rule=rule,
        version=rule.version,
        content=content,
        changed_by=user if user is not None and user.is_authenticated else None,
    )
    _scan_after_commit()
    return rule


def _member(side: str, value) -> SodRuleMember:
    if isinstance(value, str):
        return SodRuleMember(side=side, group_dn=dn_key(value))
    return SodRuleMember(side=side, item=value)


@transaction.atomic
def sod_rule_create(
    *,
    name: str,
    reason: str,
    first: list,
    second: list,
    first_match: str = SodMatch.ANY,
    second_match: str = SodMatch.ANY,
    user=None,
    **fields,
) -> SodRule:
    """A rule over two sets: catalogue items, or directory group DNs (strings)."""
    if not first or not second:
        raise ValidationError(_("Each side of a rule needs at least one service or group."))
    rule = SodRule(
        name=name, reason=reason, first_match=first_match, second_match=second_match, **fields
    )
    rule.full_clean()
    rule.save()
    members = [_member(SodSide.FIRST, v) for v in first] + [
        _member(SodSide.SECOND, v) for v in second
    ]
    keys = [(m.item_id, m.group_dn) for m in members]
    if len(set(keys)) != len(keys):
        raise ValidationError(_("A service or group can be on one side of a rule only, once."))
    for member in members:
        member.rule = rule
    SodRuleMember.objects.bulk_create(members)
    return sod_rule_record_version(rule_id=rule.pk, user=user)


# --- the holder scan -----------------------------------------------------------------------


def _scan_after_commit(holder_ids=None) -> None:
    from governance import tasks

    ids = sorted(holder_ids) if holder_ids is not None else None
    transaction.on_commit(lambda: tasks.scan_segregation_of_duties.delay(holder_ids=ids))


def values_fields() -> list[str]:
    return ["rule_version", "overlap_from", "overlap_until", "evidence"]


def sod_scan(*, holder_ids=None, now=None) -> dict[str, int]:
    """Find who holds both sides of an active rule at overlapping times; keep one open
    finding per rule and person, close those no longer found. Idempotent.

    ``holder_ids``: rescan these people only (after a grant). Reads the candidates of each
    rule (people holding something of both sides) and evaluates them in chunks.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    rules = sod.active_rules()
    context = sod.load_context(rules)
    only = set(holder_ids) if holder_ids is not None else None
    found: dict[tuple[int, int], sod.Hit] = {}
    for rule in rules:
        people = sod.candidates(rule, context)
        if only is not None:
            people &= only
        single = sod.Context(
            rules=[rule], members=context.members, parents=context.parents, _paths=context._paths
        )
        ordered = sorted(people)
        for start in range(0, len(ordered), SCAN_CHUNK):
            chunk = ordered[start : start + SCAN_CHUNK]
            holdings = sod.holdings_of(chunk, with_requests=False, today=today)
            for person in chunk:
                for hit in sod.evaluate(holdings.get(person, []), single):
                    found[(rule.pk, person)] = hit
    counts = {"found": 0, "new": 0, "resolved": 0}
    with transaction.atomic(), advisory_lock("governance.sod_scan"):
        open_rows = SodFinding.objects.select_for_update().filter(resolved_at__isnull=True)
        if only is not None:
            open_rows = open_rows.filter(holder__in=only)
        existing = {(f.rule_id, f.holder_id): f for f in open_rows}
        new, changed, seen = [], [], []
        for (rule_id, holder_id), hit in found.items():
            row = existing.pop((rule_id, holder_id), None)
            values = {
                "rule_version": hit.rule.version,
                "overlap_from": hit.window.start,
                "overlap_until": hit.window.end,
                "evidence": hit.evidence(),
            }
            if row is None:
                new.append(
                    SodFinding(rule_id=rule_id, holder_id=holder_id, last_seen_at=now, **values)
                )
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.last_seen_at = now
                changed.append(row)
            else:
                seen.append(row.pk)
        # Writes in bulk: a rescan of thousands of unchanged findings is one UPDATE.
        SodFinding.objects.bulk_create(new, batch_size=1000)
        SodFinding.objects.bulk_update(changed, [*values_fields(), "last_seen_at"], batch_size=500)
        for start in range(0, len(seen), 10000):
            SodFinding.objects.filter(pk__in=seen[start : start + 10000]).update(last_seen_at=now)
        SodFinding.objects.filter(pk__in=[f.pk for f in existing.values()]).update(resolved_at=now)
        counts.update(found=len(found), new=len(new), resolved=len(existing))
    return counts


# --- nested groups -------------------------------------------------------------------------


def group_nesting_refresh(*, backend=None) -> dict[str, int]:
    """Read which directory groups are members of others (below the group base), and keep
    that as ``GroupNesting``: the edges read now stay, the others go. Idempotent."""
    from django.conf import settings

    from provisioning.backends import get_backend

    backend = backend or get_backend()
    base = backend.config.group_base or getattr(settings, "DIRECTORY_GROUP_BASE", "")
    groups = {dn_key(g["dn"]) for g in backend.list_groups(base)}
    edges = set()
    for group in sorted(groups):
        for member in backend.group_members(group):
            child = dn_key(member)
            if child in groups and child != group:
                edges.add((group, child))
    now = timezone.now()
    with transaction.atomic(), advisory_lock("governance.group_nesting"):
        known = set(GroupNesting.objects.values_list("parent_dn", "child_dn"))
        GroupNesting.objects.bulk_create(
            [GroupNesting(parent_dn=p, child_dn=c, seen_at=now) for p, c in edges - known]
        )
        gone = known - edges
        for parent, child in gone:
            GroupNesting.objects.filter(parent_dn=parent, child_dn=child).delete()
        GroupNesting.objects.filter(
            parent_dn__in={p for p, _c in edges}, child_dn__in={c for _p, c in edges}
        ).update(seen_at=now)
    return {"groups": len(groups), "nested": len(edges), "added": len(edges - known),
            "removed": len(gone)}  # fmt: skip


# --- exceptions ----------------------------------------------------------------------------


def may_handle_exceptions(user) -> bool:
    return user.is_authenticated and (is_it_admin(user) or is_data_protection_officer(user))


def _clean_text(value, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: message})
    if len(value) > TEXT_MAX or "\x00" in value:
        raise ValidationError(
            {field: _("At most %(max)s characters, no control characters.") % {"max": TEXT_MAX}}
        )
    return value


@transaction.atomic
def sod_exception_request(
    *,
    rule_id: int,
    holder,
    user,
    justification: str,
    compensating_control: str,
    valid_until: datetime.date,
    renews: SodException | None = None,
) -> SodException:
    """Ask for an exception: this person may hold both sides of the rule until
    ``valid_until`` (at most a year ahead). Another person decides it."""
    if not may_handle_exceptions(user):
        raise PermissionDenied(_("Only IT administration and data protection handle exceptions."))
    rule = SodRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise ValidationError({"rule": _("This rule does not exist.")})
    justification = _clean_text(
        justification, "justification", _("Please say why the exception is needed.")
    )
    compensating_control = _clean_text(
        compensating_control,
        "compensating_control",
        _("Please name the control that makes up for the missing separation."),
    )
    today = timezone.localdate()
    if not (today <= valid_until <= today + datetime.timedelta(days=EXCEPTION_MAX_DAYS)):
        raise ValidationError(
            {"valid_until": _("Choose a date from today to one year ahead: exceptions expire.")}
        )
    return SodException.objects.create(
        rule=rule,
        holder=holder,
        justification=justification,
        compensating_control=compensating_control,
        valid_until=valid_until,
        requested_by=user,
        rule_version=rule.version,
        renews=renews,
    )


def barred_from_deciding(exception: SodException, user) -> str | None:
    """Why ``user`` may not decide ``exception``, or None. Nobody decides an exception that
    concerns themselves, nor one they asked for (four-eyes)."""
    if not may_handle_exceptions(user):
        return _("Only IT administration and data protection decide exceptions.")
    if exception.holder.user_id == user.pk:
        return _("Nobody decides an exception that concerns themselves.")
    if exception.requested_by_id == user.pk:
        return _("Whoever asked for an exception does not approve it too (four-eyes principle).")
    return None


@transaction.atomic
def sod_exception_decide(
    *, exception_id: int, user, approve: bool, comment: str = ""
) -> SodException:
    exception = (
        SodException.objects.select_for_update(of=("self",))
        .select_related("holder", "rule")
        .filter(pk=exception_id)
        .first()
    )
    if exception is None:
        raise ActionConflict(_("This exception does not exist."))
    reason = barred_from_deciding(exception, user)
    if reason:
        raise PermissionDenied(reason)
    if exception.state != SodException.State.REQUESTED:
        raise ActionConflict(_("This exception has been decided already."))
    comment = (comment or "").strip()
    if not approve and not comment:
        raise ValidationError({"comment": _("Please give a reason for the rejection.")})
    if len(comment) > 500 or "\x00" in comment:
        raise ValidationError({"comment": _("At most 500 characters, no control characters.")})
    if approve and exception.valid_until < timezone.localdate():
        raise ActionConflict(_("This exception expired before it was decided."))
    exception.state = SodException.State.APPROVED if approve else SodException.State.REJECTED
    exception.decided_by = user
    exception.decided_at = timezone.now()
    exception.decision_comment = comment
    exception.save()
    return exception


@transaction.atomic
def sod_exception_revoke(*, exception_id: int, user, comment: str) -> SodException:
    if not may_handle_exceptions(user):
        raise PermissionDenied(_("Only IT administration and data protection handle exceptions."))
    exception = SodException.objects.select_for_update().filter(pk=exception_id).first()
    if exception is None or exception.state != SodException.State.APPROVED:
        raise ActionConflict(_("Only an approved exception can be revoked."))
    comment = _clean_text(comment, "comment", _("Please say why the exception ends."))[:500]
    exception.state = SodException.State.REVOKED
    exception.decision_comment = comment
    exception.save(update_fields=["state", "decision_comment"])
    return exception


@transaction.atomic
def sod_exception_renew(*, exception_id: int, user) -> SodException:
    """Re-certify an exception at expiry: ask again with the same justification and control
    for as long again (at most a year); another person decides, the old one runs out."""
    old = SodException.objects.select_for_update().filter(pk=exception_id).first()
    if old is None or old.state != SodException.State.APPROVED:
        raise ActionConflict(_("Only an approved exception can be renewed."))
    if old.renewals.filter(
        state__in=[SodException.State.REQUESTED, SodException.State.APPROVED]
    ).exists():
        raise ActionConflict(_("A renewal of this exception exists already."))
    today = timezone.localdate()
    length = max((old.valid_until - timezone.localdate(old.requested_at)).days, 1)
    start = max(old.valid_until, today)
    valid_until = min(
        start + datetime.timedelta(days=length), today + datetime.timedelta(days=EXCEPTION_MAX_DAYS)
    )
    return sod_exception_request(
        rule_id=old.rule_id,
        holder=old.holder,
        user=user,
        justification=old.justification,
        compensating_control=old.compensating_control,
        valid_until=valid_until,
        renews=old,
    )


# --- re-certification at expiry ------------------------------------------------------------


def exception_reviewers(exception: SodException) -> list:
    """Who is reminded before ``exception`` expires: whoever approved it, while they still
    handle exceptions; else IT administration and data protection. Never the person it
    concerns (they cannot decide its renewal anyway)."""
    holder_user = exception.holder.user_id
    approver = exception.decided_by
    if (
        approver is not None
        and approver.is_active
        and approver.pk != holder_user
        and may_handle_exceptions(approver)
    ):
        return [approver]
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[IT_ADMIN, DATA_PROTECTION])
        .exclude(pk=holder_user)
        .distinct()
        .order_by("pk")
    )


def _reminders_due(valid_until: datetime.date, today: datetime.date) -> int:
    """How many of the reminders before expiry are due by ``today`` (0 to their number)."""
    left = workdays.working_days_between(today, valid_until)
    return sum(1 for days in settings.SOD_EXCEPTION_REMINDER_WORKING_DAYS if left <= days)


def sod_exceptions_remind_and_lapse(*, today: datetime.date | None = None) -> dict[str, int]:
    """Daily. Exceptions past their last day lapse (the conflict counts again: the report,
    the order and approval checks see no exception). On working days, whoever approved an
    exception is reminded ``SOD_EXCEPTION_REMINDER_WORKING_DAYS`` before it expires, once
    per exception and reminder, unless a renewal is asked for or approved already.
    Idempotent: what was sent is counted on the exception in the same transaction as the
    mail (outbox)."""
    from governance import mails

    today = today or timezone.localdate()
    counts = {"reminded": 0, "lapsed": 0}
    counts["lapsed"] = SodException.objects.filter(
        state=SodException.State.APPROVED, valid_until__lt=today
    ).update(state=SodException.State.EXPIRED)
    if not workdays.is_working_day(today):
        return counts
    # The last calendar day with at most the first reminder's working days left (a weekend
    # after its last working day still counts as that many).
    beyond = workdays.add_working_days(today, settings.SOD_EXCEPTION_REMINDER_WORKING_DAYS[0] + 1)
    due = sod.exceptions_to_recertify(within_days=(beyond - today).days - 1, today=today)
    for exception_id, valid_until, sent in due.values_list("pk", "valid_until", "reminders_sent"):
        wanted = _reminders_due(valid_until, today)
        if wanted <= sent:
            continue
        with transaction.atomic():
            exception = (
                SodException.objects.select_for_update(of=("self",))
                .select_related("holder", "decided_by")
                .get(pk=exception_id)
            )
            if exception.reminders_sent >= wanted or exception.state != exception.State.APPROVED:
                continue  # another run got there first, or it was revoked meanwhile
            exception.reminders_sent = wanted
            exception.save(update_fields=["reminders_sent"])
            mails.queue_sod_exception_expiring(exception, exception_reviewers(exception))
        counts["reminded"] += 1
    return counts
