"""Smoke test of bench/bench_lists.py on tiny data: the history generator grows the city and
every page of every role is measured at both sizes with its queries. No timing is asserted."""

import sys
from pathlib import Path

import pytest
from django.core.management import call_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_lists

pytestmark = pytest.mark.django_db


def test_the_growth_benchmark_runs_on_tiny_data(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    call_command("seed_demo", verbosity=0)
    bench_lists.grow(300, seed=1)
    only = "my requests|fulfilment queue$|approvals for me|admin: requests$|API requests \\("
    small = bench_lists.measure_pages(only, 1)
    bench_lists.grow(300, seed=2)
    large = bench_lists.measure_pages(only, 1)
    assert small.keys() == large.keys()
    assert "it_admin / fulfilment queue" in small and "manager / approvals for me" in small
    for key, figures in large.items():
        assert figures["status"] == 200, key
        # (Equal counts are pinned by tests/test_query_counts.py: here an empty filtered
        # list at the small size legitimately saves the rows' query.)
        assert figures["queries"] > 0, (key, figures)
    table = bench_lists.report(["300", "600"], [small, large])
    assert "| employee / my requests, page 100 |" in table
