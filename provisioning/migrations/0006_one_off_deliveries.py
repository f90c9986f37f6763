"""Which existing catalogue items grant lasting access, decided from what they are set up to do.

Lasting access: an item that changes the directory (it has provisioning actions), draws on a
licence pool, is held until a date of its form, or is charged monthly without a one-off price
(a running service such as VPN or a specialised application). Everything else (devices bought
once, a password reset, an account extension) is a one-off delivery: its fulfilled request is
the record, and the entitlements written for it until now are removed, unless a revocation job
points at one (then it stays, as the record of that job).
"""

from django.db import migrations
from django.db.models import Exists, OuterRef, Q


def decide(apps, schema_editor):
    CatalogueItem = apps.get_model("catalogue", "CatalogueItem")
    ProvisioningAction = apps.get_model("provisioning", "ProvisioningAction")
    ProvisioningJob = apps.get_model("provisioning", "ProvisioningJob")
    Entitlement = apps.get_model("provisioning", "Entitlement")
    lasting = (
        Q(Exists(ProvisioningAction.objects.filter(item=OuterRef("pk"))))
        | Q(licence_pool_size__isnull=False)
        | ~Q(valid_until_field="")
        | Q(price_monthly__gt=0, price_once=0)
    )
    CatalogueItem.objects.filter(lasting).update(grants_access=True)
    CatalogueItem.objects.exclude(lasting).update(grants_access=False)
    Entitlement.objects.filter(item__grants_access=False).exclude(
        Exists(ProvisioningJob.objects.filter(entitlement=OuterRef("pk")))
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0011_item_grants_access"),
        ("provisioning", "0005_job_due_lease_wakes"),
    ]

    # Backwards: the field goes away with catalogue's migration; removed rows stay removed.
    operations = [migrations.RunPython(decide, migrations.RunPython.noop)]
