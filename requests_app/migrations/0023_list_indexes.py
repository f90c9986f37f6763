""""My requests" in two parts, each along its own index, and the queue's ids from its index.

The requester index gets the id and the state (the pager counts the user's requests from
the index alone), the beneficiary one is new; the queue's partial index includes what its
tabs and sorts read. All built CONCURRENTLY (outside a transaction): a plain CREATE INDEX
on a million requests blocks every order and transition while it runs (6.5 s for the
beneficiary's on a loaded test machine). A replaced index is renamed first and dropped
only once its successor serves, so the lists never go without one. A build that fails
leaves an INVALID index behind: drop it before running the migration again.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

QUEUE_CONDITION = models.Q(
    ("state", "approved"),
    models.Q(("assignee__isnull", False), ("state", "in_fulfilment")),
    _connector="OR",
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("requests_app", "0022_request_created_id_idx"),
    ]

    operations = [
        migrations.RenameIndex(
            model_name="servicerequest",
            old_name="request_requester_idx",
            new_name="request_requester_old_idx",
        ),
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                fields=["requester", "-created_at"],
                include=("id", "state"),
                name="request_requester_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="servicerequest", name="request_requester_old_idx"),
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                fields=["beneficiary", "-created_at"],
                include=("id", "state", "requester"),
                name="request_beneficiary_idx",
            ),
        ),
        migrations.RenameIndex(
            model_name="servicerequest",
            old_name="request_queue_approved_idx",
            new_name="request_queue_approved_old_idx",
        ),
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
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
                condition=QUEUE_CONDITION,
                name="request_queue_approved_idx",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="servicerequest", name="request_queue_approved_old_idx"
        ),
    ]
