"""Smoke test of bench/bench_cpu.py on tiny data: every selected page answers 200 and gets
its figures, the profile prints. No timing is asserted: this only shows the script runs."""

import sys
from pathlib import Path

import pytest
from django.core.management import call_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_cpu

pytestmark = pytest.mark.django_db


def test_the_cpu_benchmark_runs_on_tiny_data(settings, tmp_path):
    settings.ROOT_URLCONF = "bench.pages_urls"  # the floor view
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    call_command("seed_demo", verbosity=0)
    call_command("seed_history", count=200, months=2, verbosity=0)
    out = tmp_path / "cpu.json"
    result = bench_cpu.main(
        [
            "--requests", "2", "--warmup", "1", "--api",
            "--only", "catalogue|my requests, page 1|fulfilment queue$|entitlements|API req",
            "--profile", "catalogue", "--profile-lines", "5", "--json", str(out),
        ]
    )  # fmt: skip
    assert out.exists()
    assert result["floor"]["cpu_ms"] > 0
    names = {(page["role"], page["name"]) for page in result["pages"]}
    assert ("it_admin", "fulfilment queue") in names
    assert ("employee", "API requests (mine)") in names
    for page in result["pages"]:
        assert page["status"] == 200, page
        assert {"cpu_ms", "cpu_mean_ms", "wall_ms", "share"} <= page.keys()
    assert "function calls" in result["profile"]
    assert "| role | page | CPU ms (median) |" in bench_cpu.report(result)
