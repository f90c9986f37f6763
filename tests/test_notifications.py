"""The mail outbox: written with the change, sent after commit, retried, delivered once.

Sending is driven attempt by attempt through the services (the Celery task only schedules
the next call), so no test waits for a backoff. A real SMTP server (aiosmtpd on a free
loopback port) proves what goes over the wire.
"""

import smtplib
from datetime import timedelta

import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.db import OperationalError, transaction
from django.utils import timezone

from notifications import services
from notifications.choices import MailState
from notifications.models import LanguagePreference, OutgoingMail
from notifications.tasks import send_mail, sweep_mails, wake_mails
from requests_app import services as request_services
from requests_app.models import ServiceRequest
from tests.mail_support import free_port

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


@pytest.fixture
def approved_mails(org, manual_item, place_order, django_capture_on_commit_callbacks):
    """Bob's notebook approved by the manager: the mails are queued, no worker woke yet."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    mails = list(OutgoingMail.objects.filter(kind="request.approved"))
    assert mails, "approving writes mails"
    return req, mails, callbacks


def attempt(mail, **kwargs):
    result = services.mail_send(mail_id=mail.pk, **kwargs)
    mail.refresh_from_db()
    return result


def later(mail):
    """A moment after the mail's next attempt is due."""
    return mail.next_attempt_at + timedelta(seconds=1)


def test_mails_are_written_in_the_approving_transaction_and_roll_back_with_it(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    before = OutgoingMail.objects.count()
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
        # inside the transaction: one row per recipient (desk, Alice, Bob)
        rows = OutgoingMail.objects.filter(kind="request.approved", params__request_id=req.pk)
        assert sorted(rows.values_list("to", flat=True)) == sorted(
            [org.fulfiller.user.email, org.alice.user.email, org.bob.user.email]
        )
        raise Boom  # the approval fails after the mails were written
    assert OutgoingMail.objects.count() == before
    assert ServiceRequest.objects.get(pk=req.pk).state == "awaiting_approval"
    assert [m for m in mailoutbox if "approved" in m.subject] == []


def test_mails_go_out_only_after_commit_with_their_message_id(approved_mails, mailoutbox):
    req, mails, callbacks = approved_mails
    mailoutbox.clear()
    assert {m.state for m in mails} == {MailState.PENDING}
    assert len(callbacks) >= 1  # a worker is woken after commit, not before
    for callback in callbacks:
        callback()  # eager Celery: the task runs here
    sent = {m.pk: m for m in OutgoingMail.objects.filter(pk__in=[m.pk for m in mails])}
    assert {m.state for m in sent.values()} == {MailState.SENT}
    assert sorted(m.extra_headers["Message-ID"] for m in mailoutbox) == sorted(
        m.message_id for m in sent.values()
    )
    for mail in sent.values():
        assert mail.attempts == 1
        if mail.to == req.fulfilment_group.user_set.get().email:
            # The fulfilling group is asked to act; the people it is for are told.
            assert (
                mail.subject == f"[Stadt Musterstadt] Please fulfil: request #{req.pk} (Notebook)"
            )
        else:
            assert mail.subject == f"[Stadt Musterstadt] Request #{req.pk} (Notebook) approved"


def test_mails_queued_together_send_one_wake_up_that_gives_each_its_message(
    org, manual_item, place_order, monkeypatch, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    woken, sent = [], []
    monkeypatch.setattr(wake_mails, "delay", lambda ids: woken.append(ids))
    monkeypatch.setattr(send_mail, "delay", lambda mail_id: sent.append(mail_id))
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    mails = OutgoingMail.objects.filter(kind="request.approved", params__request_id=req.pk)
    assert len(mails) == 3  # desk, Alice, Bob: one message for the three, after commit
    assert [sorted(ids) for ids in woken] == [sorted(str(mail.pk) for mail in mails)]
    assert sent == []
    wake_mails.run(woken[0])  # in a mail worker: each mail its own message, as before
    assert sent == woken[0]
    # A single mail is woken by its own message, as always.
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.mail_queue(
            kind="request.approved", recipients=[org.bob.user], params={"request_id": req.pk}
        )
    assert len(sent) == 1 and len(woken) == 1


def test_smtp_refusal_retries_with_backoff_and_the_mail_arrives_once(smtp, approved_mails):
    _req, mails, _callbacks = approved_mails
    mail = mails[0]
    smtp.refuse = 2
    retry = attempt(mail)
    assert retry is not None and retry.countdown > 0
    assert (mail.state, mail.attempts) == (MailState.RETRYING, 1)
    assert "451" in mail.last_error
    assert attempt(mail) is None  # not due yet: an early duplicate sends nothing
    assert mail.attempts == 1
    first_wait = mail.next_attempt_at
    attempt(mail, now=later(mail))
    assert (mail.state, mail.attempts) == (MailState.RETRYING, 2)
    assert mail.next_attempt_at > first_wait
    attempt(mail, now=later(mail))
    assert (mail.state, mail.attempts) == (MailState.SENT, 3)
    assert mail.last_error == ""
    assert len(smtp.messages) == 1
    received = smtp.messages[0]
    assert received["Message-ID"] == mail.message_id
    assert received["To"] == mail.to
    assert received["Subject"] == mail.subject
    # plain text and an HTML alternative, both naming the request
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "was approved" in text and "was approved" in html


def test_permanent_refusal_fails_at_once_and_attempts_are_limited(smtp, approved_mails, settings):
    _req, mails, _callbacks = approved_mails
    smtp.refuse, smtp.refusal = 1, "554 5.7.1 Rejected"
    attempt(mails[0])
    assert (mails[0].state, mails[0].attempts) == (MailState.FAILED, 1)
    assert "554" in mails[0].last_error

    settings.MAIL_MAX_ATTEMPTS = 2
    smtp.refuse, smtp.refusal = 10, "421 4.4.2 Busy"
    attempt(mails[1])
    attempt(mails[1], now=later(mails[1]))
    assert (mails[1].state, mails[1].attempts) == (MailState.FAILED, 2)
    assert smtp.messages == []


def test_unreachable_server_is_transient(approved_mails, settings):
    _req, mails, _callbacks = approved_mails
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    assert attempt(mails[0]) is not None
    assert mails[0].state == MailState.RETRYING
    assert "ConnectionRefusedError" in mails[0].last_error


def test_database_away_while_composing_is_transient(smtp, approved_mails, monkeypatch):
    """Composing reads the database; a restart at that moment retries the mail instead of
    failing it as if its template were broken (the fault suite lost a mail that way)."""
    from django.db import OperationalError

    from notifications import services as mail_services

    _req, mails, _callbacks = approved_mails
    real_compose = mail_services.compose

    def away(mail):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(mail_services, "compose", away)
    assert attempt(mails[0]) is not None
    assert mails[0].state == MailState.RETRYING
    assert "server closed the connection" in mails[0].last_error
    monkeypatch.setattr(mail_services, "compose", real_compose)
    attempt(mails[0], now=later(mails[0]))
    assert mails[0].state == MailState.SENT
    assert len(smtp.messages) == 1


def test_a_redelivered_task_message_sends_nothing_twice(smtp, approved_mails):
    """A lost acknowledgement: the broker hands the same message to a worker again."""
    _req, mails, _callbacks = approved_mails
    mail = mails[0]
    send_mail.apply(args=[str(mail.pk)])
    send_mail.apply(args=[str(mail.pk)])  # the redelivery
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1)
    assert len(smtp.messages) == 1


def test_a_worker_killed_between_sending_and_recording_never_resends(
    smtp, approved_mails, monkeypatch, settings
):
    """The server accepted the mail, then the worker died before writing it down."""
    _req, mails, _callbacks = approved_mails
    mail = mails[0]

    def killed(**kwargs):
        raise SystemExit("SIGKILL")  # nothing after this runs, nothing is recorded

    with monkeypatch.context() as patch:
        patch.setattr(services, "mail_record", killed)
        with pytest.raises(SystemExit):
            services.mail_send(mail_id=mail.pk)
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENDING, 1)
    assert smtp.received(mail) == 1

    # The killed worker's message comes back (acks_late): the row says "being sent".
    send_mail.apply(args=[str(mail.pk)])
    # The sweeper, even much later, does not resend it but marks it for an IT admin.
    assert sweep_mails.apply().get()["interrupted"] == 0  # not stalled yet
    stalled = timezone.now() + timedelta(seconds=settings.MAIL_STALLED_AFTER_SECONDS + 1)
    assert services.mails_sweep(now=stalled)["interrupted"] == 1
    mail.refresh_from_db()
    assert mail.state == MailState.UNCERTAIN
    assert "may have arrived" in mail.last_error
    send_mail.apply(args=[str(mail.pk)])
    assert smtp.received(mail) == 1


def stopped_in(monkeypatch, mail, method: str, *, after_running: bool = False) -> None:
    """One attempt at ``mail`` whose worker is stopped in the SMTP backend's ``method``
    (after running it, with ``after_running``): SIGTERM raises SystemExit in a pool
    process (a cold shutdown, a terminated task, systemd stopping the control group)."""
    from django.core.mail.backends.smtp import EmailBackend

    original = getattr(EmailBackend, method)

    def stopped(self, *args):
        if after_running:
            original(self, *args)
        raise SystemExit(-15)

    with monkeypatch.context() as patch:
        patch.setattr(EmailBackend, method, stopped)
        with pytest.raises(SystemExit):
            services.mail_send(mail_id=mail.pk)
    mail.refresh_from_db()


def test_a_worker_stopped_before_the_handover_gives_the_attempt_back(
    smtp, approved_mails, monkeypatch
):
    """Stopped while it connects, the attempt has sent nothing: the row waits to retry
    instead of ending "uncertain", and is sent once."""
    mail = approved_mails[1][0]
    stopped_in(monkeypatch, mail, "open")
    assert (mail.state, mail.attempts, smtp.received(mail)) == (MailState.RETRYING, 1, 0)
    assert "handed to the mail server" in mail.last_error
    assert attempt(mail, now=later(mail)) is None
    assert (mail.state, mail.attempts, smtp.received(mail)) == (MailState.SENT, 2, 1)


def test_a_worker_stopped_during_the_handover_leaves_the_mail_uncertain(
    smtp, approved_mails, monkeypatch, settings
):
    """Stopped once the hand-over began (here: the server had accepted), nobody knows
    whether the mail arrived: the row stays "sending", ends "uncertain", is not resent."""
    mail = approved_mails[1][0]
    stopped_in(monkeypatch, mail, "send_messages", after_running=True)
    assert (mail.state, mail.attempts, smtp.received(mail)) == (MailState.SENDING, 1, 1)
    stalled = timezone.now() + timedelta(seconds=settings.MAIL_STALLED_AFTER_SECONDS + 1)
    assert services.mails_sweep(now=stalled)["interrupted"] == 1
    send_mail.apply(args=[str(mail.pk)])
    mail.refresh_from_db()
    assert (mail.state, smtp.received(mail)) == (MailState.UNCERTAIN, 1)


def test_database_outage_while_recording_retries_the_record_not_the_send(
    smtp, approved_mails, monkeypatch
):
    _req, mails, _callbacks = approved_mails
    mail = mails[0]
    record = services.mail_record
    failures = []

    def flaky_record(**kwargs):
        if not failures:
            failures.append(kwargs["outcome"])
            raise OperationalError("server closed the connection unexpectedly")
        return record(**kwargs)

    monkeypatch.setattr(services, "mail_record", flaky_record)
    with pytest.raises(Retry) as retried:
        send_mail.apply(args=[str(mail.pk)])
    mail.refresh_from_db()
    assert failures[0].sent is True
    assert (mail.state, len(smtp.messages)) == (MailState.SENDING, 1)
    retried.value.sig.apply()  # the retry message, as the broker delivers it
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1)
    assert len(smtp.messages) == 1


def test_database_outage_before_the_claim_retries_the_whole_send(smtp, approved_mails, monkeypatch):
    _req, mails, _callbacks = approved_mails
    mail = mails[0]
    claim = services.outbox.claim
    failures = []

    def flaky_claim(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("the database system is starting up")
        return claim(*args, **kwargs)

    monkeypatch.setattr(services.outbox, "claim", flaky_claim)
    with pytest.raises(Retry) as retried:
        send_mail.apply(args=[str(mail.pk)])
    mail.refresh_from_db()
    assert (failures, mail.state, mail.attempts) == ([1], MailState.PENDING, 0)
    retried.value.sig.apply()
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1)
    assert len(smtp.messages) == 1


def test_sweeper_sends_mails_whose_wake_up_was_lost(approved_mails, mailoutbox):
    _req, mails, _callbacks = approved_mails  # the on-commit wake-ups never ran
    mailoutbox.clear()
    assert services.mails_sweep() == {"requeued": 0, "interrupted": 0}  # not overdue yet
    waiting = OutgoingMail.objects.filter(state=MailState.PENDING).count()  # with the order's
    soon = timezone.now() + timedelta(minutes=5)
    assert services.mails_sweep(now=soon) == {"requeued": waiting, "interrupted": 0}
    assert len(mailoutbox) == waiting
    assert set(
        OutgoingMail.objects.filter(pk__in=[m.pk for m in mails]).values_list("state", flat=True)
    ) == {MailState.SENT}


def test_mail_about_a_deleted_request_fails_without_sending(approved_mails, mailoutbox):
    _req, mails, _callbacks = approved_mails
    mailoutbox.clear()
    OutgoingMail.objects.filter(pk=mails[0].pk).update(
        params={"request_id": 0, "event": "approved"}
    )
    attempt(mails[0])
    assert mails[0].state == MailState.FAILED
    assert mailoutbox == []


def test_mails_are_german_by_default_and_english_for_who_chose_it(
    org, manual_item, place_order, settings, mailoutbox, client, django_capture_on_commit_callbacks
):
    settings.LANGUAGE_CODE = "de"
    client.force_login(org.alice.user)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert LanguagePreference.objects.get(user=org.alice.user).language == "en"
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_reject(
            request_id=req.pk, user=org.manager.user, comment="Kein Budget."
        )
    subjects = {m.to[0]: m.subject for m in mailoutbox}
    assert subjects[org.alice.user.email].endswith(f"Request #{req.pk} (Notebook) rejected")
    assert subjects[org.bob.user.email].endswith(f"Antrag Nr. {req.pk} (Notebook) abgelehnt")
    bodies = {m.to[0]: m.alternatives[0].content for m in mailoutbox}
    assert 'lang="de"' in bodies[org.bob.user.email]
    assert 'lang="en"' in bodies[org.alice.user.email]


def test_provisioning_reports_and_expiry_notices_go_through_the_outbox(
    org, manual_item, place_order, settings, mailoutbox, django_capture_on_commit_callbacks
):
    from provisioning import mails
    from provisioning.choices import EntitlementState
    from provisioning.models import DriftFinding, Entitlement, SyncRun

    settings.LANGUAGE_CODE = "de"
    sync = SyncRun.objects.create(
        kind=SyncRun.Kind.FULL, counts={"leavers": 2, "movers": 1}, report="Austritt: m10042"
    )
    drift = SyncRun.objects.create(
        kind=SyncRun.Kind.RECONCILE, counts={"missing": 1, "unexpected": 0}
    )
    DriftFinding.objects.create(
        run=drift, kind=DriftFinding.Kind.MISSING, group_dn="cn=vpn,ou=groups", member="bob"
    )
    entitlement = Entitlement.objects.create(
        request=place_order(manual_item, org.bob.user),
        holder=org.bob,
        item=manual_item,
        state=EntitlementState.ACTIVE,
        expires_on=timezone.localdate() + timedelta(days=3),
    )
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            mails.queue_run_report(sync)
            mails.queue_run_report(drift)
            mails.queue_expiry_notice(entitlement)
            kinds = OutgoingMail.objects.filter(kind__startswith="provisioning.")
            assert kinds.filter(state=MailState.PENDING).count() == 3
        assert mailoutbox == []  # nothing before commit
    subjects = {m.subject: (m.to, m.body) for m in mailoutbox}
    admin = [org.admin.user.email]
    sync_subject = "[Stadt Musterstadt] Verzeichnisabgleich: 2 Austritte, 1 Wechsel"
    assert subjects[sync_subject][0] == admin
    assert "Austritt: m10042" in subjects[sync_subject][1]
    drift_subject = "[Stadt Musterstadt] Soll-Ist-Abgleich: 1 fehlend, 0 ohne Erteilung"
    assert subjects[drift_subject][0] == admin
    assert "bob in cn=vpn,ou=groups" in subjects[drift_subject][1]
    date = entitlement.expires_on.strftime("%d.%m.%Y")
    notice = subjects[f"Ihr Zugang „{manual_item.name}“ endet am {date}"]
    assert notice[0] == [org.bob.user.email]
    assert "bestellen Sie ihn bitte erneut" in notice[1]
    assert set(kinds.values_list("state", flat=True)) == {MailState.SENT}


def test_database_outage_while_marking_the_attempt_sends_once_later(
    approved_mails, monkeypatch, mailoutbox
):
    """The connection breaks while the attempt is marked: nothing is sent; it is not left
    "sending" (it would end "uncertain"), and the sweeper sends it once."""
    _req, mails, _callbacks = approved_mails
    mail = mails[0]
    mailoutbox.clear()
    save = OutgoingMail.save

    def broken_save(self, *args, **kwargs):
        if self.state == MailState.SENDING:
            raise OperationalError("terminating connection due to administrator command")
        return save(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(OutgoingMail, "save", broken_save)
        with pytest.raises(Retry) as retried:
            send_mail.apply(args=[str(mail.pk)])
    assert retried.value.sig.kwargs["outcome"]["sent"] is False
    retried.value.sig.apply()  # records nothing: the mark never committed
    mail.refresh_from_db()
    assert (mail.state, mail.attempts, mailoutbox) == (MailState.PENDING, 0, [])
    # Had the mark committed after all, the recorded outcome puts it back to retry.
    other = mails[1]
    with transaction.atomic():
        claimed = OutgoingMail.objects.select_for_update().get(pk=other.pk)
        claimed.claim()
        claimed.save()
    retry = services.mail_record(
        mail_id=other.pk, outcome=services.Outcome(1, sent=False, error="gone", transient=True)
    )
    other.refresh_from_db()
    assert retry is not None and (other.state, other.attempts) == (MailState.RETRYING, 1)
    services.mails_sweep(now=timezone.now() + timedelta(minutes=2))
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox].count(mail.message_id) == 1


def test_daily_sweep_prunes_sent_mails_after_the_retention_only(approved_mails, settings):
    _req, mails, _callbacks = approved_mails
    old = timezone.now() - timedelta(days=settings.MAIL_RETENTION_DAYS + 1)
    OutgoingMail.objects.filter(pk=mails[0].pk).update(state=MailState.SENT, sent_at=old)
    OutgoingMail.objects.filter(pk=mails[1].pk).update(state=MailState.FAILED, created_at=old)
    OutgoingMail.objects.filter(pk=mails[2].pk).update(state=MailState.SENT, sent_at=timezone.now())
    assert sweep_mails.apply(kwargs={"prune": True}).get()["pruned"] == 1
    assert not OutgoingMail.objects.filter(pk=mails[0].pk).exists()
    assert OutgoingMail.objects.filter(pk__in=[mails[1].pk, mails[2].pk]).count() == 2


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (smtplib.SMTPDataError(451, b"4.3.0 try later"), True),
        (smtplib.SMTPDataError(554, b"5.7.1 rejected"), False),
        (smtplib.SMTPSenderRefused(421, b"4.7.0 busy", "itportal@localhost"), True),
        (smtplib.SMTPSenderRefused(553, b"5.1.8 bad sender", "itportal@localhost"), False),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (452, b"full")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (550, b"none")}), False),
        (smtplib.SMTPRecipientsRefused({}), False),
        (smtplib.SMTPAuthenticationError(454, b"4.7.0 temporary auth failure"), True),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), False),
        (smtplib.SMTPConnectError(421, b"too many connections"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), False),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (OSError(101, "Network is unreachable"), True),
        (SoftTimeLimitExceeded(), True),
        (ValueError("bad header"), False),
    ],
)
def test_which_errors_are_retried(error, retried):
    assert services.transient(error) is retried
