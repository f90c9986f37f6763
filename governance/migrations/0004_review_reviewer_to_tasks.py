"""The review's single reviewer now lives in its tasks (0003 copied it)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_recertification_stages"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='review',
            name='review_pending_by_reviewer',
        ),
        migrations.RemoveField(
            model_name='review',
            name='reviewer',
        ),
    ]
