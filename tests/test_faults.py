"""Fault suite: the provisioning pipeline under faults, with real workers, beat, Redis,
PostgreSQL, slapd and an SMTP server (marker ``faults``; part of ``make test``).

Per fault kind, ITPORTAL_FAULT_JOBS jobs (default 1000): automated requests in fulfilment
with their committed jobs, woken as the approval's ``on_commit`` would. When a quarter has
settled, one fault hits the running pipeline:

- ``postgresql_restarted``: the private cluster the workers use stops and starts again;
- ``redis_restarted_flushed``: the private broker loses every message and restarts (a
  worker busy then stops consuming, celery/celery#10302, until its watchdog restarts the
  consumer: itportal/watchdog.py);
- ``worker_sigkilled``: one of two provisioning workers is killed, its supervisor starts
  a new one;
- ``slapd_stopped`` / ``slapd_hung``: the directory stops (or is frozen with SIGSTOP) for
  longer than the directory timeout, then comes back;
- ``twins``: half the jobs revoke one of two entitlements to the same membership while the
  other half grant the second one: the member must stay.

Nothing is done by hand afterwards: beat runs the sweepers every second with the short
thresholds passed through the environment, and every worker and beat is supervised as
systemd's ``Restart=always`` does it (tests/fault_support.py); no process may end except
the one killed and a worker the watchdog ends (exit code 75). The test waits until every
job, request and mail has settled, then counts against what must be: memberships read back
with ldapsearch, outbox rows (one per request, recipient and event) and the copies the SMTP
server got. lost, extra and duplicated must be 0; the counts are shown at the end of the run.

The workers use a private PostgreSQL cluster (the test database is copied there after
seeding), a private redis-server and the session's private slapd; the shared services are
never restarted. Production's layout is kept: provisioning and mail have workers of their
own (a killed provisioning worker never holds a mail, whose interrupted send ends
"uncertain" for an admin by design).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from itportal.watchdog import EXIT_STALLED
from notifications.choices import MailState
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from provisioning.tasks import run_provisioning_job
from requests_app.choices import RequestState
from requests_app.notifications import FULFILLED, KIND_PREFIX
from tests.fault_support import (
    SUCCESS_NOTES,
    Beat,
    Broker,
    Deadline,
    PrivatePostgres,
    PrivateRedis,
    Worker,
    database_url,
    seed_group_jobs,
    seed_people,
    seed_requests,
)
from tests.mail_support import start_smtp_server
from tests.provisioning_support import add_group, automated_item, group_action, members

pytestmark = pytest.mark.faults

JOBS = int(os.environ.get("ITPORTAL_FAULT_JOBS", "1000"))
GROUPS = 5
FAULT_AT = 0.25  # share of settled jobs when the fault hits
DOWN_SECONDS = 4  # how long a server stays down (or hung): twice the directory timeout
DIRECTORY_TIMEOUT = 2
SWEEP_EVERY = 1  # beat's sweeps, seconds
SWEEP_AFTER = 5  # PROVISIONING_ / MAIL_SWEEP_AFTER_SECONDS
LEASE_SECONDS = 10  # above one job's longest run here (a hung directory: the timeout)
QUIET_SECONDS = 3  # after settling: time for a late duplicate to show
DEADLINE_SECONDS = 900  # a hang guard, not a timing assertion
RESTART_AFTER = 1  # the supervisor's delay (systemd RestartSec=5, scripts/demo.sh 2 s)
WATCHDOG = {"WORKER_WATCHDOG_SECONDS": "1", "WORKER_STALLED_AFTER_SECONDS": "5"}
KINDS = [
    "postgresql_restarted",
    # A provisioning worker busy when Redis goes stops consuming (celery/celery#10302);
    # the worker watchdog (itportal/watchdog.py) restarts its consumer. A task running then
    # (a mail on the wire) is not cancelled but finishes (tests/test_mail_consumer_restart.py).
    "redis_restarted_flushed",
    "worker_sigkilled",
    "slapd_stopped",
    "slapd_hung",
    "twins",
]
FINAL_JOBS = (JobState.SUCCEEDED, JobState.FAILED)
FINAL_REQUESTS = (RequestState.FULFILLED, RequestState.FAILED, RequestState.CANCELLED)
OPEN_MAILS = (MailState.PENDING, MailState.RETRYING, MailState.SENDING)


@dataclass
class Servers:
    redis: PrivateRedis
    postgres: PrivatePostgres
    sink: object  # tests.mail_support.SmtpSink
    smtp_port: int


@pytest.fixture(scope="module")
def servers():
    """A private Redis, a private PostgreSQL cluster and an SMTP server for the module."""
    if connection.vendor != "postgresql":
        pytest.skip("the workers share the database: PostgreSQL only")
    root = Path(tempfile.mkdtemp(prefix="itp-faults-"))
    redis_server = PrivateRedis(root)
    postgres = PrivatePostgres()
    sink, controller = start_smtp_server()
    try:
        redis_server.start()
        postgres.init()
        postgres.start()
        yield Servers(redis_server, postgres, sink, controller.port)
    finally:
        controller.stop()
        redis_server.stop()
        postgres.remove()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Scenario:
    """What was seeded and what must hold after recovery."""

    job_ids: list[int]
    members: dict[str, set[str]]  # group DN (lower case) -> member DNs
    requests: dict[int, str]  # request id -> final state
    mails: set[tuple[int, int, str]]  # (request id, recipient id, kind)
    entitlements: dict[int, str] = field(default_factory=dict)  # request id -> state
    faults: int = 1


def _groups_and_items(org, directory, prefix, items_per_group=1):
    groups = [add_group(directory, f"{prefix}-{k}") for k in range(GROUPS)]
    items = [
        [
            automated_item(
                org.service_desk,
                group_action(dn),
                name=f"Gruppe {k}.{n}",
                slug=f"{prefix}-{k}-{n}",
            )
            for k, dn in enumerate(groups)
        ]
        for n in range(items_per_group)
    ]
    return groups, items


def _seed_grants(org, directory, prefix: str) -> Scenario:
    """JOBS people, each with a request in fulfilment and its one add-to-group job."""
    groups, (items,) = _groups_and_items(org, directory, prefix)
    uids = [f"{prefix}{i:05d}" for i in range(JOBS)]
    requests = seed_requests(org, seed_people(org, directory, uids), items)
    jobs = seed_group_jobs(requests, groups)
    expected = {dn.lower(): {directory.bind_dn.lower()} for dn in groups}
    for i, uid in enumerate(uids):
        expected[groups[i % GROUPS].lower()].add(directory.user_dn(uid).lower())
    return Scenario(
        job_ids=[job.pk for job in jobs],
        members=expected,
        requests={r.pk: RequestState.FULFILLED for r in requests},
        mails={(r.pk, r.requester_id, KIND_PREFIX + FULFILLED) for r in requests},
        entitlements={r.pk: EntitlementState.ACTIVE for r in requests},
    )


def _seed_twins(org, directory, prefix: str) -> Scenario:
    """JOBS/2 people who are in a group through a fulfilled request (entitlement A) and
    ordered a second item granting the same group (request B, in fulfilment). A is being
    revoked while B's grant runs: each person gets a revoke job and a grant job."""
    pairs = JOBS // 2
    groups, (first, second) = _groups_and_items(org, directory, prefix, items_per_group=2)
    uids = [f"{prefix}{i:05d}" for i in range(pairs)]
    people = seed_people(org, directory, uids)
    conn = directory.connection()
    try:
        for k, dn in enumerate(groups):
            dns = [directory.user_dn(uid) for uid in uids[k::GROUPS]]
            assert conn.modify(dn, {"member": [(ldap3.MODIFY_ADD, dns)]}), conn.result
    finally:
        conn.unbind()
    held = seed_requests(org, people, first, state=RequestState.FULFILLED, closed_at=timezone.now())
    seed_group_jobs(held, groups, state=JobState.SUCCEEDED, attempts=1)
    entitlements = Entitlement.objects.bulk_create(
        Entitlement(
            holder=r.beneficiary,
            item=r.item,
            request=r,
            state=EntitlementState.REVOKING,
            revoke_reason="fault suite",
        )
        for r in held
    )
    revokes = ProvisioningJob.objects.bulk_create(  # as entitlement_revoke writes them
        ProvisioningJob(
            request=e.request,
            entitlement=e,
            direction=Direction.REVOKE,
            position=1,
            kind=ActionKind.REMOVE_FROM_GROUP,
            user_uid=e.holder.personnel_number,
            target_dn=groups[i % GROUPS],
            dialect="openldap",
            due_at=timezone.now(),
        )
        for i, e in enumerate(entitlements)
    )
    ordered = seed_requests(org, people, second)
    grants = seed_group_jobs(ordered, groups)
    expected = {dn.lower(): {directory.bind_dn.lower()} for dn in groups}
    for i, uid in enumerate(uids):
        expected[groups[i % GROUPS].lower()].add(directory.user_dn(uid).lower())
    # Interleaved, so a revoke and the grant of the same person run close together.
    job_ids = [pk for pair in zip(revokes, grants, strict=True) for pk in (pair[0].pk, pair[1].pk)]
    return Scenario(
        job_ids=job_ids,
        members=expected,
        requests={r.pk: RequestState.FULFILLED for r in [*held, *ordered]},
        mails={(r.pk, r.requester_id, KIND_PREFIX + FULFILLED) for r in ordered},
        entitlements={
            **{r.pk: EntitlementState.REVOKED for r in held},
            **{r.pk: EntitlementState.ACTIVE for r in ordered},
        },
        faults=pairs,
    )


class Readback:
    """The workers' database, read with plain SQL (it is not one of Django's)."""

    def __init__(self, url: str):
        self.url = url

    def rows(self, sql: str, params=()) -> list[tuple]:
        with contextlib.closing(psycopg.connect(self.url, connect_timeout=10)) as conn:
            return conn.execute(sql, params).fetchall()

    def job_states(self, ids) -> Counter:
        rows = self.rows(
            "SELECT state, count(*) FROM provisioning_provisioningjob "
            "WHERE id = ANY(%s) GROUP BY state",
            [list(ids)],
        )
        return Counter(dict(rows))

    def settled_or_unreachable(self, scenario: Scenario) -> bool:
        """``settled``, counting the observer's own failed connection as "not yet": on a
        loaded CI machine its connect may time out while the cluster is fine. The deadline
        still bounds the wait, and the final check after the quiet period must connect."""
        try:
            return self.settled(scenario)
        except psycopg.OperationalError:
            return False

    def settled(self, scenario: Scenario) -> bool:
        """Every job, request and mail has reached a state nothing moves it out of by itself."""
        open_jobs = self.rows(
            "SELECT count(*) FROM provisioning_provisioningjob WHERE NOT state = ANY(%s)",
            [list(FINAL_JOBS)],
        )[0][0]
        open_requests = self.rows(
            "SELECT count(*) FROM requests_app_servicerequest WHERE id = ANY(%s) "
            "AND NOT state = ANY(%s)",
            [list(scenario.requests), list(FINAL_REQUESTS)],
        )[0][0]
        open_mails = self.rows(
            "SELECT count(*) FROM notifications_outgoingmail WHERE state = ANY(%s)",
            [list(OPEN_MAILS)],
        )[0][0]
        return open_jobs == open_requests == open_mails == 0


def _message_uuid(message) -> str:
    return str(message["Message-ID"]).strip().strip("<>").split("@", 1)[0]


def _count(scenario: Scenario, db: Readback, directory, received: list) -> dict:
    """lost / extra / duplicated, with the details behind each."""
    lost, extra, duplicated = Counter(), Counter(), Counter()
    jobs = db.rows(
        "SELECT id, state, kind, log FROM provisioning_provisioningjob WHERE id = ANY(%s)",
        [scenario.job_ids],
    )
    lost["jobs not succeeded"] = sum(state != JobState.SUCCEEDED for _id, state, _k, _l in jobs)
    lost["jobs missing"] = len(scenario.job_ids) - len(jobs)
    duplicated["grants applied twice"] = sum(
        sum(line.endswith(SUCCESS_NOTES) for line in log.splitlines()) > 1
        for _id, _state, kind, log in jobs
        if kind == ActionKind.ADD_TO_GROUP
    )
    requests = dict(
        db.rows(
            "SELECT id, state FROM requests_app_servicerequest WHERE id = ANY(%s)",
            [list(scenario.requests)],
        )
    )
    lost["requests not as expected"] = sum(
        requests.get(pk) != want for pk, want in scenario.requests.items()
    )
    entitlements = dict(db.rows("SELECT request_id, state FROM provisioning_entitlement"))
    lost["entitlements not as expected"] = sum(
        entitlements.get(pk) != want for pk, want in scenario.entitlements.items()
    )
    extra["entitlements unexpected"] = len(set(entitlements) - set(scenario.entitlements))
    for group_dn, want in scenario.members.items():
        have = members(directory, group_dn)  # the real ldapsearch
        lost["memberships"] += len(want - have)
        extra["memberships"] += len(have - want)
    mails = db.rows(
        "SELECT id::text, (params->>'request_id')::int, recipient_id, kind, state "
        "FROM notifications_outgoingmail"
    )
    keys = Counter((request_id, recipient, kind) for _id, request_id, recipient, kind, _s in mails)
    lost["mails not written"] = len(scenario.mails - set(keys))
    extra["mails not expected"] = sum(n for key, n in keys.items() if key not in scenario.mails)
    duplicated["mail rows"] = sum(n - 1 for n in keys.values() if n > 1)
    copies = Counter(_message_uuid(message) for message in received)
    ours = {mail_id for mail_id, *_rest in mails}
    lost["mails not received"] = sum(copies[mail_id] == 0 for mail_id in ours)
    lost["mails not marked sent"] = sum(state != MailState.SENT for *_rest, state in mails)
    duplicated["mails received twice"] = sum(n - 1 for n in copies.values() if n > 1)
    extra["mails received without a row"] = sum(n for m, n in copies.items() if m not in ours)
    return {"lost": lost, "extra": extra, "duplicated": duplicated, "jobs": len(jobs)}


def _env(servers: Servers, db_url: str, queue: str, directory) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": servers.redis.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ITPORTAL_TEST_QUEUE": queue,
        "ITPORTAL_TEST_MAIL_QUEUE": f"{queue}.mail",
        "ITPORTAL_TEST_SMTP_PORT": str(servers.smtp_port),
        "ITPORTAL_TEST_SWEEP_EVERY_SECONDS": str(SWEEP_EVERY),
        "PROVISIONING_SWEEP_AFTER_SECONDS": str(SWEEP_AFTER),
        "PROVISIONING_LEASE_SECONDS": str(LEASE_SECONDS),
        "PROVISIONING_RETRY_BASE_SECONDS": "0.5",
        "PROVISIONING_RETRY_MAX_SECONDS": "4",
        "MAIL_SWEEP_AFTER_SECONDS": str(SWEEP_AFTER),
        "MAIL_RETRY_BASE_SECONDS": "0.5",
        "MAIL_RETRY_MAX_SECONDS": "4",
        # Production's default. With 5 s a loaded machine (2 cores, load 15) let the client
        # give up on an answer the sink had already sent: SMTP's own window (accepted, answer
        # lost), retried as not sent, counted as a duplicate (once, 2026-12-05).
        "EMAIL_TIMEOUT": "30",
        "LANGUAGE_CODE": "en",
        "LOG_LEVEL": "WARNING",
        **{f"DIRECTORY_{key.upper()}": value for key, value in directory.config_kwargs().items()},
        "DIRECTORY_TIMEOUT": str(DIRECTORY_TIMEOUT),
        **WATCHDOG,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_fault(kind, servers, org, directory, settings, tmp_path, record_property):
    started = time.monotonic()
    settings.CELERY_TASK_ALWAYS_EAGER = False  # this process publishes to the broker
    prefix = kind.split("_")[0][:5]
    scenario = (_seed_twins if kind == "twins" else _seed_grants)(org, directory, prefix)
    db_url = servers.postgres.copy_database(database_url(connection.settings_dict), f"f_{kind}")
    db = Readback(db_url)
    queue = f"itportal-faults-{uuid.uuid4().hex}"
    env = _env(servers, db_url, queue, directory)
    received_before = len(servers.sink.messages)
    processes: list = []
    deadline = Deadline(
        DEADLINE_SECONDS, processes, lambda: f"jobs: {dict(db.job_states(scenario.job_ids))}"
    )
    stopped = False
    try:
        # Every process supervised as systemd (Restart=always) and scripts/demo.sh do it.
        supervised = {"env": env, "restart_after": RESTART_AFTER}
        provisioning = [
            Worker(f"{prefix}-a", queue, log_path=tmp_path / "a.log", concurrency=3, **supervised)
        ]
        if kind == "worker_sigkilled":
            provisioning.append(
                Worker(f"{prefix}-b", queue, log_path=tmp_path / "b.log", **supervised)
            )
        processes += [
            *provisioning,
            Worker(f"{prefix}-mail", f"{queue}.mail", log_path=tmp_path / "mail.log", **supervised),
            Beat(log_path=tmp_path / "beat.log", **supervised),
        ]
        seeded = time.monotonic()
        Broker(servers.redis.url, queue).wake(
            run_provisioning_job,
            ProvisioningJob.objects.filter(pk__in=scenario.job_ids).order_by("pk"),
        )

        # The fault, when a quarter of the jobs has settled and others are running.
        while True:
            states = db.job_states(scenario.job_ids)
            if sum(states[s] for s in FINAL_JOBS) >= FAULT_AT * len(scenario.job_ids) and (
                states[JobState.RUNNING] or kind == "twins"
            ):
                break
            deadline.check("the first quarter of the jobs")
            time.sleep(0.02)
        at_fault = dict(states)
        if kind == "postgresql_restarted":
            servers.postgres.restart(down_seconds=DOWN_SECONDS)
        elif kind == "redis_restarted_flushed":
            servers.redis.restart(flush=True, down_seconds=DOWN_SECONDS)
        elif kind == "worker_sigkilled":
            provisioning[0].kill()  # its supervisor starts a new one
        elif kind == "slapd_stopped":
            directory.stop()
            time.sleep(DOWN_SECONDS)
            directory.start()
        elif kind == "slapd_hung":
            pid = directory.pid
            os.kill(pid, signal.SIGSTOP)
            stopped = True
            time.sleep(DOWN_SECONDS)
            os.kill(pid, signal.SIGCONT)
            stopped = False
        recovered = time.monotonic()

        while not db.settled_or_unreachable(scenario):
            deadline.check("every job, request and mail to settle")
            time.sleep(0.2)
        converged = time.monotonic()
        time.sleep(QUIET_SECONDS)
        assert db.settled(scenario)
    finally:
        if stopped:
            os.kill(directory.pid, signal.SIGCONT)
        for process in processes:
            process.stop()
    counts = _count(scenario, db, directory, servers.sink.messages[received_before:])
    lost, extra, duplicated = (sum(counts[k].values()) for k in ("lost", "extra", "duplicated"))
    exits = {p.name: p.exits for p in processes if p.exits}
    summary = (
        f"fault {kind}: jobs {counts['jobs']}, faults {scenario.faults}, lost {lost}, "
        f"extra {extra}, duplicated {duplicated}, converged {converged - recovered:.1f} s "
        f"after recovery; fault at {at_fault}; exits {exits}; seeding "
        f"{seeded - started:.1f} s, total {time.monotonic() - started:.1f} s"
    )
    print("\n" + summary)
    record_property("fault suite", summary)  # shown after the run (tests/conftest.py)
    # No process ends, except the one killed (its supervisor started it again) and a
    # worker the watchdog ended for its supervisor to start anew.
    killed = {provisioning[0].name: [-signal.SIGKILL]} if kind == "worker_sigkilled" else {}
    unexpected = {
        name: [code for code in codes if code != EXIT_STALLED]
        for name, codes in exits.items()
        if killed.get(name) != codes
    }
    assert not any(unexpected.values()), f"a worker or beat ended: {unexpected}"
    assert counts["jobs"] >= JOBS
    details = {
        k: {n: v for n, v in counts[k].items() if v} for k in ("lost", "extra", "duplicated")
    }
    assert (lost, extra, duplicated) == (0, 0, 0), details
