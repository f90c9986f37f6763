"""Notifications in the portal, written with the event's mails; mails that ask to act."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification, OutgoingMail
from notifications.services import compose
from requests_app import services

pytestmark = pytest.mark.django_db


def test_submission_confirms_to_the_requester(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    note = Notification.objects.get(recipient=org.alice.user, kind="request.submitted")
    assert f"#{req.pk}" in note.title
    assert note.url == f"/antraege/{req.pk}/"
    # And by mail to whoever ordered, saying what happens next.
    mail = OutgoingMail.objects.get(kind="request.submitted")
    assert mail.recipient == org.alice.user
    assert "Next it needs approval" in compose(mail).body
    # The approver is asked to act, with the way to the decision.
    asked = OutgoingMail.objects.get(recipient=org.manager.user, kind="request.approval_needed")
    assert "Please decide" in compose(asked).subject


def test_a_rolled_back_event_leaves_no_notification(org, manual_item, place_order):
    with pytest.raises(RuntimeError), transaction.atomic():
        place_order(manual_item, org.alice.user)
        raise RuntimeError
    assert not Notification.objects.exists()


def test_rejection_says_why_and_how_to_go_on(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    services.request_reject(request_id=req.pk, user=org.manager.user, comment="Kein Budget mehr")
    mail = OutgoingMail.objects.get(recipient=org.alice.user, kind="request.rejected")
    message = compose(mail)
    assert "Kein Budget mehr" in message.body
    assert "order it again" in message.body
    html = message.alternatives[0][0]
    assert "Kein Budget mehr" in html


def test_fulfillers_are_asked_to_act_the_requester_told_what_comes(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    to_desk = compose(
        OutgoingMail.objects.get(recipient=org.fulfiller.user, kind="request.approved")
    )
    assert "Please fulfil" in to_desk.subject
    to_alice = compose(OutgoingMail.objects.get(recipient=org.alice.user, kind="request.approved"))
    assert "Service Desk fulfils it" in to_alice.body
    desk_note = Notification.objects.get(recipient=org.fulfiller.user, kind="request.approved")
    assert "Please fulfil" in desk_note.title


def test_inbox_lists_own_notifications_and_counts_unread(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    client.force_login(org.alice.user)
    content = client.get("/benachrichtigungen/").content.decode()
    assert f"#{req.pk}" in content
    assert '<span class="count">1<span class="visually-hidden"> unread' in content
    client.force_login(org.bob.user)
    assert f"#{req.pk}" not in client.get("/benachrichtigungen/").content.decode()
    note = Notification.objects.get(recipient=org.alice.user)
    assert client.post(f"/benachrichtigungen/{note.pk}/oeffnen/").status_code == 404
    client.force_login(org.alice.user)
    response = client.post(f"/benachrichtigungen/{note.pk}/oeffnen/")
    assert response.status_code == 302 and response.url == f"/antraege/{req.pk}/"
    note.refresh_from_db()
    assert note.read_at is not None
    place_order(manual_item, org.alice.user)
    client.post("/benachrichtigungen/alle-gelesen/")
    assert not Notification.objects.filter(recipient=org.alice.user, read_at=None).exists()


def test_inbox_query_count_is_constant(client, org, manual_item, place_order):
    client.force_login(org.alice.user)
    place_order(manual_item, org.alice.user)
    client.get("/benachrichtigungen/")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/benachrichtigungen/").status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for _ in range(6):
        place_order(manual_item, org.alice.user)
    assert count() == few
