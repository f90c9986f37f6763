"""Reconciliation: compare entitlements with the directory's actual group memberships.

Managed groups are those some provisioning job added people to. For each, the
expected members are the holders of active entitlements whose grant added them;
drift is reported both ways, and a missing membership can be repaired by a job.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from provisioning.backends import get_backend
from provisioning.backends.errors import DirectoryError
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import DriftFinding, ProvisioningJob, SyncRun


def reconcile() -> SyncRun:
    backend = get_backend()
    run = SyncRun.objects.create(kind=SyncRun.Kind.RECONCILE)
    grants = ProvisioningJob.objects.filter(
        direction=Direction.GRANT, kind=ActionKind.ADD_TO_GROUP, state=JobState.SUCCEEDED
    ).select_related("request__entitlement")
    managed: set[str] = set()
    expected: dict[str, dict[str, object]] = defaultdict(dict)  # group → uid → entitlement
    for job in grants:
        group = job.target_dn.lower()
        managed.add(group)
        entitlement = getattr(job.request, "entitlement", None)
        if entitlement is not None and entitlement.state == EntitlementState.ACTIVE:
            expected[group][job.user_uid] = entitlement
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
        service_dns = {backend.config.bind_dn.lower()}
        for dn in sorted(actual - set(wanted) - service_dns):
            findings.append(
                DriftFinding(run=run, kind=DriftFinding.Kind.UNEXPECTED, group_dn=group, member=dn)
            )
    DriftFinding.objects.bulk_create(findings)
    run.counts = {
        "groups": len(managed),
        "missing": sum(f.kind == DriftFinding.Kind.MISSING for f in findings),
        "unexpected": sum(f.kind == DriftFinding.Kind.UNEXPECTED for f in findings),
    }
    run.report = "\n".join(lines)
    run.finished_at = timezone.now()
    run.succeeded = True
    run.save()
    if findings:
        from provisioning.sync import notify_it_admins

        with translation.override(settings.LANGUAGE_CODE):
            subject = _("Reconciliation: %(missing)s missing, %(unexpected)s without a grant") % {
                "missing": run.counts["missing"],
                "unexpected": run.counts["unexpected"],
            }
            body = "\n".join(
                f"{f.get_kind_display()}: {f.member} in {f.group_dn}" for f in findings
            )
        notify_it_admins(subject, body)
    return run


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
        job.add_log("repair after reconciliation")
        job.save()
        finding.repaired_by_job = job
        finding.save(update_fields=["repaired_by_job"])
        _enqueue_after_commit([job.pk])
    return job
