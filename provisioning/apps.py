from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = _("Provisioning")

    def ready(self) -> None:
        from provisioning import receivers  # noqa: F401 - connects the signal receivers
        from provisioning.services import claims
        from requests_app import fulfilment

        fulfilment.register_automation(claims)
