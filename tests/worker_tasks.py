"""Tasks only the test workers know (tests/worker_settings.py imports them): they hold a
worker's slot as long as a test wants, and leave marks in a directory the test reads."""

import time
from pathlib import Path

from celery import shared_task


@shared_task(acks_late=True)  # as every task of the portal
def hold(directory: str, name: str) -> None:
    """Marks ``<name>.started``, waits until ``release`` exists (a minute at most), marks
    ``<name>.done``."""
    marks = Path(directory)
    (marks / f"{name}.started").touch()
    deadline = time.monotonic() + 60
    while not (marks / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (marks / f"{name}.done").touch()
