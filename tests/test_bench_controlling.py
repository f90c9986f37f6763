"""Smoke test of bench/bench_controlling.py on tiny data: the roll-up is brought up to date and
every page, export, API report and the /metrics scrape is measured. No timing is asserted."""

import sys
from pathlib import Path

import pytest
from django.core.management import call_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_controlling


@pytest.mark.django_db
def test_the_controlling_benchmark_runs_on_tiny_data(capsys):
    call_command("seed_demo", verbosity=0)
    call_command("seed_history", count=300, months=3, verbosity=0)
    bench_controlling.roll_up()
    result = bench_controlling.measure_all(bench_controlling.page_urls(), 1)
    assert result.keys() == bench_controlling.PAGES.keys()
    assert all(queries > 0 for queries, _seconds in result.values())
    bench_controlling.table(["300", "300"], [result, result])
    assert "| /metrics (one scrape) |" in capsys.readouterr().out
