"""Benchmark: the controlling pages at 10,000 and at 1,000,000 requests.

Creates a throwaway PostgreSQL test database with the demo city (seed_demo), generates a
history of requests over 24 months (devtools/history.py), renders each controlling page as the
controlling user, then grows the history and renders again. Reports queries per page, the
median time of each page, and the ratio large/small, measured in one process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \
        .venv/bin/python bench/bench_controlling.py [--small 10000] [--large 1000000]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.bench_lists import measure  # noqa: E402 - the same measurement as the list pages

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
}


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
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from django.contrib.auth import get_user_model

        from catalogue.models import Department

        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        user = get_user_model().objects.get(username="controlling")
        department = Department.objects.get(code="33").pk
        month = f"{timezone.localdate():%Y-%m}"
        pages = {
            name: url.format(department=department, month=month) for name, url in PAGES.items()
        }
        client = Client()
        client.force_login(user)

        seconds = grow(args.small, seed=1)
        print(f"generated {args.small} requests in {seconds:.0f} s", file=sys.stderr)
        small = {name: measure(client, url, args.repeat) for name, url in pages.items()}
        seconds = grow(args.large - args.small, seed=2)
        print(f"generated {args.large - args.small} more in {seconds:.0f} s", file=sys.stderr)
        large = {name: measure(client, url, args.repeat) for name, url in pages.items()}

        print(
            f"| page | queries at {args.small:,} | queries at {args.large:,} | "
            f"median ms at {args.small:,} | median ms at {args.large:,} | ratio |"
        )
        print("|---|---|---|---|---|---|")
        for name in pages:
            (q1, t1), (q2, t2) = small[name], large[name]
            print(f"| {name} | {q1} | {q2} | {t1 * 1000:.0f} | {t2 * 1000:.0f} | {t2 / t1:.1f} |")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
