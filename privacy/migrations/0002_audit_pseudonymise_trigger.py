"""The audit trail stays append-only, with one narrow exception: the retention run may
replace the people in a record by placeholders (privacy.Placeholder) and empty its comment.

Only inside a transaction that set ``itportal.audit_pseudonymise`` (RequestEventQuerySet.
pseudonymise does), only to users listed as placeholders, and nothing else of the row may
change: every other column, present or added later, is compared. DELETE stays refused.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION requests_app_requestevent_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('itportal.audit_pseudonymise', true) = 'on'
       AND to_jsonb(NEW) - 'actor_id' - 'on_behalf_of_id' - 'comment'
           = to_jsonb(OLD) - 'actor_id' - 'on_behalf_of_id' - 'comment'
       AND (NEW.comment = OLD.comment OR NEW.comment = '')
       AND (NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
            OR NEW.actor_id IN (SELECT user_id FROM privacy_placeholder))
       AND (NEW.on_behalf_of_id IS NOT DISTINCT FROM OLD.on_behalf_of_id
            OR NEW.on_behalf_of_id IN (SELECT user_id FROM privacy_placeholder))
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit records (requests_app_requestevent) are append-only';
END;
$$ LANGUAGE plpgsql;
"""
# Back to requests_app 0002's function: no exception at all.
RESTORE = """
CREATE OR REPLACE FUNCTION requests_app_requestevent_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records (requests_app_requestevent) are append-only';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RESTORE)


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_initial"), ("requests_app", "0002_audit_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
