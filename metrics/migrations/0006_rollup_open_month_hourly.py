from django.db import migrations


def install_triggers(apps, schema_editor):
    """The marking triggers again: they now mark the open month for a change before the
    current hour, since its roll-up reaches up to the start of an hour (rollup.py)."""
    from metrics.controlling import rollup

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(rollup.install_triggers_sql(), params=None)
        schema_editor.execute(rollup.install_sla_triggers_sql(), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0005_monthly_sla_month_idx"),
    ]

    # Reversed, the triggers keep marking by the hour: more marks than by the day, never fewer.
    operations = [migrations.RunPython(install_triggers, migrations.RunPython.noop)]
