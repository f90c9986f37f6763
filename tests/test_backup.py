"""Backup and restore as docs/operations.md describes them: pg_dump of a portal with a year
of orders, pg_restore into an empty database, and every row is back — requests, entitlements,
the audit trail (still append-only), the record of applied migrations."""

import shutil
import subprocess
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from devtools import history

pytestmark = pytest.mark.django_db(transaction=True)

# What the question "is everything back?" is about; every other table is compared too.
MUST_HAVE = (
    "requests_app_servicerequest",
    "requests_app_requestevent",
    "requests_app_approval",
    "provisioning_entitlement",
)


def conninfo(dbname: str) -> str:
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=dbname,
    )


def fingerprint(dbname: str) -> dict[str, tuple[int, str]]:
    """Rows and a checksum of every table's content, independent of physical order."""
    with psycopg.connect(conninfo(dbname)) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        prints = {}
        for table in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                " FROM {} t"
            ).format(sql.Identifier(table))
            prints[table] = tuple(conn.execute(query).fetchone())
        return prints


def client(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install Debian's postgresql-client")
    return path


def test_dump_and_restore_into_an_empty_database_keeps_every_record(tmp_path):
    call_command("seed_demo", verbosity=0)
    history.generate(count=400, months=6, seed=5)
    source = connection.settings_dict["NAME"]
    before = fingerprint(source)
    for table in MUST_HAVE:
        assert before[table][0] > 0, f"nothing in {table}: the test would prove nothing"

    dump = tmp_path / "itportal.dump"
    subprocess.run(
        [client("pg_dump"), "--format=custom", f"--file={dump}", "--dbname", conninfo(source)],
        check=True,
        capture_output=True,
    )
    restored = f"{source}_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(restored)))
    try:
        subprocess.run(
            [
                *(client("pg_restore"), "--no-owner", "--exit-on-error"),
                *("--dbname", conninfo(restored), str(dump)),
            ],
            check=True,
            capture_output=True,
        )
        after = fingerprint(restored)
        # Every table, django_migrations among them: no migration to apply after a restore.
        assert "django_migrations" in after
        assert after == before

        # The audit trail is append-only in the restored database too (its trigger came along).
        with (
            psycopg.connect(conninfo(restored)) as conn,
            pytest.raises(psycopg.errors.RaiseException),
        ):
            conn.execute("UPDATE requests_app_requestevent SET comment = 'rewritten'")
    finally:
        with psycopg.connect(conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(restored))
            )
