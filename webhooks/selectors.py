"""Reads of webhooks: only IT admins see endpoints and deliveries."""

from django.db.models import Count, Q, QuerySet

from itportal.roles import is_it_admin
from webhooks.choices import OPEN_DELIVERY_STATES, DeliveryState
from webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoints_visible_to(user) -> QuerySet[WebhookEndpoint]:
    if not is_it_admin(user):
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.prefetch_related("subscriptions").annotate(
        open_deliveries=Count("deliveries", filter=Q(deliveries__state__in=OPEN_DELIVERY_STATES)),
        failed_deliveries=Count("deliveries", filter=Q(deliveries__state=DeliveryState.FAILED)),
    )


def deliveries_visible_to(user) -> QuerySet[WebhookDelivery]:
    if not is_it_admin(user):
        return WebhookDelivery.objects.none()
    return WebhookDelivery.objects.select_related("event", "endpoint")
