"""The fulfilment queue sorted by service: a page's ids walk the items by name and read each
item's queue entries, newest first, from this index, instead of sorting all ~2,000 open
entries by their item's rank (1.1 -> 0.15 ms at 1M requests). Built CONCURRENTLY (a failed
build leaves an INVALID index behind: drop it before running the migration again).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

import itportal.lookups


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0027_task_created_idx"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                condition=models.Q(
                    itportal.lookups.IsTrue(
                        models.Q(
                            ("state", "approved"),
                            models.Q(("assignee__isnull", False), ("state", "in_fulfilment")),
                            _connector="OR",
                        )
                    )
                ),
                fields=["item", "id"],
                include=("state", "assignee", "fulfilment_group", "hold_reason"),
                name="request_queue_item_idx",
            ),
        ),
    ]
