"""Writes of webhooks: endpoints, publishing events into the outbox, delivering them.

An event writes its WebhookEvent and one WebhookDelivery per subscribed endpoint in the
transaction of whatever happened, and enqueues the deliveries after commit: a rolled-back
action sends nothing, a committed one is not lost (the sweeper re-enqueues what a lost
message or a dead worker left behind). A delivery locks its row while it sends, so two
workers never send it at the same time, and a delivered or failed one is never sent again.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from itportal import bulk, outbox
from itportal.exceptions import ActionConflict
from webhooks import addresses, client, signing
from webhooks.choices import (
    OPEN_DELIVERY_STATES,
    SUBSCRIBABLE,
    AttemptOutcome,
    DeliveryState,
    EventType,
)
from webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

ERROR_LENGTH = 500
# A task may run a little before the time the row names (clocks of worker and database).
DUE_TOLERANCE = timedelta(seconds=5)
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


# --- endpoints --------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _clean(url: str, events: Iterable[str], description: str) -> tuple[str, list[str], str]:
    errors = {}
    url = (url or "").strip()
    try:
        addresses.check_url(url)
    except addresses.UnsafeURL as exc:
        errors["url"] = str(exc)
    allowed = {value for value, _label in SUBSCRIBABLE}
    events = sorted(set(events or []))
    if not events:
        errors["events"] = _("Please choose at least one event.")
    elif not set(events) <= allowed:
        errors["events"] = _("Unknown event.")
    description = (description or "").replace("\x00", "").strip()
    if len(description) > 200:
        errors["description"] = _("The description is too long (at most 200 characters).")
    if errors:
        raise ValidationError(errors)
    return url, events, description


def _subscribe(endpoint: WebhookEndpoint, events: list[str]) -> None:
    endpoint.subscriptions.exclude(event_type__in=events).delete()
    WebhookSubscription.objects.bulk_create(
        [WebhookSubscription(endpoint=endpoint, event_type=event) for event in events],
        ignore_conflicts=True,
    )


@transaction.atomic
def endpoint_create(
    *, url: str, events: Iterable[str], description: str = "", is_active: bool = True, user
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret (shown to the admin once)."""
    url, events, description = _clean(url, events, description)
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        description=description,
        is_active=is_active,
        secret=secret,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    _subscribe(endpoint, events)
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *, endpoint_id: int, url: str, events: Iterable[str], description: str, is_active: bool
) -> WebhookEndpoint:
    url, events, description = _clean(url, events, description)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.url = url
    endpoint.description = description
    endpoint.is_active = is_active
    endpoint.save()
    _subscribe(endpoint, events)
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing for WEBHOOKS_SECRET_GRACE_HOURS."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    now = timezone.now()
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(
        hours=settings.WEBHOOKS_SECRET_GRACE_HOURS
    )
    endpoint.secret = secret
    endpoint.secret_rotated_at = now
    endpoint.save()
    return endpoint, secret


# --- events into the outbox ------------------------------------------------------------------


def _enqueue_after_commit(delivery_ids: list) -> None:
    from webhooks.tasks import deliver_webhook

    outbox.enqueue_after_commit(deliver_webhook, delivery_ids)


def event_publish(
    *, event_type: str, build_data: Callable[[], dict], occurred_at: datetime | None = None
) -> WebhookEvent | None:
    """Write the event and its deliveries to the subscribed active endpoints, if any.

    Call inside the transaction of what happened; ``build_data`` runs only when someone
    subscribed, so events nobody wants cost one query.
    """
    endpoint_ids = bulk.memoised(  # once per bulk operation (many requests fulfilled at once)
        ("webhook-endpoints", event_type),
        lambda: list(
            WebhookEndpoint.objects.filter(
                is_active=True, subscriptions__event_type=event_type
            ).values_list("pk", flat=True)
        ),
    )
    if not endpoint_ids:
        return None
    event = WebhookEvent.objects.create(
        event_type=event_type, occurred_at=occurred_at or timezone.now(), data=build_data()
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint_id=endpoint_id, event=event) for endpoint_id in endpoint_ids]
    )
    _enqueue_after_commit([delivery.pk for delivery in deliveries])
    return event


@transaction.atomic
def endpoint_send_test(*, endpoint_id: int, user) -> WebhookDelivery:
    """A test event to this endpoint only (also while it is inactive)."""
    from webhooks import payloads

    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    event = WebhookEvent.objects.create(
        event_type=EventType.TEST, data=payloads.ping_data(endpoint, user)
    )
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)
    _enqueue_after_commit([delivery.pk])
    return delivery


@transaction.atomic
def delivery_redeliver(*, delivery_id) -> WebhookDelivery:
    """An IT admin sends a failed delivery again (same delivery id, a new round)."""
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None or delivery.state != DeliveryState.FAILED:
        raise ActionConflict(_("Only failed deliveries can be sent again."))
    delivery.redeliver()
    delivery.save()
    _enqueue_after_commit([delivery.pk])
    return delivery


# --- delivering ----------------------------------------------------------------------------------


@dataclass
class RetryLater:
    countdown: float


def retry_countdown(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter after attempt ``attempt`` (1, 2, …), capped.

    A receiver's Retry-After (on 429 or 503) lengthens the wait, up to the cap.
    """
    return outbox.backoff_seconds(
        attempt,
        base=settings.WEBHOOKS_RETRY_BASE_SECONDS,
        cap=settings.WEBHOOKS_RETRY_MAX_SECONDS,
        at_least=retry_after,
    )


def body_of(event: WebhookEvent) -> bytes:
    return json.dumps(event.payload(), ensure_ascii=False, separators=(",", ":")).encode()


def headers_for(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "itportal-webhooks/1",
        "Itportal-Event": delivery.event.event_type,
        "Itportal-Delivery": str(delivery.pk),
        "Itportal-Timestamp": str(timestamp),
        "Itportal-Signature": signing.signature_header(
            delivery.endpoint.signing_secrets(), timestamp, body
        ),
    }


def _transient(result: client.Result) -> bool:
    if result.status_code is None:
        return result.transient
    return result.status_code == 429 or result.status_code >= 500


def _error_text(result: client.Result) -> str:
    if result.status_code is None:
        text = result.error
    elif 200 <= result.status_code < 300:
        text = ""
    elif 300 <= result.status_code < 400:
        text = f"HTTP {result.status_code}: redirects are not followed"
    else:
        text = f"HTTP {result.status_code}: {result.excerpt.strip()}".strip()
    return text[:ERROR_LENGTH]


def delivery_attempt(*, delivery_id, now: datetime | None = None) -> RetryLater | None:
    """Send one delivery once if it is due; RetryLater when a transient error should retry.

    The row stays locked while the request runs (at most the two timeouts): a second
    worker with the same delivery skips it, and a worker killed mid-request leaves the
    row as it was for the sweeper — the receiver may then get it twice and recognises
    that by the ``Itportal-Delivery`` header.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = outbox.claim(
            WebhookDelivery.objects.select_related("endpoint", "event"),
            delivery_id,
            OPEN_DELIVERY_STATES,
        )
        if delivery is None:
            return None  # another worker has it, or it is settled: nothing twice
        if delivery.next_attempt_at > now + DUE_TOLERANCE:
            return None  # an early duplicate; the scheduled retry or the sweeper comes back
        if not delivery.endpoint.is_active and delivery.event.event_type != EventType.TEST:
            delivery.fail(
                status_code=None, error=_("The endpoint was deactivated."), attempted=False
            )
            delivery.save()
            return None
        body = body_of(delivery.event)
        timestamp = int(time.time())
        started_at = timezone.now()
        result = client.post(delivery.endpoint.url, body, headers_for(delivery, body, timestamp))
        return _record(delivery, result, started_at)


def delivery_timed_out(*, delivery_id, seconds: float) -> RetryLater | None:
    """The task's time limit cut an attempt short (a receiver answering byte by byte):
    the attempt's transaction rolled back, so record it here as a transient failure."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.state not in (
            DeliveryState.PENDING,
            DeliveryState.RETRYING,
        ):
            return None
        result = client.Result(
            None,
            int(seconds * 1000),
            error=f"no complete answer within the task's time limit ({seconds:g} s)",
            transient=True,
        )
        return _record(delivery, result, timezone.now() - timedelta(seconds=seconds))


def _record(delivery: WebhookDelivery, result: client.Result, started_at) -> RetryLater | None:
    """Settle one attempt: delivered, retry later, or failed; and log it."""
    error = _error_text(result)
    retry = None
    if result.status_code is not None and 200 <= result.status_code < 300:
        outcome = AttemptOutcome.DELIVERED
        delivery.succeed(status_code=result.status_code)
    elif _transient(result) and delivery.attempts + 1 < settings.WEBHOOKS_MAX_ATTEMPTS:
        outcome = AttemptOutcome.RETRY
        retry = RetryLater(retry_countdown(delivery.attempts + 1, result.retry_after))
        delivery.defer(
            status_code=result.status_code,
            error=error,
            retry_at=timezone.now() + timedelta(seconds=retry.countdown),
        )
    else:
        outcome = AttemptOutcome.FAILED
        delivery.fail(status_code=result.status_code, error=error)
    delivery.save()
    WebhookAttempt.objects.create(
        delivery=delivery,
        started_at=started_at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        outcome=outcome,
        error=error,
    )
    if outcome != AttemptOutcome.DELIVERED:
        logger.info(
            "webhook delivery %s to endpoint %s: %s (%s)",
            delivery.pk,
            delivery.endpoint_id,
            outcome,
            error,
        )
    return retry


def deliveries_sweep(*, older_than_seconds: int = 60, now: datetime | None = None) -> int:
    """Re-enqueue open deliveries that were due over a minute ago: their message was lost."""
    from webhooks.tasks import deliver_webhook

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    overdue = outbox.overdue_ids(
        WebhookDelivery.objects.all(),
        states=OPEN_DELIVERY_STATES,
        before=cutoff,
        limit=settings.WEBHOOKS_SWEEP_BATCH,
    )
    for delivery_id in overdue:
        deliver_webhook.delay(str(delivery_id))
    return len(overdue)


def settled_events_before(cutoff: datetime):
    """Events older than ``cutoff`` with no delivery still on its way."""
    return WebhookEvent.objects.filter(occurred_at__lt=cutoff).exclude(
        deliveries__state__in=[DeliveryState.PENDING, DeliveryState.RETRYING]
    )


def events_delete(ids) -> int:
    """Delete these events with their deliveries and attempt logs."""
    with transaction.atomic():
        WebhookAttempt.objects.filter(delivery__event_id__in=ids).delete()
        WebhookDelivery.objects.filter(event_id__in=ids).delete()
        WebhookEvent.objects.filter(pk__in=ids).delete()
    return len(ids)


def events_prune(*, older_than_days: int | None = None, now: datetime | None = None) -> int:
    """Delete settled events (with their deliveries and attempt logs) after the retention."""
    days = settings.WEBHOOKS_RETENTION_DAYS if older_than_days is None else older_than_days
    old = settled_events_before((now or timezone.now()) - timedelta(days=days))
    pruned = 0
    while True:
        batch = list(old.values_list("pk", flat=True)[:1000])
        if not batch:
            return pruned
        pruned += events_delete(batch)
