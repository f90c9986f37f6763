"""Scale-out on one machine: the production layout on loopback, from the deploy/ files.

Starts PgBouncer (deploy/pgbouncer/pgbouncer.ini, transaction mode) in front of a throwaway
PostgreSQL database with the demo city, a private slapd with the demo directory, two gunicorn
nodes (deploy/gunicorn.conf.py) behind HAProxy (deploy/haproxy/haproxy.cfg, TLS with a
self-signed certificate) and Celery workers on a Redis database of its own. Then measures:

(a) pages through the proxy: a logged-in session served by both nodes, and wrk's rate;
(b) provisioning throughput with 1, 2, 3 workers on the provisioning queue, against the
    directory's own rate (raw ldap3 writes);
(c) orders placed by several employees while one web node is killed (SIGKILL) mid-load:
    every order answered as placed is in the database, none twice, and the only server errors
    are the requests that node had in hand.

Everything listens on 127.0.0.1; every loop is bounded in count and time. Needs Debian's
haproxy, pgbouncer and wrk (scripts/bootstrap.sh installs them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scaleout.py [--redis-db 15] [--jobs 300] [--load-seconds 20]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

DB_NAME = "itportal_scaleout"
PASSWORD = "bench-Pass-1"  # noqa: S105 - throwaway accounts of the throwaway database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def wait_until_ok(url: str, seconds: float = 120) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            verify = str(CERT) if CERT else True
            response = requests.get(url, timeout=5, verify=verify, headers={"Host": "127.0.0.1"})
            if response.status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {seconds} s")


class Process:
    """A child in a session of its own (killed with all its children), output to a file."""

    def __init__(self, name: str, argv: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig=signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-db", type=int, default=15, help="an empty Redis database")
    parser.add_argument("--jobs", type=int, default=300, help="provisioning jobs per round")
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=8, help="employees ordering at once")
    args = parser.parse_args()

    import psycopg
    import redis

    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    broker_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    broker = redis.Redis.from_url(broker_url)
    if broker.dbsize():
        sys.exit(f"Redis database {args.redis_db} is not empty: choose another with --redis-db")
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
        admin.execute(f"ALTER DATABASE {DB_NAME} SET jit = off")  # PgBouncer drops `options`
    direct_url = with_database(server_url, DB_NAME)
    work = Path(tempfile.mkdtemp(prefix="itportal-scaleout-"))
    processes: list[Process] = []
    slapd = None
    print(f"work directory (logs): {work}", flush=True)

    common = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": str(work / "static"),
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": "consolemail://",
        "LOG_TRUST_REQUEST_ID": "true",
        "LANGUAGE_CODE": "en",
    }
    # The bench itself logs warnings only; the nodes log every request (served_by reads it).
    os.environ.update(common, DATABASE_URL=direct_url, DEV_TOOLS="true", LOG_LEVEL="WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "itportal.settings"
    try:
        from devtools.devdirectory import PrivateSlapd

        slapd = PrivateSlapd(work / "slapd", dbnosync=True)
        slapd.start()
        directory_env = {
            "DIRECTORY_URL": slapd.url,
            "DIRECTORY_BIND_DN": slapd.bind_dn,
            "DIRECTORY_BIND_PASSWORD": slapd.bind_password,
            "DIRECTORY_USER_BASE": slapd.people_base,
            "DIRECTORY_GROUP_BASE": slapd.group_base,
            "DIRECTORY_LOGIN": "false",  # the bench logs in with local passwords
        }
        os.environ.update(directory_env)

        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password
        from django.core.management import call_command

        print("database: migrate, demo city, static files …", flush=True)
        call_command("migrate", verbosity=0)
        call_command("seed_demo", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        from devtools.demo_directory import build_demo_ldif

        slapd.load_ldif(build_demo_ldif(slapd.suffix), skip_existing=True)
        call_command("seed_demo_provisioning", verbosity=0)
        # One PBKDF2 hash for the ordering employees (production's hasher; fast enough here).
        users = list(
            get_user_model()
            .objects.filter(employee__isnull=False, is_active=True, is_superuser=False)
            .order_by("pk")[: args.users]
        )
        get_user_model().objects.filter(pk__in=[u.pk for u in users]).update(
            password=make_password(PASSWORD, hasher="pbkdf2_sha256")
        )

        # --- PgBouncer, from deploy/pgbouncer/pgbouncer.ini with loopback addresses ----
        bouncer_port = free_port()
        db = urlsplit(server_url)
        (work / "userlist.txt").write_text(f'"{db.username or "postgres"}" ""\n')
        ini = []
        overrides = {
            "itportal": (
                f"host={db.hostname or '127.0.0.1'} port={db.port or 5432} dbname={DB_NAME}"
            ),
            "listen_addr": "127.0.0.1",
            "listen_port": str(bouncer_port),
            "auth_type": "trust",  # the local server trusts loopback; production uses SCRAM
            "auth_file": str(work / "userlist.txt"),
        }
        for line in (ROOT / "deploy/pgbouncer/pgbouncer.ini").read_text().splitlines():
            key = line.split("=", 1)[0].strip()
            ini.append(f"{key} = {overrides[key]}" if key in overrides else line)
        (work / "pgbouncer.ini").write_text("\n".join(ini) + "\n")
        # PgBouncer drops root for nobody, who must read its files.
        os.chmod(work, 0o755)  # noqa: S103 - a throwaway directory of configuration
        bouncer_argv = ["pgbouncer", *(["-u", "nobody"] if os.geteuid() == 0 else [])]
        processes.append(
            Process(
                "pgbouncer",
                [*bouncer_argv, str(work / "pgbouncer.ini")],
                common,
                work / "pgbouncer.log",
            )
        )
        wait_for_port(bouncer_port)
        user = db.username or "postgres"
        pooled_url = f"postgres://{user}@127.0.0.1:{bouncer_port}/itportal"
        portal_env = {
            **common,
            **directory_env,
            "DATABASE_URL": pooled_url,
            "DATABASE_BEHIND_PGBOUNCER": "true",
        }

        # --- two web nodes and HAProxy --------------------------------------------------
        web_ports = [free_port(), free_port()]
        proxy_port, http_port = free_port(), free_port()
        portal_env["CSRF_TRUSTED_ORIGINS"] = f"https://127.0.0.1:{proxy_port}"
        nodes = []
        for index, port in enumerate(web_ports, 1):
            env = {
                **portal_env,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": "2",
            }
            node = Process(
                f"web{index}",
                [
                    str(VENV_BIN / "gunicorn"),
                    *("-c", "deploy/gunicorn.conf.py", "itportal.wsgi"),
                ],
                env,
                work / f"web{index}.log",
            )
            nodes.append(node)
            processes.append(node)
        global CERT
        cert = CERT = work / "portal.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
                *("-keyout", str(cert), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
        )
        proxy_env = {
            **common,
            "HAPROXY_HTTP_BIND": f"127.0.0.1:{http_port}",
            "HAPROXY_HTTPS_BIND": f"127.0.0.1:{proxy_port}",
            "HAPROXY_CERT": str(cert),
            "HAPROXY_CHECK_HOST": "127.0.0.1",
            "ITPORTAL_WEB1": f"127.0.0.1:{web_ports[0]}",
            "ITPORTAL_WEB2": f"127.0.0.1:{web_ports[1]}",
        }
        for port in web_ports:
            wait_until_ok(f"http://127.0.0.1:{port}/readyz?check=database&check=migrations")
        processes.append(
            Process(
                "haproxy",
                ["haproxy", "-db", "-f", str(ROOT / "deploy/haproxy/haproxy.cfg")],
                proxy_env,
                work / "haproxy.log",
            )
        )
        base = f"https://127.0.0.1:{proxy_port}"
        wait_until_ok(base + "/accounts/login/")
        time.sleep(5)  # both nodes have passed their first health checks

        results: dict = {"layout": "2 gunicorn nodes × 2 processes × 4 threads, HAProxy, PgBouncer"}
        results["pages"] = measure_pages(base, users[0], work, nodes)
        results["provisioning"] = measure_provisioning(
            args.jobs, slapd, portal_env, work, processes
        )
        results["readyz"] = readiness_follows_the_directory(web_ports[1], slapd)
        results["kill"] = measure_kill(base, users, nodes, args.load_seconds, work)
        print(json.dumps(results, indent=2), flush=True)
        print_markdown(results)
    finally:
        for process in reversed(processes):
            process.kill()
        if slapd is not None:
            slapd.stop()
        with contextlib.suppress(Exception):
            broker.flushdb()
        from django.db import connections

        connections.close_all()
        with (
            contextlib.suppress(Exception),
            psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as admin,
        ):
            admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


CERT: Path | None = None  # the proxy's self-signed certificate, trusted by the clients


def session_for(base: str, user):
    import requests

    session = requests.Session()
    session.trust_env = False  # no proxy or CA bundle from the environment
    session.verify = str(CERT)
    session.headers["Referer"] = base + "/"
    session.get(base + "/accounts/login/", timeout=30)
    response = session.post(
        base + "/accounts/login/",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise RuntimeError(f"login of {user.username} failed: {response.status_code}")
    return session


def served_by(nodes, path: str) -> list[int]:
    """Requests for ``path`` that each node logged (JSON request_finished lines)."""
    counts = []
    for node in nodes:
        count = 0
        for line in node.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"GET {path}"' in line and "request_finished" in line:
                count += 1
        counts.append(count)
    return counts


def measure_pages(base: str, user, work: Path, nodes) -> dict:
    print("(a) pages through the proxy …", flush=True)
    session = session_for(base, user)
    path = "/?bench=session"
    statuses = []
    logged_in = 0
    for _ in range(40):
        response = session.get(base + path, allow_redirects=False, timeout=30)
        statuses.append(response.status_code)
        logged_in += response.status_code == 200 and "accounts/logout" in response.text
    time.sleep(1)
    per_node = served_by(nodes, path)
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    wrk = subprocess.run(
        [
            *("wrk", "-t", "2", "-c", "16", "-d", "10s", "--latency"),
            *("-H", f"Cookie: {cookie}", base + "/"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (work / "wrk-pages.txt").write_text(wrk.stdout + wrk.stderr)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout)
    p50 = re.search(r"50%\s+([\d.]+\w+)", wrk.stdout)
    p99 = re.search(r"99%\s+([\d.]+\w+)", wrk.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
    return {
        "requests": len(statuses),
        "status_200": statuses.count(200),
        "logged_in_pages": logged_in,
        "served_per_node": per_node,
        "wrk_requests_per_s": float(rate.group(1)) if rate else None,
        "wrk_p50": p50.group(1) if p50 else None,
        "wrk_p99": p99.group(1) if p99 else None,
        "wrk_non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def measure_provisioning(jobs: int, slapd, portal_env: dict, work: Path, processes) -> dict:
    import ldap3
    from django.utils import timezone

    from catalogue.models import CatalogueItem, Employee
    from devtools.devdirectory import ldif_entry
    from provisioning.choices import ActionKind, Direction, JobState
    from provisioning.models import ProvisioningJob
    from provisioning.tasks import run_provisioning_job
    from requests_app.models import ServiceRequest

    print("(b) provisioning with 1, 2, 3 workers …", flush=True)
    item = CatalogueItem.objects.filter(is_active=True).first()
    employee = Employee.objects.select_related("user").first()
    rounds = {}
    slapd.load_ldif(
        "\n".join(
            ldif_entry(
                slapd.user_dn(f"s{n}x{i:05d}"),
                {"objectClass": ["inetOrgPerson"], "uid": f"s{n}x{i:05d}", "cn": "x", "sn": "x"},
            )
            for n in range(4)
            for i in range(jobs)
        )
        + "\n"
        + "\n".join(
            ldif_entry(
                slapd.group_dn(f"scale-{n}"),
                {"objectClass": ["groupOfNames"], "cn": f"scale-{n}", "member": [slapd.bind_dn]},
            )
            for n in range(4)
        )
    )
    # The directory's own rate: the same read-then-add with one raw ldap3 connection.
    conn = ldap3.Connection(slapd.url, slapd.bind_dn, slapd.bind_password, auto_bind=True)
    started = time.perf_counter()
    for i in range(jobs):
        conn.search(slapd.group_dn("scale-0"), "(objectClass=*)", "BASE", attributes=["member"])
        conn.modify(
            slapd.group_dn("scale-0"),
            {"member": [(ldap3.MODIFY_ADD, [slapd.user_dn(f"s0x{i:05d}")])]},
        )
    rounds["raw_ldap3_per_s"] = round(jobs / (time.perf_counter() - started), 1)
    conn.unbind()

    snapshot = item.snapshot()
    for workers in (1, 2, 3):
        requests = ServiceRequest.objects.bulk_create(
            ServiceRequest(
                requester=employee.user,
                beneficiary=employee,
                item=item,
                item_version=item.version,
                item_snapshot=snapshot,
                cost_centre=employee.effective_cost_centre,
                price_once=0,
                price_monthly=0,
                fulfilment_group=item.service_owner,
                state="in_fulfilment",
                created_at=timezone.now(),
            )
            for _ in range(jobs)
        )
        batch = ProvisioningJob.objects.bulk_create(
            ProvisioningJob(
                request=r,
                direction=Direction.GRANT,
                position=1,
                kind=ActionKind.ADD_TO_GROUP,
                user_uid=f"s{workers}x{i:05d}",
                target_dn=slapd.group_dn(f"scale-{workers}"),
                dialect="openldap",
            )
            for i, r in enumerate(requests)
        )
        pool = []
        for index in range(workers):
            log = work / f"worker-{workers}-{index}.log"
            pool.append(
                Process(
                    f"worker{index}",
                    [
                        str(VENV_BIN / "celery"),
                        *("-A", "itportal", "worker", "-Q", "provisioning"),
                        *("-n", f"bench{workers}-{index}@%h", "--concurrency", "1"),
                        *("--without-gossip", "--without-mingle", "-l", "warning"),
                    ],
                    portal_env,
                    log,
                )
            )
        processes.extend(pool)
        wait_ready(pool)
        started = time.perf_counter()
        for job in batch:
            run_provisioning_job.apply_async((job.pk,))
        ids = [job.pk for job in batch]
        deadline = time.monotonic() + 300
        while True:
            done = ProvisioningJob.objects.filter(pk__in=ids, state=JobState.SUCCEEDED).count()
            if done == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        for worker in pool:
            worker.kill(signal.SIGTERM)
        rounds[f"{workers}_workers"] = {
            "jobs": len(ids),
            "succeeded": done,
            "seconds": round(elapsed, 2),
            "jobs_per_s": round(done / elapsed, 1),
        }
        print(f"   {workers} worker(s): {rounds[f'{workers}_workers']}", flush=True)
    return rounds


def wait_ready(pool, seconds: float = 60) -> None:
    """Celery prints nothing at warning level when ready; ask it with a ping."""
    from itportal.celery import app

    names = {f"{p.name}" for p in pool}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= len(pool):
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers {names} not ready in {seconds} s")


def readiness_follows_the_directory(port: int, slapd) -> dict:
    """The full /readyz of a node: green, red (naming the directory) while slapd is
    stopped, green again once it is back."""
    import requests

    url = f"http://127.0.0.1:{port}/readyz"

    def ask():
        response = requests.get(url, timeout=10, headers={"Host": "127.0.0.1"})
        return response.status_code, response.json()["failed"]

    print("(d) /readyz while the directory stops and returns …", flush=True)
    before = ask()
    slapd.stop()
    try:
        stopped = ask()
    finally:
        slapd.start()
    deadline = time.monotonic() + 30
    after = ask()
    while after[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        after = ask()
    return {"before": before, "directory_stopped": stopped, "directory_back": after}


def measure_kill(base: str, users, nodes, seconds: float, work: Path) -> dict:
    from catalogue.models import CatalogueItem
    from requests_app.models import ServiceRequest

    print("(c) orders while a web node is killed …", flush=True)
    simple = {"text": "bench", "long_text": "bench", "number": "1", "yes_no": "on"}
    item, answers = None, {}
    for candidate in CatalogueItem.objects.filter(is_active=True, fulfilment_kind="manual"):
        fields = list(candidate.form_fields.all())
        if all(
            (f.field_type in simple or f.field_type == "choice") and not f.pattern for f in fields
        ):
            item = candidate
            for f in fields:
                value = simple.get(f.field_type) or f.choices.splitlines()[0].strip()
                answers[f"f_{f.key}"] = value
            break
    sessions = [session_for(base, user) for user in users]
    before = ServiceRequest.objects.count()
    outcomes: list[tuple[str, int | None, float]] = []
    errors: list[tuple[float, str]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    kill_at = time.monotonic() + seconds / 2
    order_url = f"{base}/leistung/{item.slug}/bestellen/"

    def employee(session):
        placed = []
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                response = session.post(
                    order_url,
                    data={
                        **answers,
                        "item_version": item.version,
                        "justification": "bench",
                        "csrfmiddlewaretoken": session.cookies["csrftoken"],
                    },
                    allow_redirects=False,
                    timeout=30,
                )
                location = response.headers.get("Location", "")
                match = re.search(r"/antraege/(\d+)/", location)
                if response.status_code == 302 and match:
                    kind = "placed"
                    placed.append(int(match.group(1)))
                else:
                    kind = f"http_{response.status_code}"
                    first = work / f"order-{response.status_code}.html"
                    if not first.exists():
                        first.write_text(response.text)
                status = response.status_code
            except Exception as exc:  # a cut connection is an outcome to count, not a crash
                kind, status = f"error_{type(exc).__name__}", None
                with lock:
                    errors.append((round(started - (stop_at - seconds), 2), repr(exc)[:300]))
            with lock:
                outcomes.append((kind, status, time.monotonic() - started))
        return placed

    with concurrent.futures.ThreadPoolExecutor(len(sessions)) as pool:
        futures = [pool.submit(employee, s) for s in sessions]
        time.sleep(max(0.0, kill_at - time.monotonic()))
        killed_at = time.monotonic()
        nodes[0].kill(signal.SIGKILL)
        placed = [pk for future in futures for pk in future.result()]
    after = ServiceRequest.objects.count()
    kinds: dict[str, int] = {}
    for kind, _status, _seconds in outcomes:
        kinds[kind] = kinds.get(kind, 0) + 1
    in_db = set(ServiceRequest.objects.filter(pk__in=placed).values_list("pk", flat=True))
    (work / "kill-errors.txt").write_text("\n".join(f"{t} s: {e}" for t, e in errors))
    return {
        "errors_at_s": sorted(t for t, _e in errors),
        "seconds": seconds,
        "employees": len(sessions),
        "killed_node_after_s": round(killed_at - (stop_at - seconds), 1),
        "attempts": len(outcomes),
        "outcomes": kinds,
        "answered_placed": len(placed),
        "answered_placed_missing_in_db": len(set(placed) - in_db),
        "answered_placed_twice": len(placed) - len(set(placed)),
        "orders_in_db": after - before,
        "orders_in_db_without_answer": (after - before) - len(set(placed)),
    }


def print_markdown(results: dict) -> None:
    pages, prov, kill = results["pages"], results["provisioning"], results["kill"]
    print()
    print("| (a) pages via HAProxy | value |")
    print("|---|---|")
    print(f"| logged-in pages of one session, per node | {pages['served_per_node']} |")
    print(f"| of {pages['requests']} requests: logged-in 200 | {pages['logged_in_pages']} |")
    print(
        f"| wrk 2 threads × 16 connections, 10 s, `/` | {pages['wrk_requests_per_s']} req/s, "
        f"p50 {pages['wrk_p50']}, p99 {pages['wrk_p99']}, non-2xx {pages['wrk_non_2xx']} |"
    )
    print()
    print("| (b) provisioning workers | jobs | seconds | jobs/s |")
    print("|---|---|---|---|")
    for workers in (1, 2, 3):
        row = prov[f"{workers}_workers"]
        done = f"{row['succeeded']}/{row['jobs']}"
        print(f"| {workers} | {done} | {row['seconds']} | {row['jobs_per_s']} |")
    print(f"| raw ldap3, 1 connection (directory alone) | | | {prov['raw_ldap3_per_s']} |")
    print()
    print("| (d) full /readyz of a node | status, failed |")
    print("|---|---|")
    for key, value in results["readyz"].items():
        print(f"| {key} | {value[0]}, {value[1]} |")
    print()
    print("| (c) web node killed mid-load | value |")
    print("|---|---|")
    for key, value in kill.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
