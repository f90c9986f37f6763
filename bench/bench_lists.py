"""Benchmark: how every page grows with the data, on a city's data, in one process.

Creates a throwaway PostgreSQL test database with the demo city (seed_demo) and a history shaped
like a city's (devtools/history.py, as ``seed_history`` makes it: about 200 employees, mostly
closed requests over 24 months, a realistic open backlog), ANALYZEs it, and measures every page
and API list of every role (the pages of bench/bench_pages.py, deep pages and sorts included)
in-process: queries per page, median wall and CPU time. Then it grows the history to
``--large`` requests and measures again; the report gives the ratio large/small.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal DEV_TOOLS=true \\
        .venv/bin/python bench/bench_lists.py [--small 10000] [--large 100000] [--only REGEX]

It needs no seeded database (bench_pages.py and bench_cpu.py measure one seeded beforehand, at
1,000,000 requests too). Data where every row is open or one user's would hide the plans a
city's data gets (the issue that replaced this benchmark's old single-user data says why).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DEV_TOOLS", "true")  # seed_demo and the history generator

import bench_cpu  # noqa: E402  (sets the benchmark's settings)
import bench_pages  # noqa: E402


def measure_pages(selected_names: str | None, requests: int) -> dict[str, dict]:
    """Queries, median wall and CPU ms of every selected page, keyed by "role / page"."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    context = bench_pages.demo_context()
    cookies = bench_pages.session_cookies(context["users"])
    clients = {role: bench_cpu.client_for(cookie) for role, cookie in cookies.items()}
    results = {}
    for page in bench_pages.pages(context):
        key = f"{page.role} / {page.name}"
        if selected_names and not re.search(selected_names, key):
            continue
        client = clients[page.role]
        client.get(page.url)  # warm caches and templates
        with CaptureQueriesContext(connection) as ctx:
            status = client.get(page.url).status_code
        queries = len(ctx.captured_queries)  # read now: every request resets the log
        figures = bench_cpu.measure(client, page.url, requests=requests, warmup=0)
        results[key] = {"queries": queries, "status": status, **figures}
        print(f"  {key}: HTTP {status}, {figures['wall_ms']} ms", file=sys.stderr)
    return results


def grow(count: int, seed: int) -> float:
    from django.db import connection

    from devtools import history
    from metrics.controlling import rollup

    start = time.perf_counter()
    history.generate(count=count, months=24, seed=seed)
    rollup.refresh(budget_seconds=float("inf"))  # what the beat task does after a load
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does soon after a load in production
    return time.perf_counter() - start


def report(labels: list[str], results: list[dict]) -> str:
    lines = [
        f"| page | queries at {labels[0]} | queries at {labels[1]} | wall ms at {labels[0]} | "
        f"wall ms at {labels[1]} | CPU ms at {labels[0]} | CPU ms at {labels[1]} | ratio (wall) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    small, large = results
    for key, a in small.items():
        b = large[key]
        status = "" if a["status"] == b["status"] == 200 else f" (HTTP {a['status']}/{b['status']})"
        ratio = b["wall_ms"] / a["wall_ms"] if a["wall_ms"] else float("nan")
        lines.append(
            f"| {key}{status} | {a['queries']} | {b['queries']} | {a['wall_ms']} | "
            f"{b['wall_ms']} | {a['cpu_ms']} | {b['cpu_ms']} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=10, help="measured GETs per page")
    parser.add_argument("--only", help="regular expression on 'role / page name'")
    args = parser.parse_args(argv)
    if args.large <= args.small:
        parser.error("--large must be more than --small")

    import logging

    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    bench_pages.setup_django()
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    logging.disable(logging.CRITICAL)
    try:
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        results = []
        for count, seed in ((args.small, 1), (args.large - args.small, 2)):
            print(f"generated {count} requests in {grow(count, seed):.0f} s", file=sys.stderr)
            results.append(measure_pages(args.only, args.requests))
        print(report([f"{args.small:,}", f"{args.large:,}"], results))
        print(f"\n{bench_pages.machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        return results
    finally:
        logging.disable(logging.NOTSET)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
