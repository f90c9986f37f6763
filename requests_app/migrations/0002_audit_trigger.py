"""On PostgreSQL, refuse UPDATE and DELETE of audit records for anyone with SQL access."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION requests_app_requestevent_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records (requests_app_requestevent) are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER requests_app_requestevent_immutable
    BEFORE UPDATE OR DELETE ON requests_app_requestevent
    FOR EACH ROW EXECUTE FUNCTION requests_app_requestevent_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS requests_app_requestevent_immutable ON requests_app_requestevent;
DROP FUNCTION IF EXISTS requests_app_requestevent_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("requests_app", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
