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
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from catalogue.choices import FulfilmentKind
from catalogue.history import ACTIONS_CHANGED
from catalogue.models import CatalogueItem
from catalogue.services import row_errors
from itportal.exceptions import ActionConflict
from provisioning import batch, templating, wakes
from provisioning.backends.errors import DirectoryError, PermanentDirectoryError
from provisioning.choices import REVERSE, Direction, EntitlementState, JobState
from provisioning.executor import execute
from provisioning.models import Entitlement, ProvisioningAction, ProvisioningJob
from provisioning.signals import directory_error, entitlement_revoked, pipeline_swept
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.models import FulfilmentTask, ServiceRequest

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


def _first_pending(jobs) -> list[ProvisioningJob]:
    """The job of an ordered group that runs next; it is due from now on."""
    first = jobs.filter(state=JobState.PENDING).order_by("position", "pk").first()
    if first is None:
        return []
    if first.due_at is None:  # it waited for the job before it
        first.due_at = timezone.now()
        ProvisioningJob.objects.filter(pk=first.pk).update(due_at=first.due_at)
    return [first]


def _enqueue(job_ids: list[int], countdowns: dict[int, float] | None = None) -> None:
    """Wake a worker for each job (after its countdown, if any); never raises: the rows are
    committed, the sweeper enqueues whatever a broker outage kept from being sent."""
    from provisioning.tasks import run_provisioning_job

    for job_id in job_ids:
        try:
            countdown = (countdowns or {}).get(job_id)
            run_provisioning_job.apply_async((job_id,), countdown=countdown)
        except Exception:
            logger.warning(
                "could not enqueue provisioning job %s; the sweeper will", job_id, exc_info=True
            )
            return  # the broker is down: the others would only wait for it too


def _enqueue_after_commit(job_ids: list[int]) -> None:
    if job_ids:
        transaction.on_commit(lambda: _enqueue(job_ids), robust=True)


def jobs_wake(jobs: list[ProvisioningJob]) -> None:
    """Wake workers for committed jobs: a membership job whose group has a message waiting
    already is taken along by that message's worker (provisioning.wakes)."""
    _enqueue([job.pk for job in wakes.to_send(jobs)])


def _wake_after_commit(jobs: list[ProvisioningJob]) -> None:
    if jobs:
        transaction.on_commit(lambda: jobs_wake(jobs), robust=True)


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
            start = scheduled_start(service_request)
            if start is not None:
                # Needed from a later day: recorded now with the approval (the outbox), run
                # from that day on. The first job waits with no due time; the sweeper
                # releases it from not_before on, and the others follow it as always.
                first = min(jobs, key=lambda job: job.position)
                ProvisioningJob.objects.filter(pk=first.pk).update(not_before=start, due_at=None)
                request_services.request_start_automation(
                    request_id=request_id,
                    comment=_("Directory provisioning scheduled for %(date)s.")
                    % {"date": date_format(service_request.needed_from, "SHORT_DATE_FORMAT")},
                )
                return []
        request_services.request_start_automation(
            request_id=request_id, comment=_("Directory provisioning started.")
        )
        # Actions depend on each other (create the account, then set attributes): one at a
        # time, each job's success enqueues the next.
        grants = service_request.provisioning_jobs.filter(
            direction=Direction.GRANT, entitlement=None
        )
        first = _first_pending(grants)
        job_ids = [job.pk for job in first]
        if not job_ids and not grants.exclude(state=JobState.SUCCEEDED).exists():
            # Everything was done already (an admin marked the failed job done by hand).
            request_services.request_finish_automation(
                request_id=request_id,
                succeeded=True,
                note=_provisioning_done(grants.count()),
                done_by_hand=grants.filter(finished_by__isnull=False).exists(),
            )
        _wake_after_commit(first)
    return job_ids


def scheduled_start(service_request) -> datetime | None:
    """When a request needed from a later day may be provisioned: the start of that day in
    the portal's time zone; None when it may run now."""
    needed_from = service_request.needed_from
    if needed_from is None or needed_from <= timezone.localdate():
        return None
    return timezone.make_aware(datetime.combine(needed_from, time.min))


def release_scheduled(*, now: datetime | None = None) -> list[int]:
    """Scheduled first jobs whose day has come: due now, and enqueued after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        job_ids = list(
            ProvisioningJob.objects.filter(state=JobState.PENDING, due_at=None, not_before__lte=now)
            .select_for_update(skip_locked=True)
            .order_by("not_before")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        if job_ids:
            ProvisioningJob.objects.filter(pk__in=job_ids).update(due_at=now)
            _enqueue_after_commit(job_ids)
    return job_ids


def _provisioning_done(count: int) -> str:
    return ngettext(
        "Directory provisioning done (%(count)s change).",
        "Directory provisioning done (%(count)s changes).",
        count,
    ) % {"count": count}


# --- running one job ----------------------------------------------------------------------


@dataclass
class RetryLater:
    countdown: float


def retry_countdown(attempt: int) -> float:
    """Exponential backoff with jitter, capped."""
    base = settings.PROVISIONING_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    capped = min(base, settings.PROVISIONING_RETRY_MAX_SECONDS)
    return capped * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


IDLE = object()  # job_run's steps: nothing was run
COMPANY_TRIES = 5


def job_run(*, job_id: int, reclaim: bool = False, coalesce: bool = True) -> RetryLater | None:
    """Run one job once; returns RetryLater when a transient error should be retried.

    ``reclaim``: the caller's own earlier attempt may hold the job's lease (the database
    failed after it claimed the job), so a running job is taken over. ``coalesce``: a
    group-membership job takes the other due jobs on its group along (provisioning.batch);
    when it needs nothing itself, one of them runs in its place (its message may be the
    one its group's jobs wait for: provisioning.wakes).
    """
    peek = (
        ProvisioningJob.objects.filter(pk=job_id)
        .only("state", "lease_until", "kind", "target_dn", "direction", "entitlement_id")
        .first()
    )
    if peek is None:
        return None
    coalescing = coalesce and batch.eligible(peek)
    if coalescing:
        wakes.taken(peek)  # before the claim: a job committed from now on sends its own
    if _nothing_to_do(peek, reclaim=reclaim):
        result = IDLE
    else:
        result = _run(job_id, reclaim=reclaim, coalesce=coalesce)
    if result is not IDLE:
        return result
    if coalescing:
        _run_company(peek)
    return None


def _run_company(job: ProvisioningJob) -> None:
    """A due job of ``job``'s group runs in place of ``job``, which needs nothing any more.
    Ends when one ran (its batch took or woke the rest) or none is left that no worker
    holds; another worker taking the one found first makes it look again."""
    for _try in range(COMPANY_TRIES):
        other = batch.next_due(job)
        if other is None:
            return
        result = _run(other, reclaim=False, coalesce=True)
        if result is IDLE:
            continue
        if result is not None:
            _enqueue([other], {other: result.countdown})
        return
    _enqueue([other])  # still contended: its own message, never lost


def _run(job_id: int, *, reclaim: bool, coalesce: bool):
    """``job_run``'s work; IDLE when the job is not to be run now."""
    companions: list[ProvisioningJob] = []
    with transaction.atomic():
        job = ProvisioningJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.state in (JobState.SUCCEEDED, JobState.FAILED):
            return IDLE  # another worker has it, or it is settled: nothing twice
        if (
            job.state == JobState.RUNNING
            and not reclaim
            and job.lease_until
            and job.lease_until > timezone.now()
        ):
            return IDLE  # a live worker runs it (a duplicate message): never two at once
        earlier = _siblings(job).filter(position__lt=job.position).exclude(state=JobState.SUCCEEDED)
        if earlier.exists():
            # Out of order (a duplicate message): the earlier job's end enqueues us.
            ProvisioningJob.objects.filter(pk=job.pk).update(due_at=None)
            return IDLE
        if job.state == JobState.PENDING and job.not_before and job.not_before > timezone.now():
            return IDLE  # needed from a later day: the sweeper releases it then
        if coalesce and batch.eligible(job):
            companions, released = batch.claim(job, now=timezone.now())
            _enqueue_after_commit(released)
            if len(companions) >= batch.batch_size() - 1:
                # More may be due: the next batch of the group for another worker.
                _wake_after_commit([job])
        if companions:
            batch.start_all([job, *companions])
        else:
            job.start(lease_seconds=settings.PROVISIONING_LEASE_SECONDS)
            job.save()
    if companions:
        return _run_batch([job, *companions])
    try:
        note = execute(job)
    except DirectoryError as exc:
        directory_error.send(sender=ProvisioningJob, job=job, error=exc)
        with transaction.atomic():
            job = ProvisioningJob.objects.select_for_update().get(pk=job_id)
            if job.state != JobState.RUNNING:
                return None
            if exc.transient and job.attempts < settings.PROVISIONING_MAX_ATTEMPTS:
                countdown = retry_countdown(job.attempts)
                job.defer(error=exc.message, countdown=countdown)
                job.save()
                return RetryLater(countdown)
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


def _nothing_to_do(job: ProvisioningJob, *, reclaim: bool) -> bool:
    """The message of a job that a batch ran already (or runs now): one plain read, no
    transaction and no lock. A job that looks open here is checked again under its lock."""
    if job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return True
    return (
        job.state == JobState.RUNNING
        and not reclaim
        and job.lease_until is not None
        and job.lease_until > timezone.now()
    )


def _run_batch(jobs: list[ProvisioningJob]) -> RetryLater | None:
    """Run claimed jobs together; those the directory refused as a batch run on their own.
    The first is the caller's job: its retry goes back to the caller, the others' are sent."""
    trigger = jobs[0].pk
    outcome = batch.apply(jobs)
    countdowns = batch.record(jobs, outcome)
    mine = countdowns.pop(trigger, None)
    _enqueue(sorted(countdowns), countdowns)
    for job_id in outcome.alone:
        retry = job_run(job_id=job_id, reclaim=True, coalesce=False)
        if retry is None:
            continue
        if job_id == trigger:
            mine = retry.countdown
        else:
            _enqueue([job_id], {job_id: retry.countdown})
    return RetryLater(mine) if mine is not None else None


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
        _wake_after_commit(_first_pending(siblings))
    if all(state == JobState.SUCCEEDED for state in states):
        if grant:
            request_services.request_finish_automation(
                request_id=job.request_id,
                succeeded=True,
                note=_provisioning_done(len(states)),
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


SWEEP_BATCH = 500  # per kind and run; beat runs the sweep every 30 s
MAX_WAKE_BACKOFF = 64  # times PROVISIONING_SWEEP_AFTER_SECONDS


def pipeline_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Release the jobs whose scheduled day came (``release_scheduled``), and enqueue again
    what stalled: jobs overdue or abandoned by a dead worker, and approved automated requests
    whose provisioning was never recorded.

    A woken job is not woken again before PROVISIONING_SWEEP_AFTER_SECONDS times 2 to the
    power of its earlier wakes (capped): a job that only waits in a long queue gets few
    duplicate messages, and duplicates do nothing (``job_run`` skips settled and claimed jobs).
    """
    from provisioning import selectors

    now = now or timezone.now()
    after = timedelta(seconds=settings.PROVISIONING_SWEEP_AFTER_SECONDS)
    # Not a stall: jobs of requests needed from today on, waiting for their day.
    released = release_scheduled(now=now)
    if released:
        logger.info("provisioning sweep released %s scheduled jobs", len(released))
    counts = {}
    woken: list[int] = []
    with transaction.atomic():
        for kind, stalled in selectors.stalled_jobs(now=now).items():
            rows = list(
                ProvisioningJob.objects.filter(stalled)
                .select_for_update(skip_locked=True)  # a worker is starting it right now
                .order_by("due_at")
                .values_list("pk", "wakes")[:SWEEP_BATCH]
            )
            by_wakes: dict[int, list[int]] = {}
            for pk, wakes in rows:
                by_wakes.setdefault(wakes, []).append(pk)
            for wakes, pks in by_wakes.items():
                backoff = min(2**wakes, MAX_WAKE_BACKOFF) - 1
                ProvisioningJob.objects.filter(pk__in=pks).update(
                    due_at=now + after * backoff, wakes=wakes + 1
                )
            counts[kind] = len(rows)
            woken += [pk for pk, _wakes in rows]
        _enqueue_after_commit(woken)
    request_ids = list(
        selectors.stalled_requests(now=now)
        .order_by("approved_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    counts["approved_request"] = len(request_ids)
    for request_id in request_ids:
        try:
            provision_request(request_id=request_id)
        except Exception:  # one broken request must not stop the sweep of the others
            logger.exception("sweeper: could not provision approved request %s", request_id)
    if any(counts.values()):
        logger.warning("provisioning sweep enqueued again: %s", counts)
    pipeline_swept.send(sender=ProvisioningJob, counts=counts)
    return counts


# --- entitlements -----------------------------------------------------------------------------


def _grants_access(service_request) -> bool:
    """Only lasting access becomes an entitlement; a one-off delivery (a device, a password
    reset) stays a fulfilled request. Decided by the item as ordered (its snapshot); orders
    placed before the snapshot said so follow the item as it is now."""
    grants_access = service_request.item_snapshot.get("grants_access")
    if grants_access is None:
        grants_access = service_request.item.grants_access
    return bool(grants_access)


def _expires_on(service_request):
    from datetime import date

    key = service_request.item_snapshot.get("valid_until_field") or ""
    value = (service_request.answers or {}).get(key) if key else None
    if value:
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            return None
    return None


def entitlement_grant(*, service_request) -> Entitlement | None:
    """Called inside the fulfilling transaction (requests_app's request_fulfilled signal)."""
    if not _grants_access(service_request):
        return None
    entitlement, _created = Entitlement.objects.get_or_create(
        request=service_request,
        defaults={
            "holder_id": service_request.beneficiary_id,
            "item_id": service_request.item_id,
            "expires_on": _expires_on(service_request),
        },
    )
    return entitlement


def entitlements_grant(*, service_requests) -> None:
    """``entitlement_grant`` for many requests fulfilled together (requests_fulfilled): one
    INSERT for all; a request that has its entitlement already keeps it (the request is
    the entitlement's unique key, so a second grant of the same request writes nothing)."""
    Entitlement.objects.bulk_create(
        [
            Entitlement(
                request=service_request,
                holder_id=service_request.beneficiary_id,
                item_id=service_request.item_id,
                expires_on=_expires_on(service_request),
            )
            for service_request in service_requests
            if _grants_access(service_request)
        ],
        ignore_conflicts=True,
    )


def entitlement_revoke(
    *, entitlement_id: int, user, reason: str, authorised: bool = False
) -> Entitlement:
    """Undo an entitlement: reverse directory actions as jobs, or mark it for manual removal.

    ``authorised``: the caller checked the right itself (an access review decided by the
    reviewer's substitute); ``user`` is then only recorded."""
    reason = (reason or "").strip()
    with transaction.atomic():
        entitlement = (
            Entitlement.objects.select_for_update(of=("self",))
            .select_related("holder__user", "request")
            .get(pk=entitlement_id)
        )
        if user is not None and not authorised and not may_revoke(entitlement, user):
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
            _wake_after_commit(_first_pending(entitlement.jobs.filter(direction=Direction.REVOKE)))
        else:
            entitlement.state = EntitlementState.REVOKED
            entitlement.revoked_at = timezone.now()
            entitlement.save()
            entitlement_revoked.send(sender=Entitlement, entitlement_id=entitlement.pk)
            # No automation undoes it (a manual service, a token): the group that granted
            # it removes it by hand, from its queue.
            request_services.task_open(
                request_id=entitlement.request_id,
                kind=FulfilmentTask.Kind.REMOVE_ACCESS,
                reason=reason,
            )
    return entitlement


def may_revoke(entitlement: Entitlement, user) -> bool:
    from itportal.roles import is_it_admin

    holder = entitlement.holder
    return (
        is_it_admin(user)
        or holder.user_id == user.pk
        or (holder.manager is not None and holder.manager.user_id == user.pk)
    )


# --- the catalogue editor ------------------------------------------------------------------


ACTION_FIELDS = ("kind", "target", "attributes")


@transaction.atomic
def item_actions_save(*, item, actions: list[dict], record: bool = True) -> None:
    """Make the item's provisioning actions equal ``actions``, all or nothing; a change makes
    a new version of the item (orders keep the one they were placed on). Errors keyed
    ``actions[i].field``.

    Actions are matched by position and saved only when they changed, so the item's change
    history says "target changed" instead of a removal and an addition of every action at
    every save. With ``record`` a change also leaves a row in the item's own history (its
    author, "provisioning actions changed") before the actions are written: each such change
    is then a version that can be viewed and restored (catalogue.history reads a version's
    rows up to the next row of the item). A restore records itself and passes False.
    """
    item = CatalogueItem.objects.select_for_update().get(pk=item.pk)
    existing = {a.position: a for a in item.provisioning_actions.all()}
    before = [tuple(getattr(a, name) for name in ACTION_FIELDS) for a in existing.values()]
    rows = [{**values, "position": index} for index, values in enumerate(actions, start=1)]
    after = [tuple(row.get(name, "") for name in ACTION_FIELDS) for row in rows]
    if after == before:
        return
    if record:
        item._change_reason = ACTIONS_CHANGED
        item.save(update_fields=["updated_at"])
    ProvisioningAction.objects.filter(item=item, position__gt=len(rows)).delete()
    errors: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        action = existing.get(row["position"]) or ProvisioningAction(item=item)
        unchanged = action.pk is not None and all(
            getattr(action, name) == row.get(name, "") for name in ACTION_FIELDS
        )
        for name in ACTION_FIELDS:
            setattr(action, name, row.get(name, ""))
        action.position = row["position"]
        try:
            action.full_clean()
        except ValidationError as exc:
            errors.update(row_errors(exc, "actions", index))
            continue
        if not unchanged:
            action.save()
    if errors:
        raise ValidationError(errors)
    CatalogueItem.objects.filter(pk=item.pk).update(version=F("version") + 1)
