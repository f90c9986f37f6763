"""Benchmark: every page and API list of every role, served by gunicorn, driven by wrk.

Serves the portal from the database in DATABASE_URL with gunicorn (deploy/gunicorn.conf.py,
2 sync workers by default) on the loopback, logs in one session per role (employee,
manager/approver, IT admin, controlling) and drives each page with Debian's ``wrk`` (8
connections by default). Next to the pages it measures a trivial login-required view on the
same stack (the "floor", bench/pages_urls.py; only this benchmark's settings serve it),
several times in the run; each page is reported as req/s, p50/p95 latency, its share of the
floor's req/s and its p95 over the floor's p95, and the SQL queries the page runs (counted
in this process with Django's test client, same settings and database).

The database must hold the demo city and a history (seed it once, it is not changed here
except for the benchmark's sessions and the IT admin's second-factor device):

    createdb itp_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/itp_bench DEV_TOOLS=true
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py seed_demo
    .venv/bin/python manage.py seed_history --count 1000000 --months 24
    .venv/bin/python bench/bench_pages.py [--quick] [--explain] [--json out.json]

``--quick`` runs each page for 3 s (instead of 10) and the floor twice: a few minutes.
``--explain`` adds, per list, the plan of its slowest queries (EXPLAIN ANALYZE, BUFFERS):
node types, the indexes used and the time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.pages_settings"

# wrk prints one JSON line at the end: throughput, latency percentiles (µs), errors.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, '
    .. '"p99_us": %d, "errors": %d, "status_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""

ROLES = {
    # role: demo login (devtools seed_demo)
    "employee": "mitarbeiterin",
    "manager": "vorgesetzter",
    "it_admin": "itadmin",
    "controlling": "controlling",
    # The Django admin's request, audit and entitlement lists are the superuser's (the IT
    # admin group has no permission on them).
    "superuser": "admin",
}


@dataclass
class Page:
    role: str
    name: str
    url: str
    queries: int | None = None
    status: int | None = None
    result: dict = field(default_factory=dict)
    plans: list = field(default_factory=list)


def pages(context: dict) -> list[Page]:
    """Every page and API list of every role, deep pages and sorts included."""
    item, category, own = context["item"], context["category"], context["own_request"]
    listed = [
        ("employee", "catalogue", "/"),
        ("employee", "category", f"/kategorie/{category}/"),
        ("employee", "item", f"/leistung/{item}/"),
        ("employee", "order form", f"/leistung/{item}/bestellen/"),
        ("employee", "my requests, page 1", "/antraege/"),
        ("employee", "my requests, page 100", "/antraege/?page=100"),
        ("employee", "my requests, sorted by item", "/antraege/?sort=item"),
        ("employee", "my requests, filtered (state)", "/antraege/?state=fulfilled"),
        # The default tab holds the open requests only (a few): the deep page of all of them.
        ("employee", "my requests, all, page 100", "/antraege/?tab=all&page=100"),
        ("employee", "my requests, searched", "/antraege/?q=Notebook"),
        ("employee", "request detail", f"/antraege/{own}/"),
        ("employee", "entitlements", "/provisionierung/berechtigungen/"),
        ("employee", "API requests (mine)", "/api/v1/requests/"),
        ("employee", "API requests, offset 2500", "/api/v1/requests/?offset=2500"),
        ("employee", "API entitlements", "/api/v1/entitlements/"),
        ("employee", "API items", "/api/v1/items/"),
        ("employee", "API categories", "/api/v1/categories/"),
        ("employee", "API cost centres", "/api/v1/cost-centres/"),
        ("manager", "approvals for me", "/antraege/genehmigungen/"),
        ("manager", "API approvals", "/api/v1/approvals/"),
        ("manager", "my requests, page 1", "/antraege/"),
        ("manager", "entitlements (own and reports')", "/provisionierung/berechtigungen/"),
        ("manager", "API entitlements", "/api/v1/entitlements/"),
        ("it_admin", "fulfilment queue", "/antraege/bearbeitung/"),
        ("it_admin", "fulfilment queue, sorted by item", "/antraege/bearbeitung/?sort=item"),
        ("it_admin", "API fulfilment queue", "/api/v1/fulfilment-queue/"),
        ("it_admin", "entitlements (all)", "/provisionierung/berechtigungen/"),
        ("it_admin", "provisioning jobs", "/provisionierung/auftraege/"),
        ("superuser", "admin: requests", "/admin/requests_app/servicerequest/"),
        ("superuser", "admin: requests, page 50", "/admin/requests_app/servicerequest/?p=50"),
        ("superuser", "admin: audit records", "/admin/requests_app/requestevent/"),
        ("superuser", "admin: entitlements", "/admin/provisioning/entitlement/"),
        ("it_admin", "API requests (visible: all)", "/api/v1/requests/?scope=visible"),
        ("it_admin", "API entitlements (all)", "/api/v1/entitlements/"),
        ("it_admin", "API provisioning jobs", "/api/v1/provisioning-jobs/"),
        ("it_admin", "API fulfilment tasks", "/api/v1/fulfilment-tasks/"),
        ("it_admin", "segregation of duties report", "/funktionstrennung/"),
        ("it_admin", "recertification campaigns", "/zugriffspruefung/"),
        ("controlling", "costs", "/controlling/"),
        ("controlling", "usage", "/controlling/nutzung/"),
        ("controlling", "licence pools", "/controlling/lizenzpools/"),
        ("controlling", "lead times", "/controlling/durchlaufzeiten/"),
        ("controlling", "satisfaction", "/controlling/zufriedenheit/"),
        ("controlling", "rarely ordered", "/controlling/selten-bestellt/"),
        ("controlling", "forecast", "/controlling/prognose/"),
        ("controlling", "costs export (CSV)", "/controlling/kosten.csv"),
        ("controlling", "SLA compliance", "/controlling/sla/"),
        ("controlling", "anomalies and reclaim candidates", "/controlling/auffaelligkeiten/"),
    ]
    return [Page(role, name, url) for role, name, url in listed]


def quick_pages(all_pages: list[Page]) -> list[Page]:
    """--quick: the lists the issue names, one catalogue page and one controlling page."""
    keep = {
        "catalogue", "item", "my requests, page 1", "my requests, page 100",
        "my requests, sorted by item", "entitlements", "API requests (mine)",
        "approvals for me", "fulfilment queue", "admin: requests", "API fulfilment queue",
        "entitlements (own and reports')", "costs",
    }  # fmt: skip
    return [p for p in all_pages if p.name in keep]


# --- Django side: data, sessions, query counts, plans ---------------------------------------


def setup_django():
    import django

    django.setup()


def demo_context() -> dict:
    """The objects the URLs name: an item the employee may order, its category, a request."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from catalogue import selectors as catalogue_selectors
    from requests_app import selectors as request_selectors
    from requests_app.models import ServiceRequest

    users = {
        role: get_user_model().objects.filter(username=name).first() for role, name in ROLES.items()
    }
    missing = [ROLES[role] for role, user in users.items() if user is None]
    if missing:
        sys.exit(f"Demo logins missing ({', '.join(missing)}): run seed_demo and seed_history.")
    employee = users["employee"].employee
    items = catalogue_selectors.items_orderable_by(employee).select_related("category")
    item = items.filter(slug=settings.PORTAL_GENERAL_REQUEST_ITEM).first() or items.first()
    own = request_selectors.requests_of(users["employee"]).order_by("-created_at").first()
    if item is None or own is None:
        sys.exit("No orderable item or no request of the employee: seed the history first.")
    return {
        "users": users,
        "item": item.slug,
        "category": item.category.slug,
        "own_request": own.pk,
        "requests": ServiceRequest.objects.count(),
    }


def session_cookies(users: dict) -> dict[str, str]:
    """One logged-in session per role, as the login view leaves it; the IT admin's with a
    second factor given (a TOTP device made for the benchmark)."""
    from django.conf import settings
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts import second_factor
    from accounts.middleware import mark_seen
    from accounts.models import EncryptedTOTPDevice

    cookies = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        session = client.session
        if second_factor.required_for(user):
            device, _created = EncryptedTOTPDevice.objects.get_or_create(
                user=user, name="bench", defaults={"confirmed": True}
            )
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        request = type("R", (), {"session": session})()
        mark_seen(request)
        session.save()
        cookies[role] = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    return cookies


def count_queries(page: Page, cookie: str) -> None:
    """The page's SQL queries on a second GET (caches warm), in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    name, value = cookie.split("=", 1)
    client.cookies[name] = value
    client.get(page.url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(page.url)
    page.status = response.status_code
    page.queries = len(ctx.captured_queries)
    page._captured = ctx.captured_queries  # for --explain


def explain(page: Page, top: int = 2) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the page's slowest queries, summarised."""
    from django.db import connection

    # Reads only (a page's SET TRANSACTION is not explained); "WITH " is five characters, so
    # the six-character prefix test left every query with a CTE out.
    captured = [
        q
        for q in getattr(page, "_captured", [])
        if q["sql"].lstrip().split(None, 1)[0].upper() in ("SELECT", "WITH")
    ]
    slowest = sorted(captured, key=lambda q: float(q["time"]), reverse=True)[:top]
    for query in slowest:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query["sql"])
            (plan,) = cursor.fetchone()
        if isinstance(plan, str):
            plan = json.loads(plan)
        page.plans.append(summarise_plan(plan[0], query["sql"]))


def summarise_plan(plan: dict, sql: str) -> dict:
    """The top node, every scan (node type, relation, index), rows, time and buffers."""
    scans = []

    def walk(node):
        kind = node["Node Type"]
        if "Scan" in kind or kind in ("Sort", "Incremental Sort", "Hash Join", "Merge Append"):
            label = kind
            if node.get("Index Name"):
                label += f" using {node['Index Name']}"
            elif node.get("Relation Name"):
                label += f" on {node['Relation Name']}"
            scans.append(
                {
                    "node": label,
                    "rows": node.get("Actual Rows", 0) * node.get("Actual Loops", 1),
                    "ms": round(node.get("Actual Total Time", 0.0), 2),
                }
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    top = plan["Plan"]
    return {
        "query": sql[:90] + ("…" if len(sql) > 90 else ""),
        "top": top["Node Type"],
        "execution_ms": round(plan.get("Execution Time", 0.0), 2),
        "planning_ms": round(plan.get("Planning Time", 0.0), 2),
        "shared_hit": top.get("Shared Hit Blocks", 0),
        "shared_read": top.get("Shared Read Blocks", 0),
        "nodes": scans,
    }


# --- serving and driving ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with the project's configuration, on the loopback, in its own process group."""

    def __init__(self, *, workers: int, worker_class: str, threads: int, log):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.pages_settings",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            # Recycling a worker every 2,000 requests would restart it every few seconds.
            "GUNICORN_MAX_REQUESTS": "0",
        }
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
            "--worker-class", worker_class,
            "itportal.wsgi",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn ended with {self.process.returncode}; see its log.")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        sys.exit("gunicorn did not answer within a minute.")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_of(url: str, cookie: str) -> int:
    """The status gunicorn answers (a redirect to the login would measure the wrong page)."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310
    try:
        with opener.open(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0  # a worker gunicorn timed out and replaced


def wrk(url: str, cookie: str, *, seconds: float, connections: int, script: str) -> dict:
    command = [
        "wrk", "-t", str(min(connections, 2)), "-c", str(connections),
        "-d", f"{max(int(seconds), 1)}s", "--timeout", "30s", "-s", script,
        "-H", f"Cookie: {cookie}", url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"WRK_JSON (\{.*\})", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    raw = json.loads(match.group(1))
    seconds_run = raw["duration_us"] / 1e6
    return {
        "rps": round(raw["requests"] / seconds_run, 1) if seconds_run else 0.0,
        "requests": raw["requests"],
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "errors": raw["errors"] + raw["status_errors"],
    }


# --- the run ---------------------------------------------------------------------------------


def run(args) -> dict:
    setup_django()
    from django.db import connection

    context = demo_context()
    cookies = session_cookies(context["users"])
    selected = pages(context)
    if args.quick:
        selected = quick_pages(selected)
    if args.only:
        selected = [p for p in selected if re.search(args.only, f"{p.role} {p.name}")]

    for page in selected:
        count_queries(page, cookies[page.role])
        if args.explain:
            explain(page)
    connection.close()  # the server's workers get the database to themselves
    if args.plans_only:
        return summary(context, args, selected, floors=[], seconds=0)

    seconds = args.seconds or (3 if args.quick else 10)
    floors: list[dict] = []
    log = open(args.server_log, "ab") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
    server = Server(
        workers=args.workers, worker_class=args.worker_class, threads=args.threads, log=log
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(WRK_SCRIPT)
        script = handle.name
    try:
        server.wait_ready()
        floor_url = server.base + "/bench/floor/"
        floor_every = max(len(selected) // (1 if args.quick else 4), 1)

        def measure_floor():
            # A slow page before may still hold a worker (or gunicorn may have just replaced
            # one it timed out): wait for the floor to answer instead of ending the run.
            for _attempt in range(10):
                if status_of(floor_url, cookies["employee"]) == 200:
                    break
                time.sleep(5)
            else:
                sys.exit("The floor view did not answer 200 for a logged-in session.")
            wrk(floor_url, cookies["employee"], seconds=1, connections=args.connections,
                script=script)  # fmt: skip
            result = wrk(
                floor_url, cookies["employee"], seconds=seconds,
                connections=args.connections, script=script,
            )  # fmt: skip
            floors.append(result)
            print(f"  floor: {result['rps']} req/s, p95 {result['p95_ms']} ms", file=sys.stderr)

        measure_floor()
        for index, page in enumerate(selected, start=1):
            url = server.base + page.url
            status = status_of(url, cookies[page.role])
            if status != 200:
                page.result = {"error": f"HTTP {status}"}
                print(f"  {page.role} / {page.name}: HTTP {status}", file=sys.stderr)
                continue
            # Warm-up: every worker has the page's code and plans cached.
            wrk(url, cookies[page.role], seconds=1, connections=args.connections, script=script)
            page.result = wrk(
                url, cookies[page.role], seconds=seconds, connections=args.connections,
                script=script,
            )  # fmt: skip
            print(
                f"  {page.role} / {page.name}: {page.result['rps']} req/s, "
                f"p95 {page.result['p95_ms']} ms, {page.queries} queries",
                file=sys.stderr,
            )
            if index % floor_every == 0 and index < len(selected):
                measure_floor()
        measure_floor()
    finally:
        server.stop()
        os.unlink(script)
        if log is not subprocess.DEVNULL:
            log.close()

    return summary(context, args, selected, floors=floors, seconds=seconds)


def summary(context, args, selected, *, floors, seconds) -> dict:
    floor_rps = statistics.median(f["rps"] for f in floors) if floors else 0
    floor_p95 = statistics.median(f["p95_ms"] for f in floors) if floors else 0
    for page in selected:
        if "rps" in page.result:
            page.result["share"] = round(page.result["rps"] / floor_rps, 3) if floor_rps else 0
            page.result["p95_ratio"] = (
                round(page.result["p95_ms"] / floor_p95, 1) if floor_p95 else 0
            )
    return {
        "requests": context["requests"],
        "connections": args.connections,
        "workers": f"{args.workers} {args.worker_class}"
        + (f" × {args.threads} threads" if args.worker_class == "gthread" else ""),
        "seconds": seconds,
        "floor": {"rps": floor_rps, "p95_ms": floor_p95, "runs": [f["rps"] for f in floors]},
        "pages": [
            {k: v for k, v in asdict(page).items() if not k.startswith("_")} for page in selected
        ],
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} × {cpu}, load average {load:.1f} at the end"


def report(result: dict) -> str:
    floor = result["floor"]
    lines = [
        f"{result['requests']:,} requests; gunicorn {result['workers']}, wrk "
        f"{result['connections']} connections, {result['seconds']} s per page; "
        f"{result['machine']}; {result['date']}",
        f"floor (trivial login-required view): {floor['rps']} req/s median of "
        f"{floor['runs']}, p95 {floor['p95_ms']} ms",
        "",
        "| role | page | req/s | share of floor | p50 ms | p95 ms | p95 / floor p95 | queries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for page in result["pages"]:
        r = page["result"]
        if "rps" not in r:
            if not r:
                lines.append(f"| {page['role']} | {page['name']} | | | | | | {page['queries']} |")
                continue
            lines.append(
                f"| {page['role']} | {page['name']} | {r.get('error', '–')} | | | | | "
                f"{page['queries']} |"
            )
            continue
        lines.append(
            f"| {page['role']} | {page['name']} | {r['rps']} | {r['share']:.2f} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p95_ratio']} | {page['queries']} |"
        )
    plans = [page for page in result["pages"] if page["plans"]]
    if plans:
        lines += ["", "Plans of the slowest queries per page (EXPLAIN ANALYZE):", ""]
        for page in plans:
            for plan in page["plans"]:
                nodes = ", ".join(
                    f"{n['node']} ({n['rows']} rows, {n['ms']} ms)" for n in plan["nodes"][:4]
                )
                lines.append(
                    f"- {page['role']} / {page['name']} (HTTP {page['status']}): {plan['top']} "
                    f"{plan['execution_ms']} ms — {nodes}"
                )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pages, 3 s each")
    parser.add_argument("--seconds", type=float, help="seconds per page (default 10, quick 3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="sync (default) or gthread")
    parser.add_argument("--threads", type=int, default=1, help="threads per gthread worker")
    parser.add_argument("--only", help="regular expression on 'role page name'")
    parser.add_argument("--explain", action="store_true", help="plans of the slowest queries")
    parser.add_argument(
        "--plans-only", action="store_true", help="no load: queries (and --explain) only"
    )
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--server-log", help="append gunicorn's output to this file")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing (Debian: apt-get install wrk).")
    return run_and_report(args, run, report)


def run_and_report(args, run, report) -> dict:
    """Run, print the report, write the figures to ``--json`` if asked (bench_cpu.py too)."""
    result = run(args)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
