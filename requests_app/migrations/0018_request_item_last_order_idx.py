"""Rarely ordered services: the last order per service from an index-only scan.

The new index replaces ``request_item_submitted_idx`` (same key) and includes the
beneficiary and the cost centre, which the report's filters read. Built CONCURRENTLY
(outside a transaction) so that orders and transitions go on while it is built, and the
old index is dropped only once the new one serves.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0017_decision_support_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                fields=["item", "submitted_at"],
                include=("beneficiary", "cost_centre"),
                name="request_item_last_order_idx",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="servicerequest",
            name="request_item_submitted_idx",
        ),
    ]
