# ruff: noqa: S608 - SQL built from table names and constants; values are parameters
"""Gauges kept incrementally: statement triggers append deltas, scrapes sum them.

``entitlements_active`` (label: item id), ``requests_open`` (label: state), ``jobs_failed``
and ``mails_stuck`` (label: state, failed or uncertain) are counted where rows change, so a
scrape reads a few rows however many entitlements, requests, jobs or mails exist. Failed jobs
and mails stay until an IT admin deals with them, so unlike the queue they pile up with the
history. ``compact()`` folds the deltas (the beat task ``metrics.tasks.compact_gauges``).
"""

from __future__ import annotations

from django.db import connection

from catalogue.models import CatalogueItem
from metrics.models import GaugeDelta
from notifications.choices import MailState
from notifications.models import OutgoingMail
from provisioning.choices import EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app.choices import OPEN_STATES
from requests_app.models import ServiceRequest

ENTITLEMENTS_ACTIVE = "entitlements_active"
REQUESTS_OPEN = "requests_open"
JOBS_FAILED = "jobs_failed"
MAILS_STUCK = "mails_stuck"

T_DELTA = GaugeDelta._meta.db_table
ACTIVE = EntitlementState.ACTIVE.value
_OPEN = ", ".join(f"'{state.value}'" for state in OPEN_STATES)
FAILED_JOB = JobState.FAILED.value
STUCK_MAIL_STATES = (MailState.FAILED, MailState.UNCERTAIN)
_STUCK = ", ".join(f"'{state.value}'" for state in STUCK_MAIL_STATES)

# table -> (gauge, label column, condition on a row); a row counts while the condition holds.
COUNTED = {
    Entitlement._meta.db_table: (ENTITLEMENTS_ACTIVE, "item_id", f"state = '{ACTIVE}'"),
    ServiceRequest._meta.db_table: (REQUESTS_OPEN, "state", f"state IN ({_OPEN})"),
    ProvisioningJob._meta.db_table: (JOBS_FAILED, "state", f"state = '{FAILED_JOB}'"),
    OutgoingMail._meta.db_table: (MAILS_STUCK, "state", f"state IN ({_STUCK})"),
}


def _deltas(table: str, operation: str) -> str:
    gauge, label, condition = COUNTED[table]
    plus = f"SELECT n.{label}::text AS label, 1 AS d FROM n WHERE n.{condition}"
    minus = f"SELECT o.{label}::text AS label, -1 AS d FROM o WHERE o.{condition}"
    if operation == "INSERT":
        rows = plus
    elif operation == "DELETE":
        rows = minus
    else:
        rows = f"{plus} UNION ALL {minus}"
    return f"""
    INSERT INTO {T_DELTA} (gauge, label, delta)
    SELECT '{gauge}', x.label, SUM(x.d) FROM ({rows}) AS x
    GROUP BY x.label HAVING SUM(x.d) <> 0;"""


_REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS n",
    "DELETE": "REFERENCING OLD TABLE AS o",
    "UPDATE": "REFERENCING OLD TABLE AS o NEW TABLE AS n",
}


def _name(table: str, operation: str) -> str:
    return f"metrics_gauge_{table}_{operation.lower()}"


def install_triggers_sql(tables=COUNTED) -> str:
    statements = []
    for table in tables:
        for operation, referencing in _REFERENCING.items():
            name = _name(table, operation)
            statements.append(
                f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
{_deltas(table, operation)}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {name} ON {table};
CREATE TRIGGER {name} AFTER {operation} ON {table} {referencing}
    FOR EACH STATEMENT EXECUTE FUNCTION {name}();"""
            )
    return "\n".join(statements)


def drop_triggers_sql(tables=COUNTED) -> str:
    return "\n".join(
        f"DROP TRIGGER IF EXISTS {_name(t, op)} ON {t}; DROP FUNCTION IF EXISTS {_name(t, op)}();"
        for t in tables
        for op in _REFERENCING
    )


def reset_sql(tables=COUNTED) -> str:
    """Start the gauges of ``tables`` from the current counts (after installing the triggers,
    or to repair).

    Run in a transaction: the lock makes changes under way finish first and changes that
    start meanwhile wait with their deltas until the recount is committed."""
    names = ", ".join(f"'{COUNTED[table][0]}'" for table in tables)
    parts = [
        f"LOCK TABLE {T_DELTA} IN EXCLUSIVE MODE;",
        f"DELETE FROM {T_DELTA} WHERE gauge IN ({names});",
    ]
    for table in tables:
        gauge, label, condition = COUNTED[table]
        parts.append(
            f"INSERT INTO {T_DELTA} (gauge, label, delta) SELECT '{gauge}', {label}::text,"
            f" COUNT(*) FROM {table} WHERE {condition} GROUP BY {label};"
        )
    return "\n".join(parts)


def migration_operation(tables):
    """The RunPython of a migration that starts counting ``tables``: the triggers, then the
    gauges from the current counts; backwards the triggers and the gauges' deltas go."""
    from django.db.migrations import RunPython

    def install(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(install_triggers_sql(tables), params=None)
            schema_editor.execute(reset_sql(tables), params=None)

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(drop_triggers_sql(tables), params=None)
            schema_editor.execute(
                f"DELETE FROM {T_DELTA} WHERE gauge = ANY(%s)",
                params=[[COUNTED[table][0] for table in tables]],
            )

    return RunPython(install, drop)


def values(gauge: str) -> dict[str, int]:
    """Label -> current value (labels at 0 left out)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT label, SUM(delta) FROM {T_DELTA} WHERE gauge = %s"
            " GROUP BY label HAVING SUM(delta) <> 0",
            [gauge],
        )
        return {label: int(value) for label, value in cursor.fetchall()}


def counts(*names: str) -> dict[tuple[str, str], int]:
    """(gauge, label) -> current value of the gauges named, in one query (zeros left out)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT gauge, label, SUM(delta) FROM {T_DELTA} WHERE gauge = ANY(%s)"
            " GROUP BY gauge, label HAVING SUM(delta) <> 0",
            [list(names)],
        )
        return {(gauge, label): int(value) for gauge, label, value in cursor.fetchall()}


def compact() -> int:
    """Fold the deltas into one row per gauge and label; returns the rows removed.

    Rows appended meanwhile by other transactions are not in this statement's snapshot and
    stay as they are."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH gone AS (DELETE FROM {T_DELTA} RETURNING gauge, label, delta),
            kept AS (
                INSERT INTO {T_DELTA} (gauge, label, delta)
                SELECT gauge, label, SUM(delta) FROM gone GROUP BY 1, 2 HAVING SUM(delta) <> 0
                RETURNING 1
            )
            SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM kept)"""
        )
        return cursor.fetchone()[0]


def entitlements_active_by_slug() -> list[tuple[str, int]]:
    """(item slug, active entitlements) of the items that have any, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.slug, SUM(g.delta) FROM {T_DELTA} g"
            f" JOIN {CatalogueItem._meta.db_table} i ON i.id = g.label::bigint"
            " WHERE g.gauge = %s GROUP BY i.slug HAVING SUM(g.delta) > 0 ORDER BY i.slug",
            [ENTITLEMENTS_ACTIVE],
        )
        return [(slug, int(count)) for slug, count in cursor.fetchall()]


def requests_open(states: list[str]) -> list[tuple[str, int, object]]:
    """(state, open requests, oldest submission) per state, in one query: the count from the
    deltas, the oldest by one step on ``request_open_submitted_idx``."""
    table = ServiceRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT s.state,
                COALESCE((SELECT SUM(g.delta) FROM {T_DELTA} g
                          WHERE g.gauge = %s AND g.label = s.state), 0),
                (SELECT MIN(r.submitted_at) FROM {table} r
                 WHERE r.state = s.state AND r.state IN ({_OPEN}))
            FROM unnest(%s::text[]) WITH ORDINALITY AS s(state, position)
            ORDER BY s.position""",
            [REQUESTS_OPEN, states],
        )
        return [(state, int(count), oldest) for state, count, oldest in cursor.fetchall()]
