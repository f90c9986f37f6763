from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    """What an endpoint can subscribe to; the value is the ``type`` in the payload."""

    REQUEST_SUBMITTED = "request.submitted", _("Request submitted")
    REQUEST_APPROVED = "request.approved", _("Request approved")
    REQUEST_REJECTED = "request.rejected", _("Request rejected")
    REQUEST_FULFILLED = "request.fulfilled", _("Request fulfilled")
    REQUEST_FAILED = "request.failed", _("Request failed")
    ENTITLEMENT_REVOKED = "entitlement.revoked", _("Entitlement revoked")
    # Sent only on demand ("send test event"), to one endpoint; not subscribable.
    TEST = "webhook.test", _("Test event")


SUBSCRIBABLE = [choice for choice in EventType.choices if choice[0] != EventType.TEST]


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRYING = "retrying", _("Waiting to retry")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


OPEN_DELIVERY_STATES = (DeliveryState.PENDING, DeliveryState.RETRYING)


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    RETRY = "retry", _("Transient error, will retry")
    FAILED = "failed", _("Failed")
