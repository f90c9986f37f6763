""" "Postausgang": IT admins see mails not sent and send failed ones again; nobody else does."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications import services
from notifications.choices import MailState
from notifications.models import OutgoingMail
from tests.factories import EmployeeFactory
from tests.test_prometheus import TOKEN, samples, scrape_text, value

pytestmark = pytest.mark.django_db

URL = "/postausgang/"


def _mails(org, count, state, kind="request.approved"):
    """``count`` mails to new people, put into ``state`` directly (no sending)."""
    mails = services.mail_queue(
        kind=kind,
        recipients=[EmployeeFactory(department=org.department).user for _ in range(count)],
        params={"request_id": 0, "event": "approved"},
    )
    OutgoingMail.objects.filter(pk__in=[m.pk for m in mails]).update(
        state=state, attempts=1, last_error="SMTPDataError: (554, b'5.7.1 Rejected')"
    )
    return mails


def retry_url(mail) -> str:
    return f"{URL}{mail.pk}/erneut-senden/"


def test_employees_and_anonymous_users_cannot_see_or_retry(client, org):
    (mail,) = _mails(org, 1, MailState.FAILED)
    assert client.get(URL).status_code == 302  # to the login
    client.force_login(org.alice.user)
    assert client.get(URL).status_code == 403
    assert client.post(retry_url(mail)).status_code == 403
    mail.refresh_from_db()
    assert mail.state == MailState.FAILED
    assert "Postausgang" not in client.get("/").content.decode()


def test_it_admin_sees_mails_not_sent_and_filters_them(client, org, settings):
    settings.LANGUAGE_CODE = "de"
    failed = _mails(org, 2, MailState.FAILED)
    uncertain = _mails(org, 1, MailState.UNCERTAIN)
    sent = _mails(org, 1, MailState.SENT)
    client.force_login(org.admin.user)
    response = client.get(URL)
    page = response.content.decode()
    assert "<h1>Postausgang</h1>" in page
    assert 'href="/postausgang/" aria-current="page"' in page
    for mail in failed + uncertain:
        assert mail.to in page
    assert sent[0].to not in page  # sent ones only when asked for
    assert page.count("Erneut senden") == 3
    assert "554" in page

    page = client.get(URL, {"state": "sent"}).content.decode()
    assert sent[0].to in page and failed[0].to not in page
    page = client.get(URL, {"state": "uncertain"}).content.decode()
    assert uncertain[0].to in page and failed[0].to not in page
    page = client.get(URL, {"q": failed[1].to}).content.decode()
    assert failed[1].to in page and failed[0].to not in page
    page = client.get(URL, {"kind": "request.rejected"}).content.decode()
    assert failed[0].to not in page
    assert client.get(URL, {"kind": "<script>", "state": "nonsense"}).status_code == 200


def test_retry_needs_csrf_and_sends_the_mail_once(
    org, mailoutbox, django_capture_on_commit_callbacks, place_order, manual_item
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    (mail,) = _mails(org, 1, MailState.UNCERTAIN)
    OutgoingMail.objects.filter(pk=mail.pk).update(
        params={"request_id": req.pk, "event": "approved"}
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.admin.user)
    page = client.get(URL).content.decode()
    assert client.post(retry_url(mail)).status_code == 403  # no token
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(mail), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [mail.message_id]
    # Again on a sent mail: refused with a message, nothing sent.
    response = client.post(retry_url(mail), {"csrfmiddlewaretoken": token}, follow=True)
    assert "Only failed or interrupted mails can be sent again." in response.content.decode()
    assert len(mailoutbox) == 1


def test_outbox_page_queries_do_not_grow(client, org):
    client.force_login(org.admin.user)

    def measure():
        assert client.get(URL).status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(URL).status_code == 200
        return len(ctx.captured_queries)

    _mails(org, 3, MailState.FAILED)
    few = measure()
    _mails(org, 27, MailState.RETRYING)
    assert measure() == few


def test_metrics_gauge_counts_mails_not_sent(client, org, settings):
    settings.METRICS_TOKEN = TOKEN
    _mails(org, 2, MailState.FAILED)
    _mails(org, 1, MailState.UNCERTAIN)
    _mails(org, 1, MailState.SENT)
    data = samples(scrape_text(client))
    assert value(data, "itportal_mails_unsent", state="failed") == 2
    assert value(data, "itportal_mails_unsent", state="uncertain") == 1
    assert value(data, "itportal_mails_unsent", state="retrying") == 0
    assert ("itportal_mails_unsent", frozenset({("state", "sent")})) not in data
