"""An index for a holder's entitlements, newest first (everyone's read entitlement_granted_idx).

Built CONCURRENTLY (outside a transaction), so granting and revoking go on meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("provisioning", "0007_entitlement_grant_revoke_indexes"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="entitlement",
            options={
                "ordering": ["-granted_at", "-id"],
                "verbose_name": "entitlement",
                "verbose_name_plural": "entitlements",
            },
        ),
        AddIndexConcurrently(
            model_name="entitlement",
            index=models.Index(
                fields=["holder", "-granted_at", "-id"], name="entitlement_holder_granted_idx"
            ),
        ),
    ]
