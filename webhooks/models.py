"""Webhooks: endpoints IT admins register, events the portal publishes, and the outbox of
deliveries (one row per endpoint and event, written in the transaction of the event) with
a log of every attempt."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from itportal.crypto import EncryptedTextField
from itportal.fsm import ConcurrentStateMixin
from itportal.models import OutboxRow
from webhooks.choices import AttemptOutcome, DeliveryState, EventType

D = DeliveryState


class WebhookEndpoint(models.Model):
    """An HTTPS URL of another system that receives signed events (Webhook-Empfänger).

    ``secret`` signs every delivery (HMAC-SHA256); it is shown once when created or
    rotated. After a rotation the previous secret signs too, until
    ``previous_secret_expires_at``, so the receiver can switch without losing events.
    """

    url = models.CharField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # Encrypted at rest with FIELD_ENCRYPTION_KEYS (itportal.crypto): needed in plain text to
    # sign, so hashing is no option, but a database dump must not reveal them.
    secret = EncryptedTextField(_("signing secret"), editable=False)
    previous_secret = EncryptedTextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(_("secret created"), default=timezone.now)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["url", "id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, now=None) -> list[str]:
        """The current secret, and the previous one while its grace period lasts."""
        now = now or timezone.now()
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and (self.previous_secret_expires_at > now)
        ):
            secrets.append(self.previous_secret)
        return secrets


class WebhookSubscription(models.Model):
    """One event type an endpoint receives."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        verbose_name=_("endpoint"),
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    event_type = models.CharField(_("event"), max_length=40, choices=EventType)

    class Meta:
        ordering = ["endpoint", "event_type"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_type"], name="webhooksubscription_unique_event"
            )
        ]
        indexes = [models.Index(fields=["event_type"], name="webhooksub_event_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.event_type}"


class WebhookEvent(models.Model):
    """One thing that happened, with its payload fixed at that moment (same for all endpoints)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event"), max_length=40, choices=EventType)
    occurred_at = models.DateTimeField(_("occurred"), default=timezone.now)
    data = models.JSONField(_("data"), default=dict)

    class Meta:
        ordering = ["-occurred_at"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.event_type} {self.pk}"

    def payload(self) -> dict:
        """The JSON document every endpoint receives (docs/webhooks.md)."""
        return {
            "id": str(self.pk),
            "type": self.event_type,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }


class WebhookDelivery(ConcurrentStateMixin, OutboxRow):
    """The outbox row of one event for one endpoint; its id is the receiver's idempotency key.

    Created in the transaction of the event, so a rolled-back action leaves none and a
    committed one is never lost: the Celery task is enqueued after commit, and the sweeper
    re-enqueues deliveries whose message got lost.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        verbose_name=_("endpoint"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    event = models.ForeignKey(
        WebhookEvent, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries"
    )
    state = FSMField(_("state"), default=D.PENDING, choices=D.choices, protected=True)
    last_status_code = models.PositiveSmallIntegerField(_("last response code"), null=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta(OutboxRow.Meta):
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event"], name="webhookdelivery_one_per_endpoint_event"
            )
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhookdelivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="webhookdelivery_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.pk} → {self.endpoint_id}"

    # --- transitions: this row only ------------------------------------------------

    @transition(field=state, source=[D.PENDING, D.RETRYING], target=D.DELIVERED)
    def succeed(self, *, status_code: int):
        self.attempts += 1
        self.last_status_code = status_code
        self.last_error = ""
        self.delivered_at = timezone.now()

    @transition(field=state, source=[D.PENDING, D.RETRYING], target=D.RETRYING)
    def defer(self, *, status_code: int | None, error: str, retry_at):
        self.attempts += 1
        self.last_status_code = status_code
        self.last_error = error
        self.next_attempt_at = retry_at

    @transition(field=state, source=[D.PENDING, D.RETRYING], target=D.FAILED)
    def fail(self, *, status_code: int | None, error: str, attempted: bool = True):
        if attempted:
            self.attempts += 1
        self.last_status_code = status_code
        self.last_error = error

    @transition(field=state, source=D.FAILED, target=D.PENDING)
    def redeliver(self):
        """An IT admin sends a failed delivery again: a new round of attempts."""
        self.attempts = 0
        self.next_attempt_at = timezone.now()


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(
        WebhookDelivery,
        verbose_name=_("delivery"),
        on_delete=models.CASCADE,
        related_name="attempt_log",
    )
    started_at = models.DateTimeField(_("time"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    status_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=AttemptOutcome)
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.outcome} {self.status_code or ''}".strip()
