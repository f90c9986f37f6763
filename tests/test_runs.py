"""Long work is visible: progress on the terminal and on the IT admins' status page."""

import io

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from runs.models import Run, RunState
from runs.progress import track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _every_update_written(monkeypatch):
    """Production writes at most once a second; here every update, to read it back."""
    monkeypatch.setattr("runs.progress.WRITE_INTERVAL", 0.0)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal_and_a_row_with_the_outcome():
    out = io.StringIO()
    with track("catalogue-import", total=20, unit="items", stream=out) as progress:
        for _ in range(20):
            progress.advance()
        progress.outcome = "20 imported"
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("catalogue-import: 1/20 items (5%), 0:00:00 elapsed, ~")
    assert "catalogue-import: 10/20 items (50%)" in out.getvalue()
    assert lines[-1] == "catalogue-import: 20/20 items (100%), 0:00:00 elapsed"
    assert len(lines) <= 12  # a line per tenth, not per item
    run = Run.objects.get(name="catalogue-import")
    assert (run.state, run.done, run.total, run.outcome) == (
        RunState.SUCCEEDED,
        20,
        20,
        "20 imported",
    )
    assert run.finished_at is not None


def test_a_bar_on_a_terminal():
    terminal = Terminal()
    with track("retention", total=4, unit="rows", stream=terminal) as progress:
        progress.update(4)
    assert "retention" in terminal.getvalue()
    assert "4/4" in terminal.getvalue()


def test_a_failed_run_says_why_and_the_error_goes_on():
    with pytest.raises(ValueError, match="broken entry"), track("sync", stream=None) as progress:
        progress.update(7)
        raise ValueError("broken entry")
    run = Run.objects.get(name="sync")
    assert (run.state, run.done) == (RunState.FAILED, 7)
    assert run.outcome == "ValueError: broken entry"


def test_status_page_for_it_admins(client, org):
    with track("directory-sync", total=400, unit="entries", stream=None) as progress:
        progress.update(100)
        client.force_login(org.admin.user)
        page = client.get("/laeufe/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "directory-sync" in html
    assert '<progress max="400" value="100"' in html
    assert "100 of 400 entries (25 %)" in html
    client.force_login(org.alice.user)
    assert client.get("/laeufe/").status_code == 403


def test_directory_sync_command_leaves_a_run(directory_settings):
    err = io.StringIO()
    call_command("directory_sync", stdout=io.StringIO(), stderr=err)
    run = Run.objects.get(name="directory-sync")
    assert run.state == RunState.SUCCEEDED
    assert run.outcome
    assert err.getvalue().startswith("directory-sync: ")


@pytest.mark.django_db(transaction=True)
def test_progress_shows_while_the_work_s_transaction_is_open(settings):
    settings.RUNS_OWN_CONNECTION = True
    db = connection.settings_dict
    dsn = psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    with transaction.atomic(), track("seed-history", total=7, stream=None) as progress:
        progress.update(3)
        with psycopg.connect(dsn) as observer:
            row = observer.execute(
                "SELECT done, state FROM runs_run WHERE id = %s", [progress.run_id]
            ).fetchone()
        assert row == (3, RunState.RUNNING)
