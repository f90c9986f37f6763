"""Benchmark: in-process CPU per request of the portal's pages, as a share of the floor's.

Django's test client GETs each page of bench/bench_pages.py (every role's HTML pages and API
lists) in this one process, with the benchmark's settings (bench.pages_settings) and the
database in DATABASE_URL, logged in as the demo roles; ``time.process_time()`` around each
request counts this process's CPU only (PostgreSQL's work is another process's), which is
what a gunicorn worker spends on the page. The floor view (a trivial login-required view on
the same stack) is measured before, between and after the pages; each page is reported as
CPU ms per request (median and mean), wall ms, and the floor's CPU over the page's — the
throughput share a CPU-bound server would reach. Logging is off during the measurement.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/itp_bench10k DEV_TOOLS=true
    .venv/bin/python bench/bench_cpu.py [--only REGEX] [--requests 20] [--profile REGEX]

``--profile REGEX`` runs cProfile over the matching pages' requests and prints the top
functions (``--profile-sort`` tottime or cumulative). Use it next to bench_pages.py (which
measures the served throughput): this one is steadier on a loaded machine and says where
the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.pages_settings"

import bench_pages  # noqa: E402

FLOOR = bench_pages.Page("employee", "floor", "/bench/floor/")


def client_for(cookie: str):
    from django.test import Client

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    name, value = cookie.split("=", 1)
    client.cookies[name] = value
    return client


def measure(client, url: str, *, requests: int, warmup: int, profiler=None) -> dict:
    """CPU and wall time of ``requests`` GETs after ``warmup`` ones; the last status."""
    status = None
    for _ in range(warmup):
        status = client.get(url).status_code
    cpu, wall = [], []
    for _ in range(requests):
        if profiler is not None:
            profiler.enable()
        c0, w0 = time.process_time(), time.perf_counter()
        status = client.get(url).status_code
        c1, w1 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.disable()
        cpu.append((c1 - c0) * 1000)
        wall.append((w1 - w0) * 1000)
    return {
        "status": status,
        "cpu_ms": round(statistics.median(cpu), 2),
        "cpu_mean_ms": round(statistics.fmean(cpu), 2),
        "wall_ms": round(statistics.median(wall), 2),
    }


def run(args) -> dict:
    bench_pages.setup_django()
    logging.disable(logging.CRITICAL)
    try:
        return _run(args)
    finally:
        logging.disable(logging.NOTSET)


def _run(args) -> dict:
    context = bench_pages.demo_context()
    cookies = bench_pages.session_cookies(context["users"])
    selected = bench_pages.pages(context)
    if not args.api:
        selected = [p for p in selected if not p.url.startswith("/api/")]
    if args.only:
        selected = [p for p in selected if re.search(args.only, f"{p.role} {p.name}")]
    clients = {role: client_for(cookie) for role, cookie in cookies.items()}
    options = {"requests": args.requests, "warmup": args.warmup}

    floors = []

    def measure_floor():
        result = measure(clients[FLOOR.role], FLOOR.url, **options)
        if result["status"] != 200:
            sys.exit(f"The floor view answered {result['status']}, not 200.")
        floors.append(result)
        print(f"  floor: {result['cpu_ms']} ms CPU", file=sys.stderr)

    measure_floor()
    floor_every = max(len(selected) // 3, 1)
    # CPU time, as measured: waiting for PostgreSQL is not the page's.
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    for index, page in enumerate(selected, start=1):
        profiled = profiler if args.profile and re.search(args.profile, page.name) else None
        page.result = measure(clients[page.role], page.url, **options, profiler=profiled)
        page.status = page.result.pop("status")
        print(
            f"  {page.role} / {page.name}: HTTP {page.status}, {page.result['cpu_ms']} ms CPU",
            file=sys.stderr,
        )
        if index % floor_every == 0 and index < len(selected):
            measure_floor()
    measure_floor()

    floor_cpu = statistics.median(f["cpu_ms"] for f in floors)
    for page in selected:
        page.result["share"] = round(floor_cpu / page.result["cpu_ms"], 3)
    result = {
        "requests": context["requests"],
        "per_page": args.requests,
        "floor": {"cpu_ms": floor_cpu, "runs": [f["cpu_ms"] for f in floors]},
        "pages": [
            {"role": p.role, "name": p.name, "url": p.url, "status": p.status, **p.result}
            for p in selected
        ],
        "machine": bench_pages.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(args.profile_sort).print_stats(args.profile_lines)
        result["profile"] = out.getvalue()
    return result


def report(result: dict) -> str:
    floor = result["floor"]
    lines = [
        f"{result['requests']:,} requests; {result['per_page']} GETs per page in-process; "
        f"{result['machine']}; {result['date']}",
        f"floor: {floor['cpu_ms']} ms CPU per request (median of {floor['runs']})",
        "",
        "| role | page | CPU ms (median) | CPU ms (mean) | wall ms | share of floor |",
        "|---|---|---|---|---|---|",
    ]
    for page in result["pages"]:
        status = "" if page["status"] == 200 else f" (HTTP {page['status']})"
        lines.append(
            f"| {page['role']} | {page['name']}{status} | {page['cpu_ms']} | "
            f"{page['cpu_mean_ms']} | {page['wall_ms']} | {page['share']:.2f} |"
        )
    if result.get("profile"):
        lines += ["", result["profile"]]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="regular expression on 'role page name'")
    parser.add_argument("--api", action="store_true", help="include the API lists")
    parser.add_argument("--requests", type=int, default=20, help="measured GETs per page")
    parser.add_argument("--warmup", type=int, default=3, help="GETs before measuring")
    parser.add_argument("--profile", help="cProfile the pages whose name matches this")
    parser.add_argument("--profile-sort", default="tottime", help="tottime or cumulative")
    parser.add_argument("--profile-lines", type=int, default=40)
    parser.add_argument("--json", help="write the figures to this file")
    return bench_pages.run_and_report(parser.parse_args(argv), run, report)


if __name__ == "__main__":
    main()
