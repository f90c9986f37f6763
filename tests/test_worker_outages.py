"""Workers survive their dependencies.

Redis: a real worker on a private redis-server (never the shared one) runs a provisioning
job; Redis is stopped, everything in it lost, and started again on the same port; the same
worker process, still alive, runs a job published afterwards, and slapd holds both
memberships (read back with ldapsearch).

PostgreSQL: the job's database work fails once (as during a restart) right after its
directory write; the task closes the broken connection, retries with backoff, takes its
own claim over and finishes the job. A real worker on a private PostgreSQL cluster that
stops: a daily run retries until the server is back, a sweeper ends with a warning for
beat's next run (itportal/outages.py).
"""

import os
import time
from datetime import timedelta

import psycopg
import pytest
from celery.exceptions import Retry
from django.db import OperationalError, connection
from django.utils import timezone
from kombu import Connection

from provisioning.choices import JobState
from provisioning.models import ProvisioningJob
from provisioning.tasks import run_provisioning_job
from requests_app import services as request_services
from tests.broker_support import PrivateRedis, publishing_to
from tests.factories import EmployeeFactory
from tests.fault_support import PrivatePostgres, Worker, database_url
from tests.provisioning_support import add_group, add_person, automated_item, group_action, members
from webhooks.choices import EventType
from webhooks.models import WebhookEvent
from webhooks.tasks import prune_webhook_events, sweep_webhook_deliveries

QUEUE = "provisioning"  # production's routing: nobody else reads this private Redis
DEADLINE_SECONDS = 60


def _approved_job(org, item, directory, employee) -> int:
    add_person(directory, employee)
    service_request = request_services.request_create(
        requester=employee.user,
        item=item,
        item_version=item.version,
        beneficiary=employee,
        cost_centre=employee.effective_cost_centre,
        answers={},
    )
    request_services.request_approve(request_id=service_request.pk, user=org.manager.user)
    return ProvisioningJob.objects.get(request=service_request).pk


def _wait_succeeded(job_id: int, worker: Worker) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (state := ProvisioningJob.objects.get(pk=job_id).state) != JobState.SUCCEEDED:
        assert worker.process.poll() is None, f"the worker ended:\n{worker.log_tail()}"
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} is {state}\n{worker.log_tail()}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_worker_survives_a_redis_restart_and_runs_the_next_job(
    org, directory_settings, settings, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process shares the test database: PostgreSQL only")
    directory = directory_settings
    group = add_group(directory, "restart")
    item = automated_item(org.service_desk, group_action(group), slug="restart")
    people = [EmployeeFactory(department=org.department, manager=org.manager) for _ in range(2)]
    with PrivateRedis(tmp_path) as broker, publishing_to(settings, broker.url):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "ITPORTAL_TEST_QUEUE": QUEUE,
            "LOG_LEVEL": "WARNING",
            **{f"DIRECTORY_{k.upper()}": v for k, v in directory.config_kwargs().items()},
            # Redis may stop before the first job's acknowledgement went out: the worker then
            # no longer consumes (celery/celery#10302) until its watchdog restarts the consumer.
            "WORKER_WATCHDOG_SECONDS": "0.5",
            "WORKER_STALLED_AFTER_SECONDS": "3",
        }
        worker = Worker("restart", QUEUE, env, tmp_path / "worker.log")
        try:
            first = _approved_job(org, item, directory, people[0])  # woken at the commit
            _wait_succeeded(first, worker)

            broker.stop()  # Redis goes away with everything in it ...
            time.sleep(3)  # ... long enough for the worker to notice
            assert worker.process.poll() is None, worker.log_tail()
            broker.start()  # ... and comes back empty on the same port

            second = _approved_job(org, item, directory, people[1])
            _wait_succeeded(second, worker)
            assert worker.process.poll() is None, worker.log_tail()
        finally:
            worker.stop()
    assert members(directory, group) == {
        directory.bind_dn.lower(),
        *(directory.user_dn(p.personnel_number).lower() for p in people),
    }


@pytest.mark.django_db(transaction=True)
def test_job_retries_a_database_outage_after_its_write(org, directory_settings, settings):
    directory = directory_settings
    group = add_group(directory, "outage")
    item = automated_item(org.service_desk, group_action(group), slug="outage")
    person = EmployeeFactory(department=org.department, manager=org.manager)
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the approval's wake-up goes nowhere here
    with publishing_to(settings, "memory://"):
        job_id = _approved_job(org, item, directory, person)
    locks = []

    def fail_the_finishing_lock(execute, sql, params, many, context):
        # The job's finishing row lock (after the directory write) meets a restarting server.
        # The claims before the write (the job's, the batch's companions') skip locked rows;
        # the finishing lock waits for its row.
        if "FOR UPDATE" in sql and "provisioning_provisioningjob" in sql:
            locks.append(sql)
            if "SKIP LOCKED" not in sql:
                raise OperationalError("terminating connection due to administrator command")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_the_finishing_lock), pytest.raises(Retry) as retry:
        run_provisioning_job.apply(args=(job_id,))  # as a worker runs it
    assert ProvisioningJob.objects.get(pk=job_id).state == JobState.RUNNING  # our claim
    assert retry.value.sig.kwargs == {"reclaim": True}
    assert 0 < retry.value.when <= 60
    retry.value.sig.apply()  # the worker runs the retry after its countdown
    job = ProvisioningJob.objects.get(pk=job_id)
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)
    assert directory.user_dn(person.personnel_number).lower() in members(directory, group)


def _wait_for_log(worker: Worker, *texts: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all(text in worker.log_path.read_text(errors="replace") for text in texts):
        if time.monotonic() > deadline:
            pytest.fail(f"no {texts} in the log\n{worker.log_tail()}")
        time.sleep(0.1)


def _events(url: str) -> int:
    with psycopg.connect(url, connect_timeout=3) as conn:
        return conn.execute("SELECT count(*) FROM webhooks_webhookevent").fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_periodic_tasks_outlast_a_postgresql_restart(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker's database is a copy of the test database: PostgreSQL only")
    WebhookEvent.objects.create(
        event_type=EventType.REQUEST_APPROVED, occurred_at=timezone.now() - timedelta(days=3650)
    )
    settings.CELERY_TASK_ALWAYS_EAGER = False  # this process publishes to the broker
    postgres = PrivatePostgres()
    try:
        postgres.init()
        postgres.start()
        url = postgres.copy_database(database_url(connection.settings_dict), "outage")
        with PrivateRedis(tmp_path) as broker:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
                "DATABASE_URL": url,
                "CELERY_BROKER_URL": broker.url,
                "ITPORTAL_TEST_QUEUE": QUEUE,
                "LOG_LEVEL": "WARNING",
            }
            worker = Worker("outage", QUEUE, env, tmp_path / "worker.log")
            try:
                postgres.stop()
                with Connection(broker.url) as conn, conn.Producer() as producer:
                    for task in (prune_webhook_events, sweep_webhook_deliveries):
                        task.apply_async(queue=QUEUE, producer=producer)
                _wait_for_log(
                    worker, "webhooks-sweep: the database is unavailable", "task_retrying"
                )
                postgres.start()
                deadline = time.monotonic() + DEADLINE_SECONDS
                while _events(url):  # the daily pruning got through after all
                    if time.monotonic() > deadline:
                        pytest.fail(f"the event was not pruned\n{worker.log_tail()}")
                    time.sleep(0.2)
            finally:
                worker.stop()
    finally:
        postgres.remove()
    log = worker.log_path.read_text(errors="replace")
    assert '"level": "error"' not in log and '"level": "critical"' not in log, log[-3000:]
