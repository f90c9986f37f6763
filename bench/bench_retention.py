"""Benchmark: the retention run over a large history.

Creates a throwaway PostgreSQL test database with the demo city (seed_demo), generates
``--count`` requests over ``--months`` months (devtools/history.py: states, audit records,
approvals, entitlements, ratings), then times the dry run, the run and a second run (which must
change nothing), and reports the process's peak memory: the run works in batches by primary
key (RETENTION_BATCH_SIZE), so memory does not grow with the table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \\
        .venv/bin/python bench/bench_retention.py [--count 200000] [--months 48]
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--months", type=int, default=48)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from devtools import history
        from privacy import retention
        from requests_app.models import RequestEvent, ServiceRequest

        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        start = time.perf_counter()
        history.generate(count=args.count, months=args.months, seed=1)
        print(f"generated {args.count:,} requests in {time.perf_counter() - start:.0f} s, "
              f"{RequestEvent.objects.count():,} audit records", file=sys.stderr)  # fmt: skip
        before_mb = peak_mb()

        start = time.perf_counter()
        due = retention.retention_due()
        dry = time.perf_counter() - start
        start = time.perf_counter()
        done = retention.retention_apply()
        run = time.perf_counter() - start
        start = time.perf_counter()
        again = retention.retention_apply()
        rerun = time.perf_counter() - start

        print(f"requests: {ServiceRequest.objects.count():,}; anonymised "
              f"{ServiceRequest.objects.exclude(anonymised_at=None).count():,}")  # fmt: skip
        print("| kind | due (dry run) | changed by the run | changed by a second run |")
        print("|---|---|---|---|")
        for kind in due:
            print(f"| {kind} | {due[kind]:,} | {done[kind]:,} | {again[kind]:,} |")
        after_mb = peak_mb()
        print(f"\ndry run {dry:.1f} s, run {run:.1f} s, second run {rerun:.1f} s; peak memory "
              f"{before_mb:.0f} MB after generating, {after_mb:.0f} MB after the runs")  # fmt: skip
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
