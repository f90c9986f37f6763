"""Celery tasks and a database that is away for a while (a restart, a failover).

Each task meets a database error in one of two documented ways:

- **rerun by beat** (``skip_on_database_errors``): frequent runs (the sweepers, every 30 or
  60 s) log a warning and end; beat's next run does the work, and a retry would only queue
  up beside it.
- **retry with backoff** (``RETRY_ON_DATABASE_ERRORS``): rare runs (hourly, daily) try
  again after 2, 4, 8 … s (at most 5 min, with jitter), for up to about half an hour; the
  next scheduled run may be a day away.

The tasks that work on one row (a provisioning job, a mail, a webhook delivery) retry with
the backoff of their outbox instead, and their sweepers pick up what is still open.

Either is safe because every run is idempotent (it reads what is, then writes the
difference) and the periodic ones are guarded by ``itportal.locks.single_run``. Celery's
Django fix-up closes the broken connection after the failed run, so the next one
connects anew.
"""

from __future__ import annotations

import functools
import logging

from django.db import InterfaceError, OperationalError, close_old_connections

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)

RETRY_ON_DATABASE_ERRORS = {
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 10,
}


def skip_on_database_errors(name: str):
    """Decorate a frequent periodic task's body: a database error ends the run with a
    warning, and beat's next run takes over."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except DATABASE_ERRORS as exc:
                close_old_connections()
                logger.warning(
                    "%s: the database is unavailable (%s); beat's next run takes over",
                    name,
                    str(exc).strip(),
                )
                return {"skipped": "database unavailable"}

        wrapper.skips_database_errors = True  # tests/test_celery_routing.py looks for it
        return wrapper

    return decorate
