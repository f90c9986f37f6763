"""Runs that must not overlap take a PostgreSQL advisory lock.

Beat starts each periodic task once, but a run can outlast its interval (a full directory
sync) or be started by hand (``manage.py directory_sync``) while beat's runs: two at once
would do the same work twice and race on the same rows.

The lock is a *transaction* advisory lock held by a transaction on a connection of its own,
open for as long as the run lasts. A session lock would not do behind PgBouncer in
transaction mode, which may hand the server connection to another client between two
statements (the unlock would reach a server that never held the lock); an open transaction
keeps its server connection. If the process dies, PostgreSQL ends the transaction and
releases the lock.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging

from django.db import connections

logger = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (the same in every process)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextlib.contextmanager
def advisory_lock(name: str):
    """Yield True while this process holds the lock ``name``, False if another one does."""
    holder = connections.create_connection("default")
    try:
        holder.ensure_connection()
        raw = holder.connection
        with raw.transaction(), raw.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_key(name)])
            yield cursor.fetchone()[0]
    finally:
        holder.close()


def single_run(name: str):
    """Decorate a task body: when a run of ``name`` is under way, skip and say so."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with advisory_lock(name) as acquired:
                if not acquired:
                    logger.info("%s: another run is under way; skipped", name)
                    return {"skipped": "another run is under way"}
                return function(*args, **kwargs)

        return wrapper

    return decorate
