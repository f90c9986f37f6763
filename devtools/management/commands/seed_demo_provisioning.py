"""Directory actions for the demo's automated items (run after seed_demo and the slapd seed)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F

from catalogue.choices import ApproverKind, FieldType
from catalogue.models import ApprovalPolicyStep, CatalogueItem, FormField
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
            self.file_share_access(group_base)
        if verbosity:
            self.stdout.write(f"Directory actions configured for {len(DEMO_ACTIONS) + 1} items.")

    def file_share_access(self, group_base: str) -> None:
        """'Zugriff auf Netzlaufwerk' covers every file-share group: the employee picks one,
        its owner in the directory decides, and the job adds the beneficiary to it."""
        item = CatalogueItem.objects.get(slug="zugriff-netzlaufwerk")
        # The picked group replaces the typed path and the hand-picked data owner.
        item.form_fields.filter(key__in=["pfad", "dateneigentuemer"]).delete()
        FormField.objects.update_or_create(
            item=item,
            key="laufwerk",
            defaults={
                "label": "Netzlaufwerk",
                "help_text": "Das Laufwerk bzw. der Ordner, auf den Sie zugreifen möchten.",
                "field_type": FieldType.DIRECTORY_GROUP,
                "directory_base": f"ou=fileshares,{group_base}",
                "required": True,
                "position": 0,
            },
        )
        item.approval_steps.all().delete()
        ApprovalPolicyStep.objects.create(
            item=item,
            position=1,
            approver_kind=ApproverKind.GROUP_OWNER,
            person_field_key="laufwerk",
            label="Dateneigentümer(in) des Laufwerks",
        )
        ProvisioningAction.objects.update_or_create(
            item=item,
            position=1,
            defaults={
                "kind": ActionKind.ADD_TO_GROUP,
                "target": "{{ answers.laufwerk }}",
                "attributes": "",
            },
        )
        item.valid_until_field = "befristet_bis"
        item.save(update_fields=["valid_until_field"])
        CatalogueItem.objects.filter(pk=item.pk).update(version=F("version") + 1)
