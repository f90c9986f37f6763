"""Benchmark: provisioning in bulk, Celery workers against plain ldap3, in the same run.

A private slapd with fsync on (no ``dbnosync``), PostgreSQL from DATABASE_URL (a throwaway
test database is created and dropped), Redis from CELERY_BROKER_URL (its ``provisioning``,
``notifications`` and ``reports`` queues are purged before and after: use a Redis database
of your own).

- Baseline: ``--processes`` plain ldap3 processes, one connection each, add the orders'
  members to groups of their own, one modify per member as a naive client would.
- Measured: ``--orders`` approved group-membership orders (requests in fulfilment with their
  add-to-group job, as the approval's transaction leaves them) spread over ``--groups``
  groups; one Celery prefork worker with ``--processes`` pool processes on Redis runs them,
  woken as the approvals' on_commit wakes them, one job at a time (``jobs_wake``: a
  membership job whose group has a message waiting sends none, provisioning/wakes.py).
  From the first wake-up to the last request fulfilled.
- Both read back afterwards: every member in every group, through a separate ldap3
  connection; every job succeeded, every request fulfilled, every entitlement granted.
- Idle latency: ``--samples`` single orders approved one after another on the idle system
  (through ``request_approve``, the real on_commit wake-up), from the approval's call to the
  member being readable in the directory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/bench_provisioning_bulk.py [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.provisioning_settings")

QUEUES = ("provisioning", "notifications", "reports")


def _raw_adds(url, bind_dn, password, pairs, ready, go, out) -> None:
    """One baseline process: bind, wait for the start, one modify per member."""
    import ldap3

    conn = ldap3.Connection(url, bind_dn, password, auto_bind=True)
    ready.put(1)
    go.wait()
    started = time.time()
    failed = 0
    for group, member in pairs:
        if not conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [member])]}):
            failed += 1
    out.put((started, time.time(), failed))
    conn.unbind()


def baseline(slapd, pairs, processes: int) -> tuple[float, int]:
    """Seconds from the first process's start to the last one's end, and the refusals."""
    context = multiprocessing.get_context("fork")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(
            target=_raw_adds,
            args=(slapd.url, slapd.bind_dn, slapd.bind_password, pairs[i::processes]),
            kwargs={"ready": ready, "go": go, "out": out},
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _worker in workers:
        ready.get(timeout=60)
    go.set()
    results = [out.get(timeout=3600) for _worker in workers]
    for worker in workers:
        worker.join()
    return (
        max(end for _s, end, _f in results) - min(start for start, _e, _f in results),
        sum(failed for *_t, failed in results),
    )


def group_members(slapd, group_dn) -> set[str]:
    import ldap3

    conn = ldap3.Connection(slapd.url, slapd.bind_dn, slapd.bind_password, auto_bind=True)
    try:
        conn.search(group_dn, "(objectClass=*)", ldap3.BASE, attributes=["member"])
        return {str(m).lower() for m in conn.entries[0].entry_attributes_as_dict["member"]}
    finally:
        conn.unbind()


def add_groups(slapd, names) -> list[str]:
    from devtools.devdirectory import ldif_entry

    slapd.load_ldif(
        "\n".join(
            ldif_entry(
                slapd.group_dn(name),
                {"objectClass": ["groupOfNames"], "cn": name, "member": [slapd.bind_dn]},
            )
            for name in names
        )
    )
    return [slapd.group_dn(name) for name in names]


def wake(jobs) -> None:
    """What each approval's on_commit does for its job, one approval after another."""
    from provisioning.services import jobs_wake

    for job in jobs:
        jobs_wake([job])


def wait_settled(job_ids, request_ids, timeout: float) -> None:
    """Poll until every job and request has ended. Each id list goes as one array
    parameter: as an ``IN (…)`` list of 10,000 placeholders one poll cost 0.12–0.19 s of
    this process's CPU (compiling them) and 6–12 ms of PostgreSQL's planning, ten times a
    second, taken from the two cores the measured workers share; the plain side has no
    poller."""
    from django.db import connection

    from provisioning.choices import JobState
    from provisioning.models import ProvisioningJob
    from requests_app.choices import RequestState
    from requests_app.models import ServiceRequest

    def open_rows(model, ids, ended) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {model._meta.db_table} "  # noqa: S608 - our table
                "WHERE id = ANY(%s::bigint[]) AND NOT state = ANY(%s::text[]))",
                [list(ids), [str(state) for state in ended]],
            )
            return cursor.fetchone()[0]

    deadline = time.monotonic() + timeout
    while True:
        if not open_rows(
            ProvisioningJob, job_ids, [JobState.SUCCEEDED, JobState.FAILED]
        ) and not open_rows(
            ServiceRequest, request_ids, [RequestState.FULFILLED, RequestState.FAILED]
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled after {timeout} s")
        time.sleep(0.1)


def measure(
    slapd, org, *, orders, groups, processes, samples, workdir: Path, broker_url: str
) -> dict:
    """The whole comparison on a prepared database and slapd; returns the figures."""
    import ldap3
    from django.conf import settings
    from django.db import connection
    from ldap3.utils.conv import escape_filter_chars

    from provisioning.choices import EntitlementState, JobState
    from provisioning.models import Entitlement, ProvisioningJob
    from requests_app import services as request_services
    from requests_app.choices import RequestState
    from requests_app.models import ServiceRequest
    from tests.fault_support import (
        Broker,
        Worker,
        database_url,
        seed_group_jobs,
        seed_people,
        seed_requests,
    )
    from tests.provisioning_support import automated_item, group_action

    settings.CELERY_TASK_ALWAYS_EAGER = False  # this process publishes, the workers run
    brokers = [Broker(broker_url, queue) for queue in QUEUES]
    for broker in brokers:
        broker.purge()
    uids = [f"k{i:06d}" for i in range(orders)]
    people = seed_people(org, slapd, uids)
    job_groups = add_groups(slapd, [f"jobs-{g}" for g in range(groups)])
    raw_groups = add_groups(slapd, [f"raw-{g}" for g in range(groups)])
    warm_groups = add_groups(slapd, [f"warm-{g}" for g in range(processes)])
    latency_group = add_groups(slapd, ["latency"])[0]

    # Baseline: the same members, groups of their own, plain ldap3.
    pairs = [(raw_groups[i % groups], slapd.user_dn(uid)) for i, uid in enumerate(uids)]
    raw_seconds, raw_refused = baseline(slapd, pairs, processes)

    # The orders: one item per group, as the approvals leave them (jobs due, requests in
    # fulfilment); a few more to warm the workers up.
    items = [automated_item(org.service_desk, group_action(group)) for group in job_groups]
    requests = seed_requests(org, people, items)
    jobs = seed_group_jobs(requests, job_groups)
    warm_people = seed_people(org, slapd, [f"w{i:03d}" for i in range(processes)])
    warm_items = [automated_item(org.service_desk, group_action(g)) for g in warm_groups]
    warm_jobs = seed_group_jobs(seed_requests(org, warm_people, warm_items), warm_groups)
    connection.close()  # the workers fork from a process of their own; nothing shared

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.provisioning_settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker_url,
        "LANGUAGE_CODE": "en",
        "LOG_LEVEL": "WARNING",
        **{f"DIRECTORY_{key.upper()}": value for key, value in slapd.config_kwargs().items()},
    }
    worker = Worker("bench", "provisioning", env, workdir / "worker.log", concurrency=processes)
    try:
        warm = [job.pk for job in warm_jobs]
        wake(warm_jobs)
        wait_settled(warm, [job.request_id for job in warm_jobs], timeout=120)

        job_ids = [job.pk for job in jobs]
        request_ids = [request.pk for request in requests]
        started = time.perf_counter()
        wake(jobs)
        wait_settled(job_ids, request_ids, timeout=3600)
        jobs_seconds = time.perf_counter() - started
        # Messages of jobs a batch ran already (sent before the group's key was set, or by a
        # full batch) may still be queued. Idle means they are gone too.
        deadline = time.monotonic() + 1800
        while brokers[0].waiting() or brokers[0].unacked():
            if time.monotonic() > deadline:
                raise TimeoutError("the provisioning queue did not drain")
            time.sleep(0.1)
        drained_seconds = time.perf_counter() - started

        # Idle latency: one order at a time, approved through the real path.
        item = automated_item(org.service_desk, group_action(latency_group))
        latency_people = seed_people(org, slapd, [f"l{i:03d}" for i in range(samples)])
        reader = ldap3.Connection(slapd.url, slapd.bind_dn, slapd.bind_password, auto_bind=True)
        latencies = []
        for person in latency_people:
            req = request_services.request_create(
                requester=person.user,
                item=item,
                item_version=item.version,
                beneficiary=person,
                cost_centre=org.cost_centre,
                answers={},
            )
            wanted = f"(member={escape_filter_chars(slapd.user_dn(person.personnel_number))})"
            time.sleep(0.3)  # idle: nothing else in flight
            began = time.perf_counter()
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
            while not reader.search(latency_group, wanted, ldap3.BASE, attributes=["1.1"]):
                if time.perf_counter() - began > 60:
                    raise TimeoutError(f"order {req.pk} not in the directory after 60 s")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - began)
        reader.unbind()
    finally:
        worker.stop()
        for broker in brokers:
            broker.purge()

    # Read back: every member in the directory, every job, request and entitlement.
    missing = 0
    for index, group in enumerate(job_groups):
        wanted = {slapd.user_dn(uid).lower() for uid in uids[index::groups]}
        missing += len(wanted - group_members(slapd, group))
    raw_missing = 0
    for index, group in enumerate(raw_groups):
        wanted = {slapd.user_dn(uid).lower() for uid in uids[index::groups]}
        raw_missing += len(wanted - group_members(slapd, group))
    succeeded = ProvisioningJob.objects.filter(pk__in=job_ids, state=JobState.SUCCEEDED).count()
    fulfilled = ServiceRequest.objects.filter(
        pk__in=request_ids, state=RequestState.FULFILLED
    ).count()
    granted = Entitlement.objects.filter(
        request_id__in=request_ids, state=EntitlementState.ACTIVE
    ).count()
    latencies.sort()
    return {
        "orders": orders,
        "groups": groups,
        "processes": processes,
        "raw_seconds": raw_seconds,
        "raw_refused": raw_refused,
        "raw_missing": raw_missing,
        "jobs_seconds": jobs_seconds,
        "drained_seconds": drained_seconds,
        "succeeded": succeeded,
        "fulfilled": fulfilled,
        "granted": granted,
        "missing": missing,
        "latency_p50": statistics.median(latencies) if latencies else None,
        "latency_p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        if latencies
        else None,
        "samples": len(latencies),
    }


def table(result: dict) -> str:
    raw_rate = result["orders"] / result["raw_seconds"]
    job_rate = result["orders"] / result["jobs_seconds"]
    lines = [
        "| orders | groups | processes | plain ldap3 s | jobs s | plain ldap3 /s | jobs /s "
        "| ratio | verified | idle latency p50 / p95 s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {result['orders']} | {result['groups']} | {result['processes']} "
        f"| {result['raw_seconds']:.2f} | {result['jobs_seconds']:.2f} | {raw_rate:.0f} "
        f"| {job_rate:.0f} | {job_rate / raw_rate:.2f} "
        f"| {result['succeeded']} succeeded, {result['fulfilled']} fulfilled, "
        f"{result['granted']} granted, {result['missing']} missing "
        f"(plain: {result['raw_refused']} refused, {result['raw_missing']} missing) "
        f"| {result['latency_p50']:.3f} / {result['latency_p95']:.3f} "
        f"({result['samples']} orders) |",
        "",
        f"Provisioning queue empty {result['drained_seconds']:.2f} s after the first wake-up.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--samples", type=int, default=50, help="single approvals, idle")
    parser.add_argument("--quick", action="store_true", help="500 orders, 10 samples")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.samples = 500, 10

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    from devtools.devdirectory import PrivateSlapd
    from provisioning.backends import reset_backends
    from tests.conftest import Org

    broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    from django.conf import settings

    with tempfile.TemporaryDirectory() as tmp, PrivateSlapd(Path(tmp), dbnosync=False) as slapd:
        try:
            settings.DIRECTORY = {**settings.DIRECTORY, **slapd.config_kwargs()}
            reset_backends()
            result = measure(
                slapd,
                Org(),
                orders=args.orders,
                groups=args.groups,
                processes=args.processes,
                samples=args.samples,
                workdir=Path(tmp),
                broker_url=broker_url,
            )
            print(table(result))
            load = os.getloadavg()
            print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        finally:
            reset_backends()
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
