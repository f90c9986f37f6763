"""Webhook delivery against a real HTTP receiver on 127.0.0.1: signatures, retries, timeouts.

The retry policy is tested by calling the delivery service attempt by attempt (the Celery
task only schedules the next call), so no test waits for a backoff.
"""

import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from metrics import prometheus as m
from tests.webhook_support import Receiver, Reply, allow_local_receiver
from webhooks import services, signing
from webhooks.choices import AttemptOutcome, DeliveryState, EventType
from webhooks.models import WebhookDelivery
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    allow_local_receiver(settings)
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def endpoint(org, receiver):
    endpoint, secret = services.endpoint_create(
        url=receiver.url,
        events=[EventType.REQUEST_SUBMITTED],
        description="Intranet",
        user=org.admin.user,
    )
    endpoint.shown_secret = secret
    return endpoint


@pytest.fixture
def queued(org, endpoint, django_capture_on_commit_callbacks):
    """A test delivery whose message is not sent: each test makes the attempts itself."""
    with django_capture_on_commit_callbacks(execute=False):
        return services.endpoint_send_test(endpoint_id=endpoint.pk, user=org.admin.user)


def attempt(delivery, **kwargs):
    result = services.delivery_attempt(delivery_id=delivery.pk, **kwargs)
    delivery.refresh_from_db()
    return result


def outcomes(delivery):
    return [(a.outcome, a.status_code) for a in delivery.attempt_log.order_by("started_at", "id")]


def test_signed_delivery_verifies_at_the_receiver(
    org, endpoint, receiver, django_capture_on_commit_callbacks
):
    before = int(time.time())
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=org.admin.user)
    after = int(time.time())

    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/hooks/itportal"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["itportal-event"] == "webhook.test"
    assert got.headers["itportal-delivery"] == str(delivery.pk)
    timestamp = int(got.headers["itportal-timestamp"])
    assert before <= timestamp <= after
    # The scheme of docs/webhooks.md, computed here by hand: HMAC-SHA256("<t>.<body>").
    expected = hmac.new(
        endpoint.shown_secret.encode(), f"{timestamp}.".encode() + got.body, hashlib.sha256
    ).hexdigest()
    assert got.headers["itportal-signature"] == f"v1={expected}"
    assert signing.verify(
        endpoint.shown_secret, got.body, got.headers["itportal-timestamp"],
        got.headers["itportal-signature"],
    )  # fmt: skip
    # Wrong secret, changed body, replayed later: refused.
    assert not signing.verify("whsec_other", got.body, str(timestamp), f"v1={expected}")
    assert not signing.verify(
        endpoint.shown_secret, got.body.replace(b"test", b"tset"), str(timestamp), f"v1={expected}"
    )
    assert not signing.verify(
        endpoint.shown_secret, got.body, str(timestamp), f"v1={expected}", now=timestamp + 301
    )
    assert not signing.verify(endpoint.shown_secret, got.body, "yesterday", f"v1={expected}")

    payload = got.json
    assert payload["type"] == "webhook.test"
    assert payload["id"] == str(delivery.event_id)
    assert payload["data"]["endpoint"] == {"id": endpoint.pk}
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 200
    assert delivery.delivered_at is not None
    assert outcomes(delivery) == [(AttemptOutcome.DELIVERED, 200)]


def test_retries_with_backoff_on_server_errors_then_succeeds(queued, receiver):
    receiver.queue(500, Reply(503, b"maintenance"), 200)

    start = timezone.now()
    first = attempt(queued)
    # Backoff: base 10 s × 2^(attempt-1), with jitter between half and all of it.
    assert 5 <= first.countdown <= 10
    assert queued.state == DeliveryState.RETRYING
    assert queued.attempts == 1
    assert queued.last_status_code == 500
    assert start + timedelta(seconds=4.9) <= queued.next_attempt_at
    assert queued.next_attempt_at <= timezone.now() + timedelta(seconds=10)

    # Not due yet (a duplicate message, a sweeper run): nothing is sent.
    assert attempt(queued) is None
    assert len(receiver.received) == 1

    second = attempt(queued, now=queued.next_attempt_at)
    assert 10 <= second.countdown <= 20
    assert queued.last_error == "HTTP 503: maintenance"

    assert attempt(queued, now=queued.next_attempt_at) is None
    assert queued.state == DeliveryState.DELIVERED
    assert queued.attempts == 3
    assert outcomes(queued) == [
        (AttemptOutcome.RETRY, 500),
        (AttemptOutcome.RETRY, 503),
        (AttemptOutcome.DELIVERED, 200),
    ]
    # The same delivery id every time: the receiver's idempotency key.
    assert {r.headers["itportal-delivery"] for r in receiver.received} == {str(queued.pk)}
    assert len(receiver.received) == 3


def test_gives_up_after_the_last_attempt(queued, receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    receiver.queue(500, 502, 500, 200)
    assert attempt(queued) is not None
    assert attempt(queued, now=queued.next_attempt_at) is not None
    assert attempt(queued, now=queued.next_attempt_at) is None
    assert queued.state == DeliveryState.FAILED
    assert queued.attempts == 3
    assert outcomes(queued)[-1] == (AttemptOutcome.FAILED, 500)
    # Failed is final: neither the service nor the task sends it again.
    assert attempt(queued, now=timezone.now() + timedelta(days=1)) is None
    deliver_webhook.delay(str(queued.pk))
    assert len(receiver.received) == 3


def test_client_errors_fail_at_once(queued, receiver):
    receiver.queue(Reply(400, b"bad signature"), 200)
    assert attempt(queued) is None
    assert queued.state == DeliveryState.FAILED
    assert queued.attempts == 1
    assert queued.last_status_code == 400
    assert queued.last_error == "HTTP 400: bad signature"
    assert outcomes(queued) == [(AttemptOutcome.FAILED, 400)]
    assert len(receiver.received) == 1


def test_too_many_requests_is_retried_after_the_receivers_wait(queued, receiver):
    receiver.queue(Reply(429, b"slow down", headers={"Retry-After": "120"}))
    retry = attempt(queued)
    assert retry.countdown == 120  # more than the backoff of 5-10 s
    assert queued.state == DeliveryState.RETRYING
    assert outcomes(queued) == [(AttemptOutcome.RETRY, 429)]


def test_a_slow_receiver_times_out_and_is_retried(queued, receiver, settings):
    settings.WEBHOOKS_READ_TIMEOUT = 0.3
    receiver.queue(Reply(200, delay=1.5))
    started = time.monotonic()
    retry = attempt(queued)
    assert time.monotonic() - started < 1.4  # did not wait for the answer
    assert retry is not None
    assert queued.state == DeliveryState.RETRYING
    log = queued.attempt_log.get()
    assert log.outcome == AttemptOutcome.RETRY
    assert log.status_code is None
    assert log.error.startswith("timeout")
    assert 300 <= log.duration_ms < 1400


def test_a_closed_port_is_a_transient_connection_error(
    org, settings, django_capture_on_commit_callbacks
):
    allow_local_receiver(settings)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint, _secret = services.endpoint_create(
        url=f"http://127.0.0.1:{port}/x", events=[EventType.REQUEST_FAILED], user=org.admin.user
    )
    with django_capture_on_commit_callbacks(execute=False):
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    assert attempt(delivery) is not None
    assert delivery.state == DeliveryState.RETRYING
    assert delivery.last_error.startswith("connection error")


def test_redirects_are_not_followed(queued, receiver):
    receiver.queue(Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data"}))
    assert attempt(queued) is None
    assert queued.state == DeliveryState.FAILED
    assert "redirects are not followed" in queued.last_error
    assert len(receiver.received) == 1


def test_an_address_no_longer_allowed_is_not_contacted(queued, receiver, settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    assert attempt(queued) is None
    assert queued.state == DeliveryState.FAILED
    assert "127.0.0.1" in queued.last_error
    assert receiver.received == []


def test_a_delivered_delivery_is_never_sent_again(queued, receiver):
    assert attempt(queued) is None
    assert queued.state == DeliveryState.DELIVERED
    assert attempt(queued) is None
    deliver_webhook.delay(str(queued.pk))  # a duplicate message
    services.deliveries_sweep(now=timezone.now() + timedelta(hours=1))
    assert len(receiver.received) == 1
    assert queued.attempt_log.count() == 1


def test_the_sweeper_sends_what_a_lost_message_left(queued, receiver):
    # Not a minute overdue yet: the original message may still come.
    assert services.deliveries_sweep() == 0
    assert receiver.received == []
    assert services.deliveries_sweep(now=timezone.now() + timedelta(minutes=2)) == 1
    queued.refresh_from_db()
    assert queued.state == DeliveryState.DELIVERED
    assert len(receiver.received) == 1


def test_a_deactivated_endpoint_gets_nothing_more(
    org, endpoint, receiver, place_order, manual_item, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        place_order(manual_item, org.alice.user)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    services.endpoint_update(
        endpoint_id=endpoint.pk, url=endpoint.url, events=[EventType.REQUEST_SUBMITTED],
        description="", is_active=False,
    )  # fmt: skip
    assert attempt(delivery) is None
    assert delivery.state == DeliveryState.FAILED
    assert delivery.attempts == 0
    assert receiver.received == []


def test_rotated_secret_signs_with_both_until_the_grace_period_ends(
    org, endpoint, receiver, django_capture_on_commit_callbacks
):
    old = endpoint.shown_secret
    endpoint, new = services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
    assert new != old and new.startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    got = receiver.received[-1]
    args = (got.body, got.headers["itportal-timestamp"], got.headers["itportal-signature"])
    assert got.headers["itportal-signature"].count("v1=") == 2
    assert signing.verify(new, *args)
    assert signing.verify(old, *args)

    endpoint.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    endpoint.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    got = receiver.received[-1]
    args = (got.body, got.headers["itportal-timestamp"], got.headers["itportal-signature"])
    assert signing.verify(new, *args)
    assert not signing.verify(old, *args)


def test_attempts_are_counted_for_prometheus(queued, receiver):
    def value(outcome):
        return (
            m.REGISTRY.get_sample_value(
                "itportal_webhook_delivery_attempts_total",
                {"event_type": "webhook.test", "outcome": outcome},
            )
            or 0.0
        )

    before = (value("retry"), value("delivered"))
    receiver.queue(500)
    attempt(queued)
    attempt(queued, now=queued.next_attempt_at)
    assert (value("retry"), value("delivered")) == (before[0] + 1, before[1] + 1)


def test_settled_events_are_pruned_after_the_retention(org, endpoint, receiver, settings):
    settings.WEBHOOKS_RETENTION_DAYS = 30
    settled = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    attempt(settled)
    still_open = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    receiver.queue(500)
    attempt(still_open)
    assert still_open.state == DeliveryState.RETRYING
    assert services.events_prune(now=timezone.now() + timedelta(days=29)) == 0
    assert services.events_prune(now=timezone.now() + timedelta(days=31)) == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [still_open.pk]
    assert still_open.attempt_log.count() == 1


def test_the_example_receiver_verifies_real_deliveries(org, settings, tmp_path):
    """scripts/webhook_receiver.py (the docs' verification code) accepts the portal's
    signature, acknowledges a repeat, and refuses a wrong secret with 401 (no retry)."""
    allow_local_receiver(settings)
    script = Path(__file__).resolve().parent.parent / "scripts" / "webhook_receiver.py"
    endpoint, secret = services.endpoint_create(
        url="http://127.0.0.1:9/", events=[EventType.REQUEST_APPROVED], user=None
    )
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"],
        env={**os.environ, "WEBHOOK_SECRET": secret},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().split()[-1]
        services.endpoint_update(
            endpoint_id=endpoint.pk, url=url, events=[EventType.REQUEST_APPROVED],
            description="", is_active=True,
        )  # fmt: skip
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
        services.delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.state, delivery.last_status_code) == (DeliveryState.DELIVERED, 204)
        assert process.stdout.readline().split()[:3] == ["event", str(delivery.pk), "webhook.test"]

        services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
        endpoint.refresh_from_db()
        endpoint.previous_secret_expires_at = None  # the receiver still has the old secret
        endpoint.save()
        refused = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
        services.delivery_attempt(delivery_id=refused.pk)
        refused.refresh_from_db()
        assert (refused.state, refused.last_status_code) == (DeliveryState.FAILED, 401)
        assert process.stdout.readline().startswith(f"refused {refused.pk}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_attempt_cut_off_by_the_task_time_limit_counts(queued, receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 2
    retry = services.delivery_timed_out(delivery_id=queued.pk, seconds=60)
    queued.refresh_from_db()
    assert retry is not None
    assert (queued.state, queued.attempts) == (DeliveryState.RETRYING, 1)
    log = queued.attempt_log.get()
    assert (log.outcome, log.status_code, log.duration_ms) == (AttemptOutcome.RETRY, None, 60000)
    assert "time limit (60 s)" in log.error
    assert services.delivery_timed_out(delivery_id=queued.pk, seconds=60) is None
    queued.refresh_from_db()
    assert (queued.state, queued.attempts) == (DeliveryState.FAILED, 2)
    assert receiver.received == []
