"""Scaffolding for tests that run the real pipeline in other processes and break it:
Celery workers and beat, the test's queue on Redis, a private Redis and a private
PostgreSQL cluster that a test may restart, and bulk seeding of provisioning work.

Used by tests/test_worker_crash.py and tests/test_faults.py. The worker processes use
tests/worker_settings.py (no eager mode, the test's own queues).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from catalogue.models import Employee
from devtools.devdirectory import _die_with_parent, ldif_entry
from provisioning.choices import ActionKind, Direction
from provisioning.models import ProvisioningJob
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.mail_support import free_port

BASE_DIR = Path(__file__).resolve().parent.parent
# The success note of each run; a job redelivered after its write says its change was
# applied already ("... by an earlier attempt (add to group)").
SUCCESS_NOTES = (
    "added to group",
    "already a member",
    "(add to group)",
    # The workers write the log in the portal's language (LANGUAGE_CODE, German by default).
    "zur Gruppe hinzugefügt",
    "bereits Mitglied",
    "(zur Gruppe hinzufügen)",
)
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"  # kombu's Redis keys


def database_url(db: dict) -> str:
    """A Django database settings dict (e.g. the test database) as a URL for a worker."""
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"


def group_alive(pgid: int) -> bool:
    """Some process of the group is still alive (zombies waiting for a reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


class CeleryProcess:
    """``celery -A itportal <command>`` in a session of its own: the main process and its
    pool children form one process group, killed together.

    ``restart_after``: supervised as systemd's ``Restart=always`` (deploy/systemd) and
    scripts/demo.sh do it: whatever ends the process, a new one starts that many seconds
    later, until ``stop()``. ``exits`` lists the exit codes of the ends."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        log_path: Path,
        restart_after: float | None = None,
    ):
        self.name, self.log_path, self.env = name, log_path, env
        self.argv = [sys.executable, "-m", "celery", "-A", "itportal", *command, "-l", "warning"]
        self.exits: list[int] = []
        self.stopping, self.lock = threading.Event(), threading.Lock()
        self.process = self._spawn()
        if restart_after is not None:
            threading.Thread(target=self._supervise, args=(restart_after,), daemon=True).start()

    def _spawn(self) -> subprocess.Popen:
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                self.argv,
                cwd=BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # no orphans when the test run is killed
            )

    def _supervise(self, delay: float) -> None:
        while True:
            code = self.process.wait()
            if self.stopping.is_set():
                return
            self.exits.append(code)
            if self.stopping.wait(delay):
                return
            with self.lock:  # never a new one after stop() began
                if self.stopping.is_set():
                    return
                self.process = self._spawn()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        process = self.process  # a supervisor may start the next one meanwhile
        pgid = process.pid
        with contextlib.suppress(ProcessLookupError):
            # SIGKILL ends the whole group; any other signal goes to the main process alone,
            # as systemd's KillMode=mixed does (deploy/systemd): a pool child that got the
            # SIGTERM itself would die mid-task instead of finishing it in a warm shutdown.
            if sig == signal.SIGKILL:
                os.killpg(pgid, sig)
            else:
                os.kill(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        if sig != signal.SIGKILL and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(timeout)
        deadline = time.monotonic() + timeout
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):  # a pool child left behind
            os.killpg(pgid, signal.SIGKILL)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), SIGKILL if it does not end in time; not restarted."""
        with self.lock:
            self.stopping.set()
        self.kill(signal.SIGTERM, timeout=10.0)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class Worker(CeleryProcess):
    """A prefork worker on ``queue``."""

    def __init__(
        self,
        name: str,
        queue: str,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 2,
        restart_after: float | None = None,
    ):
        command = [
            *("worker", "--pool=prefork", f"--concurrency={concurrency}", "-Q", queue),
            *("-n", f"{name}@%h", "--without-heartbeat", "--without-mingle", "--without-gossip"),
        ]
        super().__init__(name, command, env, log_path, restart_after)


class Beat(CeleryProcess):
    """Celery beat with its schedule file next to its log."""

    def __init__(self, env: dict[str, str], log_path: Path, restart_after: float | None = None):
        schedule = log_path.with_suffix(".schedule")
        super().__init__("beat", ["beat", "-s", str(schedule)], env, log_path, restart_after)


class Broker:
    """The test's own queue on a Redis broker, looked at with the redis client."""

    def __init__(self, url: str, queue: str):
        self.url, self.queue = url, queue
        self.client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
        try:
            self.client.ping()
        except redis.RedisError as exc:
            pytest.fail(
                f"no Redis answers at {url} ({exc}): run scripts/ensure-redis.sh and set "
                "CELERY_BROKER_URL to what it prints"
            )

    def waiting(self) -> int:
        return self.client.llen(self.queue)

    def task_args(self, queue: str) -> list[list]:
        """The positional arguments of the tasks waiting in ``queue``."""
        args = []
        for raw in self.client.lrange(queue, 0, -1):
            body = base64.b64decode(json.loads(raw)["body"])
            args.append(json.loads(body)[0])
        return args

    def task_ids(self, tags: set[bytes] | None = None) -> set[str]:
        """Celery task ids of the unacknowledged messages ``tags``, or of the waiting ones."""
        if tags is None:
            raws = self.client.lrange(self.queue, 0, -1)
        else:
            raws = [json.loads(self.client.hget(UNACKED, tag))[0] for tag in tags]
            raws = [json.dumps(raw) for raw in raws]
        return {json.loads(raw)["headers"]["id"] for raw in raws}

    def unacked(self) -> set[bytes]:
        """Delivery tags of this queue's messages delivered to a worker and not acknowledged."""
        tags = set()
        for tag, raw in self.client.hscan_iter(UNACKED):
            with contextlib.suppress(ValueError, TypeError):
                if json.loads(raw)[2] == self.queue:
                    tags.add(tag)
        return tags

    def redeliver(self, tags: set[bytes]) -> None:
        """What Redis does with these messages when their visibility timeout has passed."""
        from kombu import Connection

        with Connection(self.url) as conn:
            for tag in tags:
                conn.default_channel.qos.restore_by_tag(tag)

    def publish(self, task, ids, queue: str | None = None) -> None:
        """Send ``task(id)`` for each id to this broker, as an ``on_commit`` wake-up would."""
        from kombu import Connection

        with Connection(self.url) as conn, conn.Producer() as producer:
            for pk in ids:
                task.apply_async((pk,), queue=queue or self.queue, producer=producer)

    def wake(self, task, jobs) -> None:
        """Wake the jobs as the approvals' ``on_commit`` does, one approval after another
        (``services.jobs_wake``): a membership job whose group has a message waiting sends
        none (provisioning.wakes)."""
        from provisioning import wakes

        for job in jobs:
            if wakes.to_send([job], client=self.client):
                self.publish(task, [job.pk])

    def purge(self) -> None:
        """Delete the queues named after ours (all priorities), their bindings and our
        unacknowledged messages."""
        keys = list(self.client.scan_iter(match=f"*{self.queue}*"))
        if keys:
            self.client.delete(*keys)
        for tag in self.unacked():
            self.client.pipeline().hdel(UNACKED, tag).zrem(UNACKED_INDEX, tag).execute()


class Deadline:
    """A hang guard, not a timing assertion: fails the test with the workers' logs."""

    def __init__(self, seconds: float, workers: list[CeleryProcess], describe=lambda: ""):
        self.end, self.workers, self.describe = time.monotonic() + seconds, workers, describe

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            logs = "\n".join(f"--- {w.name}:\n{w.log_tail()}" for w in self.workers)
            pytest.fail(f"timed out waiting for {what}; {self.describe()}\n{logs}")


# --- private servers a test may restart -----------------------------------------------------


def _wait(ready, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.05)


class PrivateRedis:
    """redis-server on a free loopback port, without persistence: a restart loses everything
    (as a flushed broker would)."""

    def __init__(self, root: Path):
        self.root, self.port, self.process = root, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with open(self.root / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
        _wait(self._answers, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # no save, nothing to wait for
            self.process.wait(10)
        self.process = None

    def restart(self, *, flush: bool, down_seconds: float = 0.0) -> None:
        if flush:
            self.client.flushall()
        self.stop()
        time.sleep(down_seconds)
        self.start()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (Debian's binaries) on a free port under a directory of
    its own in /tmp (readable by the ``postgres`` user, which runs it when we are root)."""

    def __init__(self):
        self.bin = self._bindir()
        self.root = Path(tempfile.mkdtemp(prefix="itp-faults-pg-"))
        self.data, self.port = self.root / "data", free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @staticmethod
    def _bindir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if found:
            return found[-1].parent
        pg_ctl = shutil.which("pg_ctl")
        if pg_ctl is None:
            pytest.skip("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
        return Path(pg_ctl).resolve().parent

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run(
            [*prefix, *argv], check=True, capture_output=True, cwd=self.root, timeout=120
        )

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, *, down_seconds: float = 0.0) -> None:
        self.stop("fast")
        time.sleep(down_seconds)
        self.start()

    def copy_database(self, source_url: str, name: str) -> str:
        """A copy of the database at ``source_url`` (schema and rows) as ``name`` here."""
        psql, dump = str(self.bin / "psql"), str(self.bin / "pg_dump")
        subprocess.run([psql, self.url("postgres"), "-qc", f'CREATE DATABASE "{name}"'], check=True)
        dumped = subprocess.Popen([dump, "--no-owner", source_url], stdout=subprocess.PIPE)
        subprocess.run(
            [psql, "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
            stdin=dumped.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        assert dumped.wait() == 0
        return self.url(name)

    def remove(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- bulk seeding ---------------------------------------------------------------------------


def seed_people(org, directory, uids: list[str]) -> list[Employee]:
    """People in the slapd and the portal (uid = personnel number), in bulk."""
    directory.load_ldif(
        "\n".join(
            ldif_entry(
                directory.user_dn(uid),
                {"objectClass": "inetOrgPerson", "uid": uid, "cn": f"Person {uid}", "sn": uid},
            )
            for uid in uids
        )
    )
    password = make_password(None)
    users = get_user_model().objects.bulk_create(
        get_user_model()(
            username=uid,
            first_name="Person",
            last_name=uid,
            email=f"{uid}@musterstadt.example",
            password=password,
        )
        for uid in uids
    )
    return Employee.objects.bulk_create(
        Employee(user=user, personnel_number=uid, department=org.department, manager=org.manager)
        for user, uid in zip(users, uids, strict=True)
    )


def seed_requests(org, employees, items, state=RequestState.IN_FULFILMENT, **fields):
    """One request per employee for ``items[i % len(items)]``, already in ``state``."""
    now = timezone.now()
    snapshots = [item.snapshot() for item in items]
    return ServiceRequest.objects.bulk_create(
        ServiceRequest(
            requester=employee.user,
            beneficiary=employee,
            item=items[i % len(items)],
            item_version=items[i % len(items)].version,
            item_snapshot=snapshots[i % len(items)],
            answers={},
            cost_centre=org.cost_centre,
            price_once=items[i % len(items)].price_once,
            price_monthly=items[i % len(items)].price_monthly,
            fulfilment_group=org.service_desk,
            state=state,
            created_at=now,
            submitted_at=now,
            approved_at=now,
            fulfilment_started_at=now,
            **fields,
        )
        for i, employee in enumerate(employees)
    )


def seed_group_jobs(requests, groups: list[str], **fields) -> list[ProvisioningJob]:
    """The one add-to-group job of each request (group ``groups[i % len(groups)]``), due now:
    the jobs of one request run one after another, these all at once."""
    now = timezone.now()
    return ProvisioningJob.objects.bulk_create(
        ProvisioningJob(
            request=request,
            direction=Direction.GRANT,
            position=1,
            user_uid=request.beneficiary.personnel_number,
            target_dn=groups[i % len(groups)],
            due_at=now,
            **{"kind": ActionKind.ADD_TO_GROUP, "dialect": "openldap", **fields},
        )
        for i, request in enumerate(requests)
    )
