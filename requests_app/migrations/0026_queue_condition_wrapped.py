"""The queue's partial indexes under the wrapped condition (requests_app.models.QUEUE_CONDITION,
itportal.lookups.IsTrue): only they serve the queue's queries now, not the open requests'
indexes whose bitmaps the planner combined on a wrong estimate. Dropped and built
CONCURRENTLY, as 0025 (14 s at 1M; a failed build leaves an INVALID index behind: drop it
before running the migration again).
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

import itportal.lookups


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0025_licence_pool_indexes"),
    ]

    operations = [
        RemoveIndexConcurrently(
            model_name="servicerequest",
            name="request_open_queue_idx",
        ),
        RemoveIndexConcurrently(
            model_name="servicerequest",
            name="request_queue_approved_idx",
        ),
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
                fields=["created_at", "id"],
                name="request_open_queue_idx",
            ),
        ),
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
                fields=["approved_at"],
                include=(
                    "id",
                    "state",
                    "item",
                    "beneficiary",
                    "requester",
                    "assignee",
                    "fulfilment_group",
                    "fulfilment_due_on",
                    "hold_reason",
                ),
                name="request_queue_approved_idx",
            ),
        ),
    ]
