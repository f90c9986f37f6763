"""A partial index for the fulfilment queue: only the open rows, in the queue's order.

Built CONCURRENTLY (outside a transaction): on a table of a million requests a plain
CREATE INDEX would block every order and every transition until it is done.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0008_request_item_submitted_idx"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                condition=models.Q(
                    ("state", "approved"),
                    models.Q(("assignee__isnull", False), ("state", "in_fulfilment")),
                    _connector="OR",
                ),
                fields=["created_at", "id"],
                name="request_open_queue_idx",
            ),
        ),
    ]
