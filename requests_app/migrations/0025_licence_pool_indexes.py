"""Licence pools: an item's approved requests and those in fulfilment (licences reserved),
read from a small partial index, not a bitmap of every open request filtered by item. Built
CONCURRENTLY (a failed build leaves an INVALID index behind: drop it before running the
migration again).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0024_list_search_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                condition=models.Q(("state__in", ["approved", "in_fulfilment"])),
                fields=["item"],
                name="request_item_reserved_idx",
            ),
        ),
    ]
