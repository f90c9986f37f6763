"""/metrics: the oldest open request per state in one index step (only the open rows).

Built CONCURRENTLY, like the queue's index: a plain CREATE INDEX on a million requests would
block every order and transition until it is done.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0009_open_queue_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                condition=models.Q(
                    (
                        "state__in",
                        ("draft", "submitted", "awaiting_approval", "approved", "in_fulfilment"),
                    )
                ),
                fields=["state", "submitted_at"],
                name="request_open_submitted_idx",
            ),
        ),
    ]
