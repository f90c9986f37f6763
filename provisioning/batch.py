"""Coalesced group-membership jobs: many adds and removals of one group in one LDAP modify.

When many orders for the same group wait (a department's onboarding, an import), a worker
that starts one of their jobs claims the others that are due as well (``claim``: row locks
with SKIP LOCKED, so two workers never claim the same job) and runs them together
(``run``): one search per hundred accounts for their DNs, one per hundred members for who
is already in (or already out of) the group, one modify with the rest, one statement for
the intent lines and one transaction recording every job's own transition and settling
its request. A single job, the usual case on an idle system, runs as before (one job, no
waiting for company), so an approval still reaches the directory at once.

A batch the directory refuses as a whole (a member DN it does not accept, a group that
does not exist, a member added meanwhile by someone else) is not retried as a whole: each
of its jobs runs again on its own (``services.job_run``), so a bad DN fails only its job,
with the directory's own message. A transient error defers every job of the batch, with
backoff, as for a single job.

Grants of orders and revocations of entitlements are coalesced, each with its own kind
(a batch is all grants or all revocations), and only jobs whose earlier actions of the
same order (or revocation) are done. A revocation asks, under the batch's membership
locks, who else holds the membership (``holders.other_holders``) and leaves it alone
while someone does, as a revocation on its own does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from itportal import bulk
from itportal.locks import lock_key
from provisioning.backends import get_backend
from provisioning.backends.errors import DirectoryError
from provisioning.choices import ActionKind, Direction, JobState
from provisioning.executor import WORDS, held_note
from provisioning.holders import membership_key, other_holders
from provisioning.joblog import in_log_language, log_line
from provisioning.models import ProvisioningJob
from provisioning.signals import directory_error

logger = logging.getLogger(__name__)

KINDS = (ActionKind.ADD_TO_GROUP, ActionKind.REMOVE_FROM_GROUP)
RECORDED = ["state", "finished_at", "due_at", "lease_until", "last_error", "log", "updated_at"]
# Each job's request is fulfilled with its follow-ups (audit, entitlement, mails), written
# for the whole chunk at once: about 1 ms of the worker's CPU and 4 ms of waiting per job on
# a loaded 2-core machine. A chunk commits what is done; one per full batch of 100 (each
# chunk costs ~17 statements and a commit, whatever its size).
RECORD_CHUNK = 100
LOCK_WAIT_SECONDS = 2  # then the jobs whose membership another job holds are deferred


def batch_size() -> int:
    return settings.PROVISIONING_BATCH_SIZE


def eligible(job: ProvisioningJob) -> bool:
    return (
        batch_size() > 1
        and job.kind in KINDS
        and bool(job.target_dn)
        and (
            (job.direction == Direction.GRANT and job.entitlement_id is None)
            or (job.direction == Direction.REVOKE and job.entitlement_id is not None)
        )
    )


def due_on_group(job: ProvisioningJob, *, now):
    """The jobs a batch of ``job`` may take along: due, on the same group, in the same
    direction. Whether one waits for an earlier job of its own order or revocation is
    asked afterwards (``waiting``): as a correlated NOT EXISTS here, the planner joined
    every due job with every open one when the table's statistics were older than a burst
    of approvals (6 s for one claim among 3,000 jobs, growing with the square)."""
    return ProvisioningJob.objects.filter(
        state__in=[JobState.PENDING, JobState.RETRYING],
        direction=job.direction,
        entitlement__isnull=job.direction == Direction.GRANT,
        kind__in=KINDS,
        target_dn=job.target_dn,
        due_at__lte=now,
    ).filter(Q(not_before=None) | Q(not_before__lte=now))


def waiting(jobs: list[ProvisioningJob]) -> set[int]:
    """The ids of those of ``jobs`` (all of one direction) whose earlier job of the same
    order or revocation has not succeeded, in one query by their orders (revocations)."""
    if not jobs:
        return set()
    revoke = jobs[0].direction == Direction.REVOKE
    run = "entitlement_id" if revoke else "request_id"
    runs = {getattr(job, run) for job in jobs}
    open_jobs = ProvisioningJob.objects.filter(
        **{f"{run}__in": runs}, direction=jobs[0].direction
    ).exclude(state=JobState.SUCCEEDED)
    if not revoke:
        open_jobs = open_jobs.filter(entitlement=None)
    first_open: dict[int, int] = {}
    for key, position in open_jobs.values_list(run, "position"):
        first_open[key] = min(position, first_open.get(key, position))
    return {
        job.pk
        for job in jobs
        if getattr(job, run) in first_open and first_open[getattr(job, run)] < job.position
    }


def next_due(job: ProvisioningJob) -> int | None:
    """One job of ``due_on_group`` that no worker holds (the oldest), or None. One that
    waits for an earlier job is not run by ``services._run`` either, which leaves it to
    that job's end."""
    with transaction.atomic():
        return (
            due_on_group(job, now=timezone.now())
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)
            .first()
        )


def claim(job: ProvisioningJob, *, now) -> tuple[list[ProvisioningJob], list[int]]:
    """Inside the caller's transaction, with ``job`` locked and due: lock the other due
    jobs on the same group. Returns (companions, released): ``released`` were locked but
    are left for later (the same member both added and removed in the batch) and must be
    enqueued again after commit, since their own message may have found them locked.
    One that waits for an earlier job of its own is left to that job's end (its due
    time cleared, as ``services._run`` does with such a job's own message)."""
    companions = list(
        due_on_group(job, now=now)
        .exclude(pk=job.pk)
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("due_at", "pk")[: batch_size() - 1]
    )
    held_back = waiting(companions)
    if held_back:
        ProvisioningJob.objects.filter(pk__in=held_back).update(due_at=None)
        companions = [companion for companion in companions if companion.pk not in held_back]
    kinds = {membership_key(job): job.kind}
    kept, released = [], []
    for companion in companions:
        if kinds.setdefault(membership_key(companion), companion.kind) == companion.kind:
            kept.append(companion)
        else:  # added and removed in one batch: the order would be lost; later, alone
            released.append(companion.pk)
    return kept, released


def start_all(jobs: list[ProvisioningJob]) -> None:
    """The jobs' start transitions, written in one statement (rows locked by the caller)."""
    now = timezone.now()
    for job in jobs:
        job.start(lease_seconds=settings.PROVISIONING_LEASE_SECONDS)
        job.updated_at = now
    fields = ["state", "attempts", "started_at", "lease_until", "updated_at"]
    bulk.update_rows(jobs, fields)
    _saved(jobs, fields)


@dataclass
class Outcome:
    notes: dict[int, str] = field(default_factory=dict)  # succeeded
    failed: dict[int, str] = field(default_factory=dict)  # permanent, this job only
    deferred: dict[int, str] = field(default_factory=dict)  # transient
    alone: list[int] = field(default_factory=list)  # to run on their own


@contextlib.contextmanager
def serialised_many(jobs: list[ProvisioningJob]):
    """``holders.serialised`` for many jobs: the advisory locks of all their memberships in
    one transaction on a connection of its own. Yields the ids of the jobs whose lock was
    had within LOCK_WAIT_SECONDS; the others wait for a job that holds theirs."""
    keys = {job.pk: lock_key("\x1f".join(membership_key(job))) for job in jobs}
    holder = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        holder.ensure_connection()
        raw = holder.connection
        with raw.transaction(), raw.cursor() as cursor:
            wanted, got = set(keys.values()), set()
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                cursor.execute(
                    "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_xact_lock(k)",
                    [sorted(wanted - got)],
                )
                got |= {row[0] for row in cursor.fetchall()}
                if got == wanted or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            yield {pk for pk, key in keys.items() if key in got}
    finally:
        holder.close()


def _append_logs(lines: dict[int, str]) -> None:
    """Commit one log line per job now, in one statement (the executor's intent line)."""
    if not lines:
        return
    table = ProvisioningJob._meta.db_table
    ids = list(lines)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS j SET log = j.log || v.line, updated_at = %s "  # noqa: S608 - our table name
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, line) WHERE j.id = v.id",
            [timezone.now(), ids, [lines[pk] for pk in ids]],
        )


def _intent_line(job: ProvisioningJob) -> str:
    return _("intended: %(action)s %(target)s (account %(uid)s)") % {
        "action": WORDS[job.kind][0],
        "target": job.target_dn,
        "uid": job.user_uid,
    }


def apply(jobs: list[ProvisioningJob]) -> Outcome:
    """The directory work of a claimed batch (outside any transaction of the default
    connection, as ``executor.execute``)."""
    outcome = Outcome()
    with in_log_language(), serialised_many(jobs) as locked:
        for job in jobs:
            if job.pk not in locked:
                outcome.deferred[job.pk] = "Another job is changing the same membership."
        jobs = [job for job in jobs if job.pk in locked]
        if not jobs:
            return outcome
        group = jobs[0].target_dn
        backend = get_backend()
        try:
            dns = backend.find_user_dns(job.user_uid for job in jobs)
            for job in jobs:
                if job.user_uid.lower() not in dns:
                    outcome.failed[job.pk] = f"No such user in the directory: {job.user_uid}"
            jobs = [job for job in jobs if job.pk not in outcome.failed]
            for job in jobs:
                if job.direction == Direction.REVOKE:
                    holders = other_holders(job, member_dn=dns[job.user_uid.lower()])
                    if holders:
                        outcome.notes[job.pk] = held_note(job, holders)
            jobs = [job for job in jobs if job.pk not in outcome.notes]
            adds = [job for job in jobs if job.kind == ActionKind.ADD_TO_GROUP]
            removes = [job for job in jobs if job.kind == ActionKind.REMOVE_FROM_GROUP]
            present = backend.members_present(group, [dns[j.user_uid.lower()] for j in adds])
            absent = backend.members_absent(group, [dns[j.user_uid.lower()] for j in removes])
            to_add, to_delete, writing, intents = {}, {}, [], {}
            for job in jobs:
                dn = dns[job.user_uid.lower()]
                wanted, unchanged = (
                    (to_add, present)
                    if job.kind == ActionKind.ADD_TO_GROUP
                    else (to_delete, absent)
                )
                if dn.lower() in unchanged or dn.lower() in wanted:
                    outcome.notes[job.pk] = _unchanged_note(job)
                    continue
                wanted[dn.lower()] = dn
                writing.append(job)
                intents[job.pk] = log_line(_intent_line(job))
            _append_logs(intents)
            backend.modify_members(
                group, add=list(to_add.values()), delete=list(to_delete.values())
            )
        except DirectoryError as exc:
            if exc.transient:
                for job in jobs:
                    outcome.deferred[job.pk] = exc.message
                    directory_error.send(sender=ProvisioningJob, job=job, error=exc)
                return outcome
            # Refused as a whole: every job on its own, so only the bad one fails.
            logger.info("batch of %s jobs on %s refused (%s); one by one", len(jobs), group, exc)
            outcome.notes = {pk: note for pk, note in outcome.notes.items() if pk in locked}
            outcome.alone = [job.pk for job in jobs if job.pk not in outcome.notes]
            return outcome
        for job in writing:
            outcome.notes[job.pk] = str(WORDS[job.kind][1])
    return outcome


def _unchanged_note(job: ProvisioningJob) -> str:
    intent, _done, already = WORDS[job.kind]
    if _intent_line(job) in job.log:  # an earlier attempt got as far as writing
        return _("already applied, e.g. by an earlier attempt (%s)") % intent
    return str(already)


def record(jobs: list[ProvisioningJob], outcome: Outcome) -> dict[int, float]:
    """Every job's own transition and its request's settling, a transaction per
    RECORD_CHUNK jobs: a run cut short (time limit, worker killed) keeps what it recorded;
    the rest stay running until their lease ends and the sweeper hands them on (their
    directory change is in place, so that run only records it). Returns the retry
    countdowns of the deferred jobs."""
    countdowns: dict[int, float] = {}
    ids = [job.pk for job in jobs if job.pk not in outcome.alone]
    for start in range(0, len(ids), RECORD_CHUNK):
        _record_chunk(ids[start : start + RECORD_CHUNK], outcome, countdowns)
    return countdowns


def _record_chunk(ids: list[int], outcome: Outcome, countdowns: dict[int, float]) -> None:
    from provisioning.services import _settle, retry_countdown

    with transaction.atomic(), in_log_language():
        rows = list(
            ProvisioningJob.objects.select_for_update()
            .filter(pk__in=ids, state=JobState.RUNNING)
            .order_by("pk")
        )
        now = timezone.now()
        ended = []
        for job in rows:
            if job.pk in outcome.notes:
                job.succeed(note=outcome.notes[job.pk])
                ended.append(job)
            elif job.pk in outcome.failed:
                job.fail(error=outcome.failed[job.pk])
                ended.append(job)
            elif job.attempts < settings.PROVISIONING_MAX_ATTEMPTS:
                countdowns[job.pk] = retry_countdown(job.attempts)
                job.defer(error=outcome.deferred[job.pk], countdown=countdowns[job.pk])
            else:
                job.fail(error=outcome.deferred[job.pk])
                ended.append(job)
            job.updated_at = now
        bulk.update_rows(rows, RECORDED)
        _saved(rows, RECORDED)
        _settle_all(ended, _settle)


def _saved(jobs: list[ProvisioningJob], fields) -> None:
    """What ``save()`` would tell about each job (metrics count its outcome, the trail logs
    it); bulk_update tells nobody."""
    for job in jobs:
        post_save.send(
            sender=ProvisioningJob,
            instance=job,
            created=False,
            update_fields=frozenset(fields),
            raw=False,
            using=job._state.db,
        )


def _settle_all(ended: list[ProvisioningJob], settle_one) -> None:
    """``services._settle`` for many ended jobs: requests whose every job succeeded are
    fulfilled together (``requests_finish_automation``); the rest (a failure, a next job
    to start) one by one, as always."""
    from provisioning.services import _provisioning_done
    from requests_app.services import requests_finish_automation

    states: dict[int, list[tuple[str, int | None]]] = {}
    for request_id, state, finished_by in ProvisioningJob.objects.filter(
        request_id__in={job.request_id for job in ended if job.direction == Direction.GRANT},
        direction=Direction.GRANT,
        entitlement=None,
    ).values_list("request_id", "state", "finished_by_id"):
        states.setdefault(request_id, []).append((state, finished_by))
    notes, by_hand, seen = {}, set(), set()
    for job in ended:
        if job.direction == Direction.REVOKE:
            settle_one(job)  # its entitlement revoked once all its revocation's jobs are done
            continue
        if job.request_id in seen:
            continue
        seen.add(job.request_id)
        siblings = states[job.request_id]
        if all(state == JobState.SUCCEEDED for state, _by in siblings):
            notes[job.request_id] = _provisioning_done(len(siblings))
            if any(by is not None for _state, by in siblings):
                by_hand.add(job.request_id)
        else:
            settle_one(job)
    if notes:
        requests_finish_automation(notes=notes, done_by_hand=frozenset(by_hand))
