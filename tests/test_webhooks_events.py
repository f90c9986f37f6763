"""Which happenings send which webhook events, and that only committed ones do.

The outbox tests run with real transactions (``transaction=True``): the deliveries are
enqueued by ``transaction.on_commit`` and sent by the (eager) Celery task to a real
receiver on 127.0.0.1, exactly as in production minus the broker.
"""

import contextlib
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from catalogue.choices import ApproverKind
from provisioning import services as provisioning_services
from provisioning.models import Entitlement
from requests_app import services
from requests_app.choices import RequestState
from tests.provisioning_support import add_group, add_person, automated_item, group_action
from tests.webhook_support import Receiver, Reply, allow_local_receiver
from tests.workflow_support import make_item
from webhooks import services as webhook_services
from webhooks import signing
from webhooks.choices import SUBSCRIBABLE, DeliveryState, EventType
from webhooks.models import WebhookDelivery, WebhookEvent

ALL_EVENTS = [value for value, _label in SUBSCRIBABLE]


@pytest.fixture
def receiver(settings):
    allow_local_receiver(settings)
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def hook(org, receiver):
    endpoint, secret = webhook_services.endpoint_create(
        url=receiver.url, events=ALL_EVENTS, user=org.admin.user
    )
    endpoint.shown_secret = secret
    return endpoint


def received_types(receiver) -> list[str]:
    return [r.headers["itportal-event"] for r in receiver.received]


class RolledBack(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transition_sends_nothing(org, hook, receiver, manual_item, place_order):
    with contextlib.suppress(RolledBack), transaction.atomic():
        place_order(manual_item, org.alice.user)
        assert WebhookDelivery.objects.count() == 1  # written with the event …
        raise RolledBack
    assert WebhookEvent.objects.count() == 0  # … and gone with it
    assert WebhookDelivery.objects.count() == 0
    assert receiver.received == []

    req = place_order(manual_item, org.alice.user)
    assert received_types(receiver) == ["request.submitted"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.DELIVERED
    got = receiver.received[0]
    assert got.headers["itportal-delivery"] == str(delivery.pk)
    assert signing.verify(
        hook.shown_secret, got.body, got.headers["itportal-timestamp"],
        got.headers["itportal-signature"],
    )  # fmt: skip
    assert got.json["data"]["request"]["id"] == req.pk


@pytest.mark.django_db(transaction=True)
def test_refused_or_rolled_back_decisions_send_nothing(
    org, hook, receiver, manual_item, place_order
):
    """A decision refused by validation, and one whose surrounding transaction rolls back."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    receiver.received.clear()
    with pytest.raises(ValidationError):
        services.request_reject(request_id=req.pk, user=org.manager.user, comment="  ")
    with contextlib.suppress(RolledBack), transaction.atomic():
        services.request_approve(request_id=req.pk, user=org.manager.user)
        raise RolledBack
    assert receiver.received == []
    req.refresh_from_db()
    assert req.state == RequestState.AWAITING_APPROVAL


@pytest.mark.django_db(transaction=True)
def test_every_event_type_fires(org, hook, receiver, manual_item, place_order):
    only_rejections, _secret = webhook_services.endpoint_create(
        url=receiver.url.replace("/hooks/itportal", "/rejections"),
        events=[EventType.REQUEST_REJECTED],
        user=org.admin.user,
    )

    fulfilled = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=fulfilled.pk, user=org.manager.user)
    services.request_take(request_id=fulfilled.pk, user=org.fulfiller.user)
    services.request_complete(request_id=fulfilled.pk, user=org.fulfiller.user, note="ok")
    entitlement = Entitlement.objects.get(request=fulfilled)
    provisioning_services.entitlement_revoke(
        entitlement_id=entitlement.pk, user=org.bob.user, reason="nicht mehr nötig"
    )
    rejected = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_reject(request_id=rejected.pk, user=org.manager.user, comment="Nein")
    failed = place_order(manual_item, org.bob.user)
    services.request_approve(request_id=failed.pk, user=org.manager.user)
    services.request_fail(request_id=failed.pk, user=org.fulfiller.user, reason="kein Gerät")

    main = [r for r in receiver.received if r.path == "/hooks/itportal"]
    assert [r.headers["itportal-event"] for r in main] == [
        "request.submitted",
        "request.approved",
        "request.fulfilled",
        "entitlement.revoked",
        "request.submitted",
        "request.rejected",
        "request.submitted",
        "request.approved",
        "request.failed",
    ]
    # The endpoint subscribed to rejections only got exactly that one.
    others = [r for r in receiver.received if r.path == "/rejections"]
    assert [r.json["data"]["request"]["id"] for r in others] == [rejected.pk]
    assert WebhookDelivery.objects.filter(endpoint=only_rejections).count() == 1
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}

    by_type = {}
    for r in main:
        by_type.setdefault(r.headers["itportal-event"], []).append(r.json)
    done = by_type["request.fulfilled"][0]
    assert done["type"] == "request.fulfilled"
    assert done["data"]["request"] == {
        "id": fulfilled.pk,
        "state": "fulfilled",
        "previous_state": "in_fulfilment",
        "item": {"slug": "notebook", "name": "Notebook", "version": manual_item.version},
        "requester": {"username": "alice"},
        "beneficiary": {"username": "bob", "personnel_number": org.bob.personnel_number},
        "cost_centre": "KS1000",
        "price_once": str(fulfilled.price_once),
        "price_monthly": str(fulfilled.price_monthly),
        "submitted_at": done["data"]["request"]["submitted_at"],
        "approved_at": done["data"]["request"]["approved_at"],
        "closed_at": done["data"]["request"]["closed_at"],
        "url": f"http://localhost:8000/antraege/{fulfilled.pk}/",
    }
    assert done["data"]["request"]["closed_at"] is not None
    assert by_type["request.submitted"][0]["data"]["request"]["state"] == "submitted"
    assert by_type["request.rejected"][0]["data"]["request"]["previous_state"] == (
        "awaiting_approval"
    )
    revoked = by_type["entitlement.revoked"][0]["data"]["entitlement"]
    assert revoked["id"] == entitlement.pk
    assert revoked["state"] == "revoked"
    assert revoked["holder"] == {"username": "bob", "personnel_number": org.bob.personnel_number}
    assert revoked["request"]["id"] == fulfilled.pk
    assert revoked["revoked_at"] is not None
    # No personal data beyond identifiers: no names, mail, comments or reasons.
    everything = b"".join(r.body for r in receiver.received).decode()
    for private in (org.bob.user.email, org.bob.user.last_name, "nicht mehr nötig", "Nein",
                    "kein Gerät", org.manager.user.username):  # fmt: skip
        assert private not in everything


@pytest.mark.django_db(transaction=True)
def test_approved_fires_only_after_the_last_step_and_without_steps_at_once(
    org, hook, receiver, place_order
):
    two_steps = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER},
        {"approver_kind": ApproverKind.COST_CENTRE_OWNER},
    )
    req = place_order(two_steps, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    assert received_types(receiver) == ["request.submitted"]
    services.request_approve(request_id=req.pk, user=org.head.user)
    assert received_types(receiver) == ["request.submitted", "request.approved"]

    receiver.received.clear()
    no_steps = make_item(org.service_desk)
    place_order(no_steps, org.alice.user)
    assert received_types(receiver) == ["request.submitted", "request.approved"]


@pytest.mark.django_db(transaction=True)
def test_inactive_endpoints_get_no_events(org, hook, receiver, manual_item, place_order):
    webhook_services.endpoint_update(
        endpoint_id=hook.pk, url=hook.url, events=ALL_EVENTS, description="", is_active=False
    )
    place_order(manual_item, org.alice.user)
    assert receiver.received == []
    assert WebhookEvent.objects.count() == 0  # nobody listens: nothing is stored


@pytest.mark.django_db
def test_directory_revocation_fires_when_the_last_job_ended(
    org, directory_settings, settings, receiver, place_order, django_capture_on_commit_callbacks
):
    settings.PROVISIONING_RETRY_BASE_SECONDS = 0.01
    webhook_services.endpoint_create(
        url=receiver.url,
        events=[EventType.REQUEST_FULFILLED, EventType.ENTITLEMENT_REVOKED],
        user=org.admin.user,
    )
    group = add_group(directory_settings, "vpn-users")
    item = automated_item(org.service_desk, group_action(group), name="VPN-Zugang", slug="vpn")
    add_person(directory_settings, org.bob)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=req.pk, user=org.manager.user)
    assert received_types(receiver) == ["request.fulfilled"]
    fulfilled = receiver.received[0].json["data"]["request"]
    assert (fulfilled["state"], fulfilled["item"]["slug"]) == ("fulfilled", "vpn")

    entitlement = Entitlement.objects.get(request=req)
    with django_capture_on_commit_callbacks(execute=False):
        # While the revoking job has not run, the entitlement is not revoked yet.
        provisioning_services.entitlement_revoke(
            entitlement_id=entitlement.pk, user=org.bob.user, reason="weg"
        )
    assert received_types(receiver) == ["request.fulfilled"]
    with django_capture_on_commit_callbacks(execute=True):
        job = entitlement.jobs.get()
        provisioning_services.job_run(job_id=job.pk)
    assert received_types(receiver) == ["request.fulfilled", "entitlement.revoked"]
    assert receiver.received[1].json["data"]["entitlement"]["id"] == entitlement.pk


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_one_delivery_twice(org, hook, receiver, settings):
    """A second worker (a duplicate message, the sweeper) skips the row the first one sends."""
    later = timezone.now() + timedelta(hours=1)
    with transaction.atomic():
        delivery = webhook_services.endpoint_send_test(endpoint_id=hook.pk, user=None)
        # Not due before ``later``: the message sent on commit finds nothing to do, and the
        # two "workers" below send it.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=later)
    assert receiver.received == []
    receiver.queue(Reply(200, delay=1.0))
    results = {}

    def worker(name):
        try:
            results[name] = webhook_services.delivery_attempt(delivery_id=delivery.pk, now=later)
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    deadline = time.monotonic() + 5
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.01)  # the first worker holds the row and waits for the answer
    second = threading.Thread(target=worker, args=("second",))
    second.start()
    second.join()
    assert first.is_alive()  # the second one did not wait for the first
    first.join()
    assert results == {"first": None, "second": None}
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 1)
