"""How governance reacts to the request workflow (requests_app never imports us)."""

from django.dispatch import receiver

from requests_app.signals import request_fulfilled, requests_fulfilled


@receiver(request_fulfilled)
def rescan_the_holder(sender, service_request, **kwargs) -> None:
    """A new entitlement may break a rule over groups or one granted outside the checks:
    rescan its holder after commit (the hourly scan catches a lost wake-up)."""
    from governance.sod_services import _scan_after_commit

    _scan_after_commit([service_request.beneficiary_id])


@receiver(requests_fulfilled)
def rescan_the_holders(sender, service_requests, **kwargs) -> None:
    """Many requests fulfilled together: one rescan of all their holders."""
    from governance.sod_services import _scan_after_commit

    _scan_after_commit({service_request.beneficiary_id for service_request in service_requests})
