"""Smoke test of bench/bench_pages.py on tiny data: gunicorn serves, wrk drives, the report
has every figure. No timing is asserted: this only shows the benchmark runs."""

import shutil
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_pages
import pages_table

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


@pytest.fixture
def city(monkeypatch):
    call_command("seed_demo", verbosity=0)
    call_command("seed_history", count=300, months=3, verbosity=0)
    db = connection.settings_dict
    # gunicorn's workers read the test database (committed: a transactional test).
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    )


def test_the_page_benchmark_runs_on_tiny_data(city, tmp_path):
    out = tmp_path / "pages.json"
    result = bench_pages.main(
        [
            "--quick", "--seconds", "1", "--connections", "2", "--workers", "1",
            "--only", "catalogue|my requests, page|fulfilment queue$|API requests|admin: req",
            "--explain", "--json", str(out),
        ]
    )  # fmt: skip
    assert out.exists()
    assert result["floor"]["rps"] > 0
    names = {(page["role"], page["name"]) for page in result["pages"]}
    assert ("employee", "my requests, page 100") in names
    assert ("it_admin", "fulfilment queue") in names
    for page in result["pages"]:
        assert page["status"] == 200, page
        assert page["queries"] > 0
        # On a loaded machine a slow page may finish no request in a second: no figure
        # is asserted, only that each was measured without errors.
        assert page["result"]["errors"] == 0, page
        assert {"rps", "share", "p50_ms", "p95_ms", "p95_ratio"} <= page["result"].keys()
    assert any(page["plans"] for page in result["pages"])
    assert "| role | page | req/s |" in bench_pages.report(result)
    # The BENCHMARKS.md table from two runs (here the same run twice).
    text = pages_table.main([str(out), str(out)])
    assert text.count("\n| ") == len(result["pages"]) + 1
    assert "pages reach 0.2 of the floor at both sizes" in text
