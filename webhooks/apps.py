from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        # Webhooks observe the workflow through signals; requests_app and provisioning
        # never import webhooks.
        from django.db.models.signals import post_save

        from provisioning.signals import entitlement_revoked
        from requests_app.models import RequestEvent
        from webhooks import receivers

        post_save.connect(
            receivers.on_request_event, sender=RequestEvent, dispatch_uid="webhooks_request_event"
        )
        entitlement_revoked.connect(
            receivers.on_entitlement_revoked, dispatch_uid="webhooks_entitlement_revoked"
        )
