"""Reconciliation: compare entitlements with the directory's actual group memberships.

Managed groups are those some provisioning job added people to. For each, the
expected members are the holders of active entitlements whose grant added them;
drift is reported both ways, and a missing membership can be repaired by a job.
A member found without any grant, and with no portal job on the way, is remembered
as given by hand (``ManualMembership``): revoking an entitlement to the same group
then leaves that member in it. ``holders_report`` lists who holds what, and why.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from provisioning import mails
from provisioning.backends import get_backend
from provisioning.backends.errors import DirectoryError
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.holders import IN_PROGRESS, dn_key
from provisioning.joblog import in_log_language
from provisioning.models import DriftFinding, ManualMembership, ProvisioningJob, SyncRun


def reconcile() -> SyncRun:
    backend = get_backend()
    run = SyncRun.objects.create(kind=SyncRun.Kind.RECONCILE)
    grants = ProvisioningJob.objects.filter(
        direction=Direction.GRANT, kind=ActionKind.ADD_TO_GROUP, state=JobState.SUCCEEDED
    ).select_related("request__entitlement")
    managed: set[str] = set()
    expected: dict[str, dict[str, object]] = defaultdict(dict)  # group → uid → entitlement
    for job in grants:
        group = dn_key(job.target_dn)
        managed.add(group)
        entitlement = getattr(job.request, "entitlement", None)
        if entitlement is not None and entitlement.state == EntitlementState.ACTIVE:
            expected[group].setdefault(job.user_uid, entitlement)
    on_the_way = _portal_changes_on_the_way()
    findings: list[DriftFinding] = []
    lines: list[str] = []
    user_dns: dict[str, str | None] = {}

    def dn_of(uid: str) -> str | None:
        if uid not in user_dns:
            user = backend.find_user(uid)
            user_dns[uid] = user.dn.lower() if user else None
        return user_dns[uid]

    for group in sorted(managed):
        try:
            actual = backend.group_members(group)
        except DirectoryError as exc:
            lines.append(f"{group}: {exc.message}")
            continue
        wanted = {dn_of(uid): (uid, ent) for uid, ent in expected[group].items()}
        for dn, (uid, entitlement) in wanted.items():
            if dn is None or dn not in actual:
                findings.append(
                    DriftFinding(
                        run=run,
                        kind=DriftFinding.Kind.MISSING,
                        group_dn=group,
                        member=uid,
                        entitlement=entitlement,
                    )
                )
        service_dns = {dn_key(backend.config.bind_dn)}
        without_grant = {dn_key(dn) for dn in actual} - {dn_key(dn) for dn in wanted if dn}
        without_grant -= service_dns
        for dn in sorted(without_grant):
            findings.append(
                DriftFinding(run=run, kind=DriftFinding.Kind.UNEXPECTED, group_dn=group, member=dn)
            )
        busy = {dn_key(dn) for uid in on_the_way[group] if (dn := dn_of(uid))}
        _remember_by_hand(group, without_grant - busy, {dn_key(dn) for dn in actual})
    DriftFinding.objects.bulk_create(findings)
    shared = holders_report(shared_only=True)
    if shared:
        lines += ["Memberships held more than once (removed only when the last holder ends):"]
        lines += shared
    run.counts = {
        "groups": len(managed),
        "missing": sum(f.kind == DriftFinding.Kind.MISSING for f in findings),
        "unexpected": sum(f.kind == DriftFinding.Kind.UNEXPECTED for f in findings),
        "shared": sum(line.startswith("  ") for line in shared),
    }
    run.report = "\n".join(lines)
    run.finished_at = timezone.now()
    run.succeeded = True
    run.save()
    if findings:
        mails.queue_run_report(run)
    return run


def _portal_changes_on_the_way() -> dict[str, set[str]]:
    """group → uids the portal is still changing (a grant on its way, a revocation not
    done): their membership is neither given by hand nor settled."""
    busy: dict[str, set[str]] = defaultdict(set)
    jobs = ProvisioningJob.objects.filter(kind__in=[ActionKind.ADD_TO_GROUP]).filter(
        Q(state__in=[JobState.PENDING, JobState.RUNNING, JobState.RETRYING, JobState.FAILED])
        | Q(request__state__in=IN_PROGRESS)
        | Q(entitlement__state=EntitlementState.REVOKING)
        | Q(request__entitlement__state=EntitlementState.REVOKING)
    )
    revokes = ProvisioningJob.objects.filter(
        kind=ActionKind.REMOVE_FROM_GROUP, direction=Direction.REVOKE
    ).exclude(state=JobState.SUCCEEDED)
    for target, uid in [
        *jobs.values_list("target_dn", "user_uid"),
        *revokes.values_list("target_dn", "user_uid"),
    ]:
        busy[dn_key(target)].add(uid)
    return busy


def _remember_by_hand(group: str, by_hand: set[str], present: set[str]) -> None:
    """Record members of ``group`` given by hand; forget those no longer in it."""
    now = timezone.now()
    ManualMembership.objects.filter(group_dn=group).exclude(member_dn__in=present).delete()
    known = set(
        ManualMembership.objects.filter(group_dn=group, member_dn__in=by_hand).values_list(
            "member_dn", flat=True
        )
    )
    ManualMembership.objects.filter(group_dn=group, member_dn__in=known).update(last_seen=now)
    ManualMembership.objects.bulk_create(
        [
            ManualMembership(group_dn=group, member_dn=dn, member_uid=_uid_of(dn))
            for dn in sorted(by_hand - known)
        ],
        ignore_conflicts=True,  # a concurrent reconciliation recorded it first
    )


def _uid_of(dn: str) -> str:
    """The uid or sAMAccountName when the DN is built from it (uid=..., cn=... for AD)."""
    first = dn.split(",", 1)[0]
    name, _sep, value = first.partition("=")
    return value[:200] if name in ("uid", "samaccountname") else ""


def holders_report(*, shared_only: bool = False) -> list[str]:
    """Every managed membership with who holds it and through which entitlement
    (``shared_only``: those held more than once), grouped by group.

    Reads the database only: active entitlements whose grant added the member, and the
    memberships given by hand that reconciliation found. Shared ones say how many.
    """
    from provisioning.holders import Holder

    held: dict[str, dict[str, list[Holder]]] = defaultdict(lambda: defaultdict(list))
    grants = (
        ProvisioningJob.objects.filter(
            direction=Direction.GRANT,
            kind=ActionKind.ADD_TO_GROUP,
            request__entitlement__state=EntitlementState.ACTIVE,
        )
        .select_related("request__entitlement")
        .order_by("request_id")
    )
    for job in grants:
        holders = held[dn_key(job.target_dn)][job.user_uid.lower()]
        if all(h.request_id != job.request_id for h in holders):
            entitlement = job.request.entitlement
            holders.append(
                Holder(entitlement.pk, job.request_id, job.request.item_name, job.user_uid)
            )
    for manual in ManualMembership.objects.all():
        member = manual.member_uid.lower() or manual.member_dn
        held[manual.group_dn][member].append(Holder(None, None, "", member, by_hand=True))
    lines = []
    for group in sorted(held):
        members = [
            (member, holders)
            for member, holders in sorted(held[group].items())
            if len(holders) > 1 or not shared_only
        ]
        if members:
            lines.append(group)
        for member, holders in members:
            shared = f" [{len(holders)} holders]" if len(holders) > 1 else ""
            reasons = "; ".join(h.describe() for h in holders)
            lines.append(f"  {member}{shared}: {reasons}")
    return lines


def repair_missing(*, finding_id: int) -> ProvisioningJob:
    """Put a missing membership back through a normal provisioning job."""
    from provisioning.services import _enqueue_after_commit

    with transaction.atomic():
        finding = (
            DriftFinding.objects.select_for_update(of=("self",))
            .select_related("entitlement")
            .get(pk=finding_id, kind=DriftFinding.Kind.MISSING)
        )
        if finding.repaired_by_job_id:
            return finding.repaired_by_job
        entitlement = finding.entitlement
        job = ProvisioningJob.objects.create(
            request_id=entitlement.request_id,
            entitlement=entitlement,
            direction=Direction.GRANT,
            position=0,
            kind=ActionKind.ADD_TO_GROUP,
            user_uid=finding.member,
            target_dn=finding.group_dn,
            dialect=get_backend().dialect,
        )
        with in_log_language():
            job.add_log(gettext("repair after reconciliation"))
        job.save()
        finding.repaired_by_job = job
        finding.save(update_fields=["repaired_by_job"])
        _enqueue_after_commit([job.pk])
    return job
