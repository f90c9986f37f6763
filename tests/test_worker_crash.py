"""A real Celery worker on the Redis broker is killed with SIGKILL in the middle of 500
provisioning jobs; a new one finishes them. Every job succeeds exactly once and the
private slapd holds exactly the expected memberships, read back with ldapsearch.

The workers are other processes: the test commits its rows (transaction=True) and
hands the worker the test database, the broker, its own queue and the slapd's service
account through the environment; tests/worker_settings.py switches off the eager mode
that tests/settings.py forces.

How the killed worker's jobs come back is production's path. Redis delivers a killed
worker's unacknowledged messages again only after the visibility timeout (kombu's
default, one hour; it must stay above the longest retry countdown, 600 s, or delayed
retries would be delivered twice). Long before that, the periodic sweeper (beat runs
``sweep_provisioning_jobs`` every 30 s) enqueues again the running jobs whose worker's
lease ended (PROVISIONING_LEASE_SECONDS) and the pending ones overdue by
PROVISIONING_SWEEP_AFTER_SECONDS. The test sends the sweep task itself, as beat would,
once the new worker has drained the queue, with a lease of five seconds. Then it
plays the late redelivery too: the dead worker's messages are put back into the queue
as Redis does when their visibility timeout ends, a third worker runs them, and they
must change nothing.
"""

import os
import time
import uuid

import pytest
from django.db import connection
from django.db.models import Count

from notifications.models import OutgoingMail
from provisioning.choices import JobState
from provisioning.models import Entitlement, ProvisioningJob
from provisioning.tasks import run_provisioning_job, sweep_provisioning_jobs
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.fault_support import (
    SUCCESS_NOTES,
    Broker,
    Deadline,
    Worker,
    database_url,
    seed_group_jobs,
    seed_people,
    seed_requests,
)
from tests.provisioning_support import add_group, automated_item, group_action, members

JOBS = 500
GROUPS = 5
KILL_AFTER = 100  # succeeded jobs before the SIGKILL
SWEEP_AFTER_SECONDS = 2  # the sweeper's threshold in the workers
LEASE_SECONDS = 5  # a worker's claim on a running job: far above one job's run here
DEADLINE_SECONDS = 600  # a hang guard, not a timing assertion: loaded CI machines are slow


def _seed(org, directory) -> tuple[list[int], dict[str, set[str]]]:
    """500 people in the slapd and the portal, each with an automated request in
    fulfilment and its one add-to-group job; the expected members per group."""
    groups = [add_group(directory, f"crash-{k}") for k in range(GROUPS)]
    items = [
        automated_item(org.service_desk, group_action(dn), name=f"Gruppe {k}", slug=f"crash-{k}")
        for k, dn in enumerate(groups)
    ]
    uids = [f"crash{i:04d}" for i in range(JOBS)]
    requests = seed_requests(org, seed_people(org, directory, uids), items)
    jobs = seed_group_jobs(requests, groups)
    expected = {dn.lower(): {directory.bind_dn.lower()} for dn in groups}
    for i, uid in enumerate(uids):
        expected[groups[i % GROUPS].lower()].add(directory.user_dn(uid).lower())
    return [job.pk for job in jobs], expected


def _states() -> dict[str, int]:
    rows = ProvisioningJob.objects.values("state").annotate(n=Count("pk"))
    return {row["state"]: row["n"] for row in rows}


def _running() -> bool:
    return ProvisioningJob.objects.filter(state=JobState.RUNNING).exists()


def _settled() -> int:
    return ProvisioningJob.objects.filter(state__in=[JobState.SUCCEEDED, JobState.FAILED]).count()


@pytest.mark.django_db(transaction=True)
def test_killed_worker_every_job_succeeds_exactly_once(org, directory, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker processes share the test database: PostgreSQL only")
    started = time.monotonic()
    queue = f"itportal-test-crash-{uuid.uuid4().hex}"
    mail_queue = f"{queue}.mail"  # no worker reads it: mail is not what this test is about
    broker = Broker(settings.CELERY_BROKER_URL, queue)
    broker.purge()
    settings.CELERY_TASK_ALWAYS_EAGER = False  # this process publishes to the broker
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ITPORTAL_TEST_QUEUE": queue,
        "ITPORTAL_TEST_MAIL_QUEUE": mail_queue,
        "PROVISIONING_SWEEP_AFTER_SECONDS": str(SWEEP_AFTER_SECONDS),
        "PROVISIONING_LEASE_SECONDS": str(LEASE_SECONDS),
        "LANGUAGE_CODE": "en",
        "LOG_LEVEL": "WARNING",
        **{f"DIRECTORY_{key.upper()}": value for key, value in directory.config_kwargs().items()},
    }
    workers: list[Worker] = []
    deadline = Deadline(DEADLINE_SECONDS, workers, lambda: f"jobs: {_states()}")
    try:
        workers.append(Worker("crash-a", queue, env, tmp_path / "worker-a.log"))
        job_ids, expected = _seed(org, directory)
        seeded = time.monotonic()
        with run_provisioning_job.app.producer_or_acquire() as producer:
            for job_id in job_ids:
                run_provisioning_job.apply_async((job_id,), queue=queue, producer=producer)

        # 1. Kill the worker, main process and pool children, in the middle of the run:
        # when a job is running (its directory write under way), not just after a commit.
        while _settled() < KILL_AFTER or not _running():
            assert workers[0].process.poll() is None, workers[0].log_tail()
            deadline.check(f"{KILL_AFTER} jobs done by the first worker")
            time.sleep(0.005)
        workers[0].kill()
        killed_at = time.monotonic()
        at_kill = _states()
        dead_tags = broker.unacked()  # what the dead worker held: Redis keeps it for an hour
        assert KILL_AFTER <= at_kill.get(JobState.SUCCEEDED, 0) < JOBS, at_kill
        assert dead_tags, "the killed worker held no message: it was not killed mid-run"

        # 2. A new worker drains the queue; the sweeper re-enqueues what the dead one held.
        workers.append(Worker("crash-b", queue, env, tmp_path / "worker-b.log"))
        sweeps, last_sweep, last_done, last_change = 0, 0.0, -1, time.monotonic()
        while (done := _settled()) < JOBS:
            assert workers[1].process.poll() is None, workers[1].log_tail()
            deadline.check("all jobs settled after the crash")
            now = time.monotonic()
            if done != last_done:
                last_done, last_change = done, now
            elif (
                now - last_change > 1.0
                and now - killed_at > LEASE_SECONDS + 0.5
                and now - last_sweep > 3.0
                and broker.waiting() == 0
            ):
                sweep_provisioning_jobs.apply_async(queue=queue)  # as beat does every 30 s
                sweeps, last_sweep = sweeps + 1, now
            time.sleep(0.1)
        recovered = time.monotonic()

        def drain(what, held=frozenset()):  # the worker ran every message but ``held``
            quiet = 0  # twice in a row: a message between BRPOP and "unacked" is in neither
            while quiet < 2:
                deadline.check(what)
                time.sleep(0.1)
                busy = broker.waiting() or broker.unacked() - held
                quiet = 0 if busy else quiet + 1

        drain("the queue to drain", held=dead_tags)
        workers[1].stop()

        # 3. An hour later Redis delivers the dead worker's messages again (its visibility
        # timeout), to a third worker: they find their jobs settled and change nothing.
        dead_ids = broker.task_ids(dead_tags)
        broker.redeliver(dead_tags)
        assert broker.task_ids() == dead_ids
        workers.append(Worker("crash-c", queue, env, tmp_path / "worker-c.log"))
        drain("the redelivered messages")
        notified = broker.task_args(mail_queue)
    finally:
        for worker in workers:
            worker.stop()
        broker.purge()

    jobs = list(ProvisioningJob.objects.order_by("pk"))
    assert len(jobs) == JOBS
    assert [job.pk for job in jobs if job.state != JobState.SUCCEEDED] == []
    assert {job.attempts for job in jobs} <= {1, 2}
    successes = {
        job.pk: sum(line.endswith(SUCCESS_NOTES) for line in job.log.splitlines()) for job in jobs
    }
    assert [pk for pk, count in successes.items() if count != 1] == []
    assert not ServiceRequest.objects.exclude(state=RequestState.FULFILLED).exists()
    assert Entitlement.objects.count() == JOBS
    # Mail goes through the outbox: rows written with the fulfilments, each queued at most
    # once here (a worker killed before its publish leaves the row to the mail sweeper). A
    # wake_mails message carries the ids of the mails queued together, send_mail one id.
    queued = [
        mail_id
        for args in notified
        for mail_id in (args[0] if isinstance(args[0], list) else [args[0]])
    ]
    assert len(set(queued)) == len(queued)
    assert OutgoingMail.objects.filter(pk__in=queued).count() == len(queued)
    for group_dn, want in expected.items():
        assert members(directory, group_dn) == want  # the real ldapsearch: no more, no less

    twice = sum(job.attempts == 2 for job in jobs)
    print(
        f"\nworker crash: {JOBS} jobs, seeding {seeded - started:.1f} s; SIGKILL at {at_kill}, "
        f"{len(dead_tags)} unacknowledged message(s) left; {sweeps} sweep(s), {twice} job(s) "
        f"run twice; {len(queued)} mails woken; all settled {recovered - killed_at:.1f} s "
        f"after the kill; total {time.monotonic() - started:.1f} s"
    )
