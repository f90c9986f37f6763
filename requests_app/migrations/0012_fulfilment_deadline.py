"""Fulfilment deadlines (an item's SLA target) on requests.

Nullable columns without a default are added at once; the index of the open requests with
a due date is built CONCURRENTLY, like the queue's, so orders never wait for it.
"""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("catalogue", "0013_item_sla_target"),
        ("requests_app", "0011_submission_bundle"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="servicerequest",
            name="fulfilment_due_on",
            field=models.DateField(blank=True, null=True, verbose_name="fulfilment due"),
        ),
        migrations.AddField(
            model_name="servicerequest",
            name="sla_escalated_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="deadline escalated"),
        ),
        migrations.AddField(
            model_name="servicerequest",
            name="sla_warned_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="deadline warning sent"),
        ),
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(
                condition=models.Q(
                    ("fulfilment_due_on__isnull", False),
                    ("state__in", ["approved", "in_fulfilment"]),
                ),
                fields=["fulfilment_due_on"],
                name="request_sla_due_idx",
            ),
        ),
    ]
