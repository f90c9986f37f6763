"""Directory actions for the demo's automated items (run after seed_demo and the slapd seed)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from catalogue.models import CatalogueItem
from provisioning.choices import ActionKind
from provisioning.models import ProvisioningAction

# item slug → (action, group relative to the group base); groups come from demo_directory.
DEMO_ACTIONS = {
    "vpn-zugang": [(ActionKind.ADD_TO_GROUP, "cn=vpn-users")],
    "microsoft-visio": [(ActionKind.ADD_TO_GROUP, "cn=gg-visio")],
}


class Command(BaseCommand):
    help = "Configure the directory actions of the demo's automated catalogue items."

    def handle(self, *args, verbosity=1, **options):
        group_base = settings.DIRECTORY.get("group_base")
        if not group_base:
            raise CommandError("DIRECTORY_GROUP_BASE is not set: start the demo directory first.")
        with transaction.atomic():
            for slug, actions in DEMO_ACTIONS.items():
                item = CatalogueItem.objects.filter(slug=slug).first()
                if item is None:
                    raise CommandError(f"Item {slug} is missing: run seed_demo first.")
                for position, (kind, rdn) in enumerate(actions, start=1):
                    ProvisioningAction.objects.update_or_create(
                        item=item,
                        position=position,
                        defaults={"kind": kind, "target": f"{rdn},{group_base}", "attributes": ""},
                    )
        if verbosity:
            self.stdout.write(f"Directory actions configured for {len(DEMO_ACTIONS)} items.")
