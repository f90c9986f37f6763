"""Reads of the long runs."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from runs.models import Run, RunState


def last_successes() -> list[tuple[str, datetime]]:
    """(name, end of its last successful run) of every run name that ever succeeded.

    Runs are never deleted (a directory sync every 15 minutes adds 35,000 a year), so this
    does not group them: it walks ``run_succeeded_idx`` from one name to the next and takes
    each name's last end, one index step each."""
    table = Run._meta.db_table
    # A literal, not a parameter: the partial index's condition must be seen in the query.
    done = f"state = '{RunState.SUCCEEDED.value}' AND finished_at IS NOT NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH RECURSIVE names(name) AS (
                (SELECT name FROM {table} WHERE {done} ORDER BY name LIMIT 1)
                UNION ALL
                SELECT (SELECT r.name FROM {table} r WHERE {done} AND r.name > names.name
                        ORDER BY r.name LIMIT 1)
                FROM names WHERE names.name IS NOT NULL
            )
            SELECT n.name, (SELECT MAX(r.finished_at) FROM {table} r
                            WHERE {done} AND r.name = n.name)
            FROM names n WHERE n.name IS NOT NULL ORDER BY n.name"""  # noqa: S608 - constants
        )
        return cursor.fetchall()
