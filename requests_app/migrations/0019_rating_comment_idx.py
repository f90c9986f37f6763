"""Controlling's rating comments, latest first, from a partial index of the commented ones.

Built CONCURRENTLY (outside a transaction), so that ratings go on while it is built.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0018_request_item_last_order_idx"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="rating",
            index=models.Index(
                fields=["-rated_at", "-id"],
                include=("request",),
                condition=models.Q(("comment", ""), _negated=True),
                name="rating_comment_idx",
            ),
        ),
    ]
