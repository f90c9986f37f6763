"""Ratings with a comment in the controlling roll-up (``MonthlyFigures.commented``).

The column starts at 0 in every row, so every month is marked dirty: read live until the
next run of the beat task (or ``manage.py controlling_rollup``) recomputes it. The rating
trigger now also marks a month when one of its ratings gains or loses its comment.
"""

from django.db import migrations, models


def install(apps, schema_editor):
    from metrics.controlling import rollup

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(rollup.install_triggers_sql(), params=None)
        schema_editor.execute(
            "UPDATE metrics_rollupmonth SET dirty = true, version = version + 1", params=None
        )


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0006_rollup_open_month_hourly"),
    ]

    operations = [
        migrations.AddField(
            model_name="monthlyfigures",
            name="commented",
            field=models.IntegerField(default=0),
        ),
        # Reversed, the triggers keep marking comment changes: more marks, never fewer.
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
