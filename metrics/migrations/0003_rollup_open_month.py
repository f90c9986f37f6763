from django.db import migrations, models


def install_triggers(apps, schema_editor):
    """The marking triggers again: they now mark the open month too for a change before
    today, since its roll-up reaches up to the start of a day (rollup.py)."""
    from metrics.controlling import rollup

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(rollup.install_triggers_sql(), params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0002_gauges'),
    ]

    operations = [
        migrations.AddField(
            model_name='rollupmonth',
            name='through',
            field=models.DateTimeField(blank=True, null=True, verbose_name='rolled up until'),
        ),
        # Reversed, the triggers keep marking the open month: more marks, never fewer.
        migrations.RunPython(install_triggers, migrations.RunPython.noop),
    ]
