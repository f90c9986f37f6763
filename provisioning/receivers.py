"""How provisioning reacts to the request workflow (requests_app never imports us)."""

from django.dispatch import receiver

from provisioning import services
from requests_app.signals import request_approved, request_fulfilled


@receiver(request_approved)
def start_provisioning(sender, request_id: int, **kwargs) -> None:
    services.provision_request(request_id=request_id)


@receiver(request_fulfilled)
def grant_entitlement(sender, service_request, **kwargs) -> None:
    services.entitlement_grant(service_request=service_request)
