"""Progress of long work: on the terminal (tqdm, or plain lines when not a terminal) and as a
Run row the IT admins' status page shows while the work goes on.

    with track("directory-sync", unit=_("entries")) as progress:
        for entry in entries:
            ...
            progress.advance()
        progress.outcome = "12 new, 3 changed"

Work that runs inside one long transaction (seed_history) would hide its progress until the
commit; the row is therefore written on a connection of its own (``RUNS_OWN_CONNECTION``,
off in the tests, whose transactions are rolled back).
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from runs.models import Run, RunState

logger = structlog.get_logger("runs")

# At most one database write a second: progress must not cost the work noticeable time.
WRITE_INTERVAL = 1.0
# Without a terminal: a line every tenth of the way, and at least every half minute.
LINE_INTERVAL = 30.0


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class Progress:
    def __init__(self, name: str, *, total: int | None, unit: str, stream):
        self.name, self.total, self.unit, self.stream = name, total, str(unit), stream
        self.done = 0
        self.outcome = ""
        self.run_id: int | None = None
        self._started = time.monotonic()
        self._written = 0.0
        self._line_at, self._line_step = 0.0, -1
        self._bar = None
        self._db = (
            connections.create_connection("default") if settings.RUNS_OWN_CONNECTION else None
        )

    # --- the Run row ----------------------------------------------------------------------

    def _execute(self, sql: str, params: list):
        db = self._db or connection
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None

    def _insert(self) -> None:
        now = timezone.now()
        table = Run._meta.db_table
        (self.run_id,) = self._execute(
            f"INSERT INTO {table} (name, state, done, total, unit, outcome, host, started_at, "  # noqa: S608
            "updated_at) VALUES (%s, %s, 0, %s, %s, '', %s, %s, %s) RETURNING id",
            [self.name, RunState.RUNNING, self.total, self.unit, socket.gethostname(), now, now],
        )

    def _update(self, *, state: str | None = None) -> None:
        now = timezone.now()
        table = Run._meta.db_table
        self._execute(
            f"UPDATE {table} SET done = %s, total = %s, outcome = %s, updated_at = %s, "  # noqa: S608
            "state = COALESCE(%s, state), finished_at = CASE WHEN %s THEN %s END WHERE id = %s",
            [self.done, self.total, self.outcome, now, state, state is not None, now, self.run_id],
        )
        self._written = time.monotonic()

    # --- the caller's interface -----------------------------------------------------------

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        if self._bar is not None:
            self._bar.n = done
            self._bar.refresh()
        else:
            self._line()
        if time.monotonic() - self._written >= WRITE_INTERVAL:
            self._update()

    # --- the terminal ---------------------------------------------------------------------

    def _line(self, *, final: bool = False) -> None:
        if self.stream is None:
            return
        elapsed = time.monotonic() - self._started
        step = int(10 * self.done / self.total) if self.total else -1
        if not final and step == self._line_step and elapsed - self._line_at < LINE_INTERVAL:
            return
        self._line_step, self._line_at = step, elapsed
        counted = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        text = f"{self.name}: {counted} {self.unit}".rstrip()
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        text += f", {_clock(elapsed)} elapsed"
        if self.total and self.done and not final:
            left = elapsed * (self.total - self.done) / self.done
            text += f", ~{_clock(left)} left"
        self.stream.write(text + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        self._insert()
        self._written = time.monotonic()
        if self.stream is not None and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total, desc=self.name, unit=f" {self.unit}" if self.unit else "it",
                file=self.stream, dynamic_ncols=True,
            )  # fmt: skip
        logger.info("run.started", run=self.run_id, name=self.name, total=self.total)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        failed = exc_type is not None
        if failed:
            self.outcome = f"{exc_type.__name__}: {exc}"[:2000]
        try:
            self._update(state=RunState.FAILED if failed else RunState.SUCCEEDED)
        finally:
            if self._bar is not None:
                self._bar.close()
            else:
                self._line(final=True)
            if self._db is not None:
                self._db.close()
        seconds = round(time.monotonic() - self._started, 1)
        log = logger.warning if failed else logger.info
        log(
            "run.finished",
            run=self.run_id,
            name=self.name,
            state=RunState.FAILED if failed else RunState.SUCCEEDED,
            done=self.done,
            seconds=seconds,
            outcome=self.outcome,
        )


def track(name: str, *, total: int | None = None, unit: str = "", stream=sys.stderr) -> Progress:
    """A Run row and a progress display for the work in the ``with`` block.

    ``stream=None`` (Celery tasks) shows nothing on a terminal; the row and the logs remain.
    """
    return Progress(name, total=total, unit=unit, stream=stream)
