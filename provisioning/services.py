"""Writes of provisioning: jobs from approved requests, running them, entitlements, revocation.

A job's directory work runs outside any database transaction; the job row is
locked only to change its state. Directory operations read first and write the
difference, so a job that runs twice (a worker killed after writing, a message
delivered again) leaves the directory as running once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from catalogue.choices import FulfilmentKind
from itportal.exceptions import ActionConflict
from provisioning import templating
from provisioning.backends.errors import DirectoryError, PermanentDirectoryError
from provisioning.choices import REVERSE, Direction, EntitlementState, JobState
from provisioning.executor import execute
from provisioning.models import Entitlement, ProvisioningAction, ProvisioningJob
from provisioning.signals import directory_error, entitlement_revoked
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest

logger = logging.getLogger(__name__)


def directory_configured() -> bool:
    return bool(settings.DIRECTORY.get("url"))


def claims(service_request) -> bool:
    """Registered with requests_app.fulfilment: automated items with actions, directory set up."""
    return (
        directory_configured()
        and service_request.item_snapshot.get("fulfilment_kind") == FulfilmentKind.AUTOMATED
        and ProvisioningAction.objects.filter(item_id=service_request.item_id).exists()
    )


def _siblings(job: ProvisioningJob):
    """The jobs that run together with ``job``, one after another in position order."""
    if job.direction == Direction.GRANT and job.entitlement_id is None:
        return ProvisioningJob.objects.filter(request_id=job.request_id, direction=Direction.GRANT)
    return ProvisioningJob.objects.filter(
        entitlement_id=job.entitlement_id, direction=job.direction
    )


def _first_pending(jobs) -> list[int]:
    first = jobs.filter(state=JobState.PENDING).order_by("position", "pk").first()
    return [first.pk] if first is not None else []


def _enqueue_after_commit(job_ids: list[int]) -> None:
    from provisioning.tasks import run_provisioning_job

    def enqueue():
        for job_id in job_ids:
            run_provisioning_job.delay(job_id)

    transaction.on_commit(enqueue)


# --- from approval to jobs -------------------------------------------------------------


def _job_from_action(
    action: ProvisioningAction, service_request, context, position
) -> ProvisioningJob:
    try:
        target = templating.render_dn(action.target, context) if action.target.strip() else ""
        attributes = {
            name: templating.render(template, context)
            for name, template in templating.parse_attribute_lines(action.attributes).items()
        }
    except ValueError as exc:
        raise PermanentDirectoryError(str(exc)) from exc
    return ProvisioningJob(
        request=service_request,
        direction=Direction.GRANT,
        position=position,
        kind=action.kind,
        user_uid=service_request.beneficiary.personnel_number,
        target_dn=target,
        attributes=attributes,
        dialect=settings.DIRECTORY.get("dialect", "openldap"),
    )


def provision_request(*, request_id: int) -> list[int]:
    """Create (or re-arm) the grant jobs of an approved automated request and enqueue them."""
    with transaction.atomic():
        service_request = (
            ServiceRequest.objects.select_for_update(of=("self",))
            .select_related("beneficiary__user", "beneficiary__department")
            .get(pk=request_id)
        )
        if service_request.state != RequestState.APPROVED or not claims(service_request):
            return []
        jobs = list(service_request.provisioning_jobs.filter(direction=Direction.GRANT))
        if jobs:  # reopened after a failure: run the failed ones again
            for job in jobs:
                if job.state == JobState.FAILED:
                    job.retry(user=None)
                    job.save()
        else:
            context = templating.context_for(service_request)
            actions = ProvisioningAction.objects.filter(item_id=service_request.item_id)
            try:
                jobs = [
                    _job_from_action(action, service_request, context, position)
                    for position, action in enumerate(actions, start=1)
                ]
            except PermanentDirectoryError as exc:
                request_services.request_start_automation(request_id=request_id)
                request_services.request_finish_automation(
                    request_id=request_id, succeeded=False, note=exc.message
                )
                return []
            ProvisioningJob.objects.bulk_create(jobs)
        request_services.request_start_automation(
            request_id=request_id, comment=_("Directory provisioning started.")
        )
        # Actions depend on each other (create the account, then set attributes): one at a
        # time, each job's success enqueues the next.
        grants = service_request.provisioning_jobs.filter(
            direction=Direction.GRANT, entitlement=None
        )
        job_ids = _first_pending(grants)
        if not job_ids and not grants.exclude(state=JobState.SUCCEEDED).exists():
            # Everything was done already (an admin marked the failed job done by hand).
            request_services.request_finish_automation(
                request_id=request_id,
                succeeded=True,
                note=_("Directory provisioning done (%(count)s changes).")
                % {"count": grants.count()},
                done_by_hand=grants.filter(finished_by__isnull=False).exists(),
            )
        _enqueue_after_commit(job_ids)
    return job_ids


# --- running one job ----------------------------------------------------------------------


@dataclass
class RetryLater:
    countdown: float


def retry_countdown(attempt: int) -> float:
    """Exponential backoff with jitter, capped."""
    base = settings.PROVISIONING_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    capped = min(base, settings.PROVISIONING_RETRY_MAX_SECONDS)
    return capped * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


def job_run(*, job_id: int) -> RetryLater | None:
    """Run one job once; returns RetryLater when a transient error should be retried."""
    with transaction.atomic():
        job = ProvisioningJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.state in (JobState.SUCCEEDED, JobState.FAILED):
            return None  # another worker has it, or it is settled: nothing twice
        earlier = _siblings(job).filter(position__lt=job.position).exclude(state=JobState.SUCCEEDED)
        if earlier.exists():
            return None  # out of order (a sweeper re-enqueue): the earlier job's end enqueues us
        job.start()
        job.save()
    try:
        note = execute(job)
    except DirectoryError as exc:
        directory_error.send(sender=ProvisioningJob, job=job, error=exc)
        with transaction.atomic():
            job = ProvisioningJob.objects.select_for_update().get(pk=job_id)
            if job.state != JobState.RUNNING:
                return None
            if exc.transient and job.attempts < settings.PROVISIONING_MAX_ATTEMPTS:
                job.defer(error=exc.message)
                job.save()
                return RetryLater(retry_countdown(job.attempts))
            job.fail(error=exc.message)
            job.save()
            _settle(job)
        return None
    with transaction.atomic():
        job = ProvisioningJob.objects.select_for_update().get(pk=job_id)
        if job.state == JobState.RUNNING:
            job.succeed(note=note)
            job.save()
            _settle(job)
    return None


def _settle(job: ProvisioningJob) -> None:
    """After a job ended: finish the request or the revocation when all its jobs have."""
    siblings = _siblings(job)
    grant = job.direction == Direction.GRANT and job.entitlement_id is None
    states = list(siblings.values_list("state", flat=True))
    if JobState.FAILED in states:
        if grant:
            request_services.request_finish_automation(
                request_id=job.request_id,
                succeeded=False,
                note=_("Directory provisioning failed: %(error)s") % {"error": job.last_error},
            )
        return
    if job.state == JobState.SUCCEEDED:
        _enqueue_after_commit(_first_pending(siblings))
    if all(state == JobState.SUCCEEDED for state in states):
        if grant:
            request_services.request_finish_automation(
                request_id=job.request_id,
                succeeded=True,
                note=_("Directory provisioning done (%(count)s changes).") % {"count": len(states)},
                # A job marked done by hand is manual work: not "fulfilled automatically".
                done_by_hand=siblings.filter(finished_by__isnull=False).exists(),
            )
        elif job.direction == Direction.REVOKE:
            revoked = Entitlement.objects.filter(
                pk=job.entitlement_id, state=EntitlementState.REVOKING
            ).update(state=EntitlementState.REVOKED, revoked_at=timezone.now())
            if revoked:
                entitlement_revoked.send(sender=Entitlement, entitlement_id=job.entitlement_id)


# --- IT admin actions on jobs ----------------------------------------------------------------


def job_retry(*, job_id: int, user) -> ProvisioningJob:
    with transaction.atomic():
        job = ProvisioningJob.objects.select_for_update().get(pk=job_id)
        if job.state != JobState.FAILED:
            raise ActionConflict(_("Only failed jobs can be retried."))
        job.retry(user=user)
        job.save()
        if job.direction == Direction.GRANT:
            service_request = ServiceRequest.objects.get(pk=job.request_id)
            if service_request.state == RequestState.FAILED:
                request_services.request_reopen(request_id=service_request.pk, user=user)
                return job  # reopening re-arms and enqueues the request's failed jobs
        _enqueue_after_commit([job.pk])
    return job


def job_mark_done(*, job_id: int, user, note: str) -> ProvisioningJob:
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Please say what was done by hand.")})
    with transaction.atomic():
        job = ProvisioningJob.objects.select_for_update().get(pk=job_id)
        if job.state in (JobState.SUCCEEDED, JobState.RUNNING):
            raise ActionConflict(_("This job is running or done already."))
        job.mark_done(user=user, note=note)
        job.save()
        _settle(job)
        if job.direction == Direction.GRANT and job.entitlement_id is None:
            service_request = ServiceRequest.objects.get(pk=job.request_id)
            if service_request.state == RequestState.FAILED:
                # Back to approved; provisioning then finds every job done and fulfils it.
                request_services.request_reopen(
                    request_id=service_request.pk, user=user, comment=note
                )
    return job


def jobs_sweep(*, older_than_seconds: int | None = None) -> int:
    """Re-enqueue jobs stuck before finishing (a lost message, a worker gone for good)."""
    from provisioning.tasks import run_provisioning_job

    age = older_than_seconds or settings.PROVISIONING_STUCK_AFTER_SECONDS
    cutoff = timezone.now() - timezone.timedelta(seconds=age)
    stuck = list(
        ProvisioningJob.objects.filter(
            state__in=[JobState.PENDING, JobState.RUNNING, JobState.RETRYING],
            updated_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )
    for job_id in stuck:
        run_provisioning_job.delay(job_id)
    return len(stuck)


# --- entitlements -----------------------------------------------------------------------------


def entitlement_grant(*, service_request) -> Entitlement:
    """Called inside the fulfilling transaction (requests_app's request_fulfilled signal)."""
    from datetime import date

    expires_on = None
    key = service_request.item_snapshot.get("valid_until_field") or ""
    value = (service_request.answers or {}).get(key) if key else None
    if value:
        try:
            expires_on = date.fromisoformat(value)
        except (TypeError, ValueError):
            expires_on = None
    entitlement, _created = Entitlement.objects.get_or_create(
        request=service_request,
        defaults={
            "holder_id": service_request.beneficiary_id,
            "item_id": service_request.item_id,
            "expires_on": expires_on,
        },
    )
    return entitlement


def entitlement_revoke(*, entitlement_id: int, user, reason: str) -> Entitlement:
    """Undo an entitlement: reverse directory actions as jobs, or mark it for manual removal."""
    reason = (reason or "").strip()
    with transaction.atomic():
        entitlement = (
            Entitlement.objects.select_for_update(of=("self",))
            .select_related("holder__user", "request")
            .get(pk=entitlement_id)
        )
        if user is not None and not may_revoke(entitlement, user):
            raise PermissionDenied(_("You may not revoke this entitlement."))
        if entitlement.state != EntitlementState.ACTIVE:
            raise ActionConflict(_("This entitlement is already being revoked or revoked."))
        grants = list(
            ProvisioningJob.objects.filter(
                request_id=entitlement.request_id, direction=Direction.GRANT
            ).order_by("-position")
        )
        revokes = [
            ProvisioningJob(
                request_id=entitlement.request_id,
                entitlement=entitlement,
                direction=Direction.REVOKE,
                position=index,
                kind=REVERSE[grant.kind],
                user_uid=grant.user_uid,
                target_dn=grant.target_dn,
                dialect=grant.dialect,
            )
            for index, grant in enumerate(grants, start=1)
            if grant.kind in REVERSE
        ]
        entitlement.revoke_reason = reason
        entitlement.revoked_by = user
        if revokes:
            ProvisioningJob.objects.bulk_create(revokes)
            entitlement.state = EntitlementState.REVOKING
            entitlement.save()
            _enqueue_after_commit(
                _first_pending(entitlement.jobs.filter(direction=Direction.REVOKE))
            )
        else:
            entitlement.state = EntitlementState.REVOKED
            entitlement.revoked_at = timezone.now()
            entitlement.save()
            entitlement_revoked.send(sender=Entitlement, entitlement_id=entitlement.pk)
    return entitlement


def may_revoke(entitlement: Entitlement, user) -> bool:
    from itportal.roles import is_it_admin

    holder = entitlement.holder
    return (
        is_it_admin(user)
        or holder.user_id == user.pk
        or (holder.manager is not None and holder.manager.user_id == user.pk)
    )
