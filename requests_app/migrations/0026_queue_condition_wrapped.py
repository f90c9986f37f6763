# The queue's partial indexes under the wrapped condition (requests_app.models.QUEUE_CONDITION,
# itportal.lookups.IsTrue): only they serve the queue's queries now, not the open requests'
# indexes whose bitmaps the planner combined on a wrong estimate.

from django.db import migrations, models

import itportal.lookups


class Migration(migrations.Migration):
    dependencies = [
        ("requests_app", "0025_licence_pool_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="servicerequest",
            name="request_open_queue_idx",
        ),
        migrations.RemoveIndex(
            model_name="servicerequest",
            name="request_queue_approved_idx",
        ),
        migrations.AddIndex(
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
        migrations.AddIndex(
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
