"""Benchmark: the controlling pages and one /metrics scrape at 10,000 and 1,000,000 requests.

Creates a throwaway PostgreSQL test database with the demo city (seed_demo), generates a
history of requests over 24 months (devtools/history.py), brings the monthly roll-ups up to
date (timed: what the beat task does after a bulk load), renders each controlling page and
export as the controlling user, then grows the history, rolls up again and renders again.
Reports queries per page, the median time of each page, and the ratio large/small, measured
in one process. ``/metrics`` is read as the Prometheus server reads it, without a session (from
an allowed address), and ``SCRAPE_SAMPLES`` times as often as a page: a scrape takes a few
milliseconds, so a median of nine on a shared machine shows the scheduler more than the scrape.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \
        .venv/bin/python bench/bench_controlling.py [--small 10000] [--large 1000000]

With ``--existing DB [DB …]`` it measures databases seeded beforehand instead (``migrate``,
``seed_demo``, ``seed_history --count N --months 24``), in the order given, e.g. a 10,000 and a
1,000,000 database; they are changed only by the roll-up.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

SCRAPE_URL = "/metrics"
PAGES = {
    "Costs per cost centre": "/controlling/",
    "Costs, one department": "/controlling/?department={department}",
    "Cost export (CSV)": "/controlling/kosten.csv",
    "Usage per service": "/controlling/nutzung/",
    "Usage by department": "/controlling/nutzung/?breakdown=department",
    "Lead times and automation": "/controlling/durchlaufzeiten/",
    "Lead times, one month": "/controlling/durchlaufzeiten/?period_from={month}&period_to={month}",
    "Satisfaction": "/controlling/zufriedenheit/",
    "Licence pools": "/controlling/lizenzpools/",
    "Demand and forecast (24 months)": "/controlling/prognose/?history=24",
    "Rarely ordered services": "/controlling/selten-bestellt/",
    "Lead-time export (CSV)": "/controlling/durchlaufzeiten.csv",
    "Satisfaction export (CSV)": "/controlling/zufriedenheit.csv",
    "Cost report (API JSON)": "/api/v1/controlling/costs/",
    "Lead-time report (API JSON)": "/api/v1/controlling/lead-times/",
    "/metrics (one scrape)": SCRAPE_URL,
}
SCRAPE_SAMPLES = 5


def measure(client: Client, url: str, repeat: int) -> tuple[int, float]:
    """Queries of one request and the median time of ``repeat`` more, streamed bodies read."""

    def get():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if response.streaming:
            b"".join(response.streaming_content)

    get()  # warm caches and templates
    with CaptureQueriesContext(connection) as ctx:
        get()
    queries = len(ctx.captured_queries)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        get()
        times.append(time.perf_counter() - start)
    return queries, statistics.median(times)


def roll_up() -> float:
    from metrics.controlling import rollup

    start = time.perf_counter()
    rollup.refresh(budget_seconds=float("inf"))
    return time.perf_counter() - start


def measure_all(pages: dict, repeat: int) -> dict:
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="controlling"))
    scraper = Client()  # the monitoring server: no session, the user and groups not read
    with override_settings(METRICS_ALLOWED_IPS=["127.0.0.1/32"]):
        return {
            name: measure(scraper, url, repeat * SCRAPE_SAMPLES)
            if url == SCRAPE_URL
            else measure(client, url, repeat)
            for name, url in pages.items()
        }


def page_urls() -> dict:
    from catalogue.models import Department

    department = Department.objects.get(code="33").pk
    month = f"{timezone.localdate():%Y-%m}"
    return {name: url.format(department=department, month=month) for name, url in PAGES.items()}


def table(labels: list[str], results: list[dict]) -> None:
    print(
        "| page | "
        + " | ".join(f"queries at {label}" for label in labels)
        + " | "
        + " | ".join(f"median ms at {label}" for label in labels)
        + " | ratio |"
    )
    print("|---" * (2 * len(labels) + 2) + "|")
    for name in results[0]:
        queries = [str(result[name][0]) for result in results]
        times = [result[name][1] for result in results]
        print(
            f"| {name} | {' | '.join(queries)} | "
            + " | ".join(f"{t * 1000:.0f}" for t in times)
            + f" | {times[-1] / times[0]:.1f} |"
        )


def existing(names: list[str], repeat: int) -> None:
    from requests_app.models import ServiceRequest

    labels, results = [], []
    for name in names:
        connection.close()
        connection.settings_dict["NAME"] = name
        count = ServiceRequest.objects.count()
        seconds = roll_up()
        print(f"{name}: {count} requests, roll-up brought up to date in {seconds:.0f} s",
              file=sys.stderr)  # fmt: skip
        labels.append(f"{count:,}")
        results.append(measure_all(page_urls(), repeat))
    table(labels, results)


def grow(count: int, seed: int) -> float:
    from devtools import history

    start = time.perf_counter()
    history.generate(count=count, months=24, seed=seed)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--existing", nargs="+", metavar="DB", help="measure these databases")
    args = parser.parse_args()

    setup_test_environment()
    if args.existing:
        existing(args.existing, args.repeat)
        return
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        results = []
        for count, seed in ((args.small, 1), (args.large - args.small, 2)):
            seconds = grow(count, seed=seed)
            print(f"generated {count} requests in {seconds:.0f} s", file=sys.stderr)
            print(f"roll-up brought up to date in {roll_up():.0f} s", file=sys.stderr)
            results.append(measure_all(page_urls(), args.repeat))
        table([f"{args.small:,}", f"{args.large:,}"], results)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
