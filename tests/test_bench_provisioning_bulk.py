"""Smoke test of bench/bench_provisioning_bulk.py on tiny data: plain ldap3 and the Celery
workers make their changes, everything is read back, the idle latency is sampled. No timing
is asserted."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_provisioning_bulk

from provisioning.backends import reset_backends


@pytest.mark.django_db(transaction=True)
def test_the_bulk_provisioning_benchmark_runs_on_tiny_data(org, directory, settings, tmp_path):
    settings.DIRECTORY = {**settings.DIRECTORY, **directory.config_kwargs()}
    reset_backends()
    try:
        result = bench_provisioning_bulk.measure(
            directory,
            org,
            orders=24,
            groups=3,
            processes=1,
            samples=2,
            workdir=tmp_path,
            broker_url=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        )
    finally:
        reset_backends()
    assert (result["succeeded"], result["fulfilled"], result["granted"]) == (24, 24, 24)
    assert (result["missing"], result["raw_missing"], result["raw_refused"]) == (0, 0, 0)
    assert result["samples"] == 2
    assert "| 24 | 3 | 1 |" in bench_provisioning_bulk.table(result)
