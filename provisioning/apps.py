from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = _("Provisioning")

    def ready(self) -> None:
        from catalogue.choices import ApproverKind, FieldType
        from catalogue.exchange.hooks import register_provisioning
        from catalogue.forms import register_field_type
        from catalogue.licences import register_licence_usage
        from provisioning import (
            mails,
            movers,
            receivers,  # noqa: F401 - connects the signal receivers
        )
        from provisioning.form_fields import (
            build_directory_group_field,
            groups_below_group_base,
            resolve_group_owner,
        )
        from provisioning.models import ProvisioningAction
        from provisioning.selectors import held_by, with_licence_usage
        from provisioning.services import claims, item_actions_save
        from provisioning.templating import parse_attribute_lines
        from requests_app import fulfilment
        from requests_app.holdings import register_holding_lookup
        from requests_app.services import register_approver_resolver

        fulfilment.register_automation(claims)
        mails.register()
        movers.register()
        register_field_type(FieldType.DIRECTORY_GROUP, build_directory_group_field)
        register_approver_resolver(ApproverKind.GROUP_OWNER, resolve_group_owner)
        register_licence_usage(with_licence_usage)
        register_holding_lookup(held_by)
        register_provisioning(
            action_model=ProvisioningAction,
            parse_attributes=parse_attribute_lines,
            directory_groups=groups_below_group_base,
            actions_save=item_actions_save,
        )
