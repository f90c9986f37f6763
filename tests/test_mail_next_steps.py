"""Issue 11, notifications people act on, over a real SMTP server (aiosmtpd): the requester's
confirmation on submission, decisions with the reason and the next step, calls to act with
a direct link for approvers and the fulfilling group, German and English, text plus HTML."""

import datetime

import pytest
from django.utils import timezone

from catalogue.choices import FieldType
from notifications.models import LanguagePreference, Notification, OutgoingMail
from requests_app import services as request_services
from tests.factories import FormFieldFactory

pytestmark = pytest.mark.django_db


def received(smtp, user):
    """The messages the server accepted for ``user``, as parsed e-mails."""
    return [m for m in smtp.messages if m["To"] == user.email]


def parts(message):
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


@pytest.fixture
def german(settings):
    settings.LANGUAGE_CODE = "de"
    settings.PORTAL_BASE_URL = "https://portal.example"


def test_submission_is_confirmed_to_the_requester_by_mail(
    smtp, german, org, manual_item, place_order, django_capture_on_commit_callbacks
):
    FormFieldFactory(
        item=manual_item, key="ab", label="Benötigt ab", field_type=FieldType.DATE,
        needed_from=True, required=False,
    )  # fmt: skip
    manual_item.refresh_from_db()
    day = timezone.localdate() + datetime.timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        req = place_order(
            manual_item, org.alice.user, beneficiary=org.bob, answers={"ab": day.isoformat()}
        )
    (confirmation,) = received(smtp, org.alice.user)
    assert confirmation["Subject"].endswith(f"Antrag Nr. {req.pk} (Notebook) eingegangen")
    assert confirmation.is_multipart()
    text, html = parts(confirmation)
    for body in (text, html):
        assert "Wir haben Ihren Antrag auf „Notebook“" in body
        assert f"Die Leistung wird ab dem {day:%d.%m.%Y} benötigt." in body
    assert f"https://portal.example/antraege/{req.pk}/" in text
    # The colleague it is for finds it in the portal, without a mail of their own.
    assert received(smtp, org.bob.user) == []
    assert Notification.objects.filter(recipient=org.bob.user, kind="request.submitted").exists()
    # The approver is called to act, with the direct link to the decision.
    (ask,) = received(smtp, org.manager.user)
    assert ask["Subject"].endswith(f"Bitte entscheiden: Antrag Nr. {req.pk} (Notebook)")
    text, html = parts(ask)
    assert f'href="https://portal.example/antraege/{req.pk}/"' in html
    assert "Bitte genehmigen oder lehnen Sie den Antrag ab" in text


def test_a_cart_confirms_once_not_per_request(org, manual_item, place_order):
    """A joint order's requests get no confirmation each (its own mail confirms them)."""
    from requests_app.models import Submission

    submission = Submission.objects.create(requester=org.alice.user)
    place_order(manual_item, org.alice.user, submission=submission)
    assert not OutgoingMail.objects.filter(kind="request.submitted").exists()


def test_rejection_carries_the_reason_and_the_way_on(
    smtp, german, org, manual_item, place_order, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    smtp.messages.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_reject(
            request_id=req.pk, user=org.manager.user, comment="Kein Budget in diesem Jahr."
        )
    for user in (org.alice.user, org.bob.user):
        (mail,) = received(smtp, user)
        assert mail["Subject"].endswith(f"Antrag Nr. {req.pk} (Notebook) abgelehnt")
        for body in parts(mail):
            assert "Begründung: Kein Budget in diesem Jahr." in body
            assert "können Sie sie auf der Seite des Antrags" in body


def test_the_fulfilling_group_is_asked_to_act_the_requester_told_what_comes_next(
    smtp, german, org, manual_item, place_order, django_capture_on_commit_callbacks
):
    LanguagePreference.objects.create(user=org.alice.user, language="en")
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    smtp.messages.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    (call,) = received(smtp, org.fulfiller.user)
    assert call["Subject"].endswith(f"Bitte umsetzen: Antrag Nr. {req.pk} (Notebook)")
    text, html = parts(call)
    assert "Bitte übernehmen Sie ihn in die Umsetzung" in text
    assert "Als Nächstes setzt" not in text  # not the requester's wording
    assert f"https://portal.example/antraege/{req.pk}/" in html
    # The requester chose English: told, in English, which group fulfils it.
    (told,) = received(smtp, org.alice.user)
    assert told["Subject"].endswith(f"Request #{req.pk} (Notebook) approved")
    text, html = parts(told)
    assert "was approved. Next, Service Desk fulfils it." in text
    assert 'lang="en"' in html
    (bob,) = received(smtp, org.bob.user)
    assert "Als Nächstes setzt Service Desk ihn um." in parts(bob)[0]


def test_fulfilment_and_failure_say_what_now(
    smtp, german, org, manual_item, place_order, django_capture_on_commit_callbacks
):
    done = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    failed = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    for req in (done, failed):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
        request_services.request_take(request_id=req.pk, user=org.fulfiller.user)
    smtp.messages.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_complete(
            request_id=done.pk, user=org.fulfiller.user, note="Gerät liegt im Raum B 2.014."
        )
        request_services.request_fail(
            request_id=failed.pk, user=org.fulfiller.user, reason="Modell nicht mehr lieferbar."
        )
    mails = {(m["To"], m["Subject"].split("Antrag Nr. ")[1].split()[0]): m for m in smtp.messages}
    alice_done = parts(mails[(org.alice.user.email, str(done.pk))])
    for body in alice_done:
        assert "Hinweis: Gerät liegt im Raum B 2.014." in body
        assert "können Sie die Umsetzung bewerten" in body  # the requester may rate
    bob_done = parts(mails[(org.bob.user.email, str(done.pk))])[0]
    assert "Hinweis: Gerät liegt im Raum B 2.014." in bob_done
    assert "bewerten" not in bob_done  # only the requester rates
    for body in parts(mails[(org.alice.user.email, str(failed.pk))]):
        assert "Begründung: Modell nicht mehr lieferbar." in body
        assert "müssen Sie nicht erneut bestellen" in body


def test_a_cancellation_offers_ordering_again(
    smtp, german, org, manual_item, place_order, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    smtp.messages.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_cancel(request_id=req.pk, user=org.alice.user)
    (mail,) = received(smtp, org.alice.user)
    assert mail["Subject"].endswith(f"Antrag Nr. {req.pk} (Notebook) storniert")
    assert "können Sie sie auf der Seite des Antrags" in parts(mail)[0]
