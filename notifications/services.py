"""Writes of the mail outbox: queueing mails, sending them once, sweeping, retrying.

Delivered once. ``mail_queue`` writes one row per recipient in the caller's transaction
and wakes a worker after commit (itportal/outbox.py). A worker claims a due row with
``SELECT … FOR UPDATE SKIP LOCKED`` and commits the attempt (state "sending") *before*
it talks to the mail server; then it sends, and records the outcome in a second
transaction. So:

- a redelivered task message (lost acknowledgement, broker restart, a killed worker's
  message coming back) finds the row sent, or still "sending", and sends nothing;
- a worker that dies between sending and recording leaves the row "sending"; the sweeper
  marks it "uncertain" after MAIL_STALLED_AFTER_SECONDS. Such a mail may have arrived, so
  it is **not** sent again automatically: it shows on "Postausgang" for an IT admin, who
  may send it again (same Message-ID, so a mail system that deduplicates hides a repeat);
- a worker stopped *before* it began handing the mail to the server (SIGTERM makes a pool
  process raise SystemExit: a cold shutdown, a terminated task, systemd stopping the whole
  control group) gives the attempt back: the row waits to retry instead of ending
  "uncertain", as nothing can have been sent. A consumer restart (lost broker connection,
  the worker watchdog) does not stop a running send at all (itportal/settings.py);
- when the database fails while the outcome is recorded, the task retries recording that
  outcome (it knows it), never the sending;
- an error answer of the server, or a connection that breaks before the server's final
  answer, counts as not sent (the server takes responsibility only with that answer,
  RFC 5321): temporary ones (4xx, network) retry with backoff up to MAIL_MAX_ATTEMPTS,
  permanent ones (5xx) fail at once.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from itportal import outbox
from itportal.exceptions import ActionConflict
from itportal.outages import DATABASE_ERRORS  # the database went away: the task retries
from notifications import registry
from notifications.choices import ATTENTION_MAIL_STATES, OPEN_MAIL_STATES, MailState
from notifications.models import LanguagePreference, Notification, OutgoingMail

logger = logging.getLogger(__name__)

ERROR_LENGTH = 500
# A task may run a little before the time the row names (clocks of worker and database).
DUE_TOLERANCE = timedelta(seconds=5)
SWEEP_BATCH = 500


# --- queueing ---------------------------------------------------------------------------


@dataclass
class Mailing:
    """One event's mail to its recipients, for ``mails_queue``. ``context``: the kind's
    context for a recipient, built from what the caller holds in hand (None: the kind reads
    it, as when the mail is sent)."""

    recipients: list
    params: dict
    mail_to: Iterable | None = None
    context: Callable[[object], dict | None] | None = None


def mail_queue(
    *, kind: str, recipients: Iterable, params: dict, mail_to: Iterable | None = None
) -> list[OutgoingMail]:
    """Write one mail per recipient with an address; call inside the transaction of the event.

    A rolled-back event leaves no mail; a committed one is sent after commit (or by the
    sweeper, when the wake-up message is lost). ``mail_to``: only these of the recipients
    get a mail; all of them find the notification in the portal.
    """
    return mails_queue(
        kind=kind, mailings=[Mailing(recipients=list(recipients), params=params, mail_to=mail_to)]
    )


def mails_queue(*, kind: str, mailings: list[Mailing]) -> list[OutgoingMail]:
    """``mail_queue`` for many events of one kind at once (requests fulfilled together): one
    INSERT for the notifications, one for the mails, one wake-up message after commit
    (``wake_mails`` hands each mail its own message in a mail worker)."""
    from notifications.tasks import send_mail, wake_mails

    if registry.get(kind) is None:
        raise ValueError(f"unknown mail kind {kind!r}")
    _notifications_write(kind, mailings)
    rows = []
    for mailing in mailings:
        recipients = mailing.recipients
        if mailing.mail_to is not None:
            wanted = {user.pk for user in mailing.mail_to}
            recipients = [user for user in recipients if user.pk in wanted]
        people = {user.pk: user for user in recipients if user.email}
        rows += [
            OutgoingMail(kind=kind, params=mailing.params, recipient=user, to=user.email)
            for user in people.values()
        ]
    mails = OutgoingMail.objects.bulk_create(rows)
    if len(mails) > 1:
        ids = [str(mail.pk) for mail in mails]
        transaction.on_commit(lambda: wake_mails.delay(ids), robust=True)
    else:
        outbox.enqueue_after_commit(send_mail, [mail.pk for mail in mails])
    return mails


def notifications_write(*, kind: str, recipients: Iterable, params: dict) -> list[Notification]:
    """One entry in each recipient's list in the portal, with or without a mail address.

    Called by ``mail_queue`` inside the event's transaction. The title is the mail's subject
    in the recipient's language (without the city prefix), the link the page the mail
    points to; what no longer exists gets no entry.
    """
    return _notifications_write(kind, [Mailing(recipients=list(recipients), params=params)])


def _notifications_write(kind: str, mailings: list[Mailing]) -> list[Notification]:
    kind_spec = registry.get(kind)
    rows = []
    base = settings.PORTAL_BASE_URL.rstrip("/")
    languages = languages_of(user for mailing in mailings for user in mailing.recipients)
    for mailing in mailings:
        context_for = mailing.context or (lambda user, p=mailing.params: kind_spec.context(p, user))
        for user in {user.pk: user for user in mailing.recipients}.values():
            context = context_for(user)
            if context is None:
                continue
            context = {**context, "user": user, "city": "", "base_url": base}
            with translation.override(languages[user.pk]):
                subject = render_to_string(f"{kind_spec.templates}/subject.txt", context)
            title = " ".join(subject.split()).removeprefix("[]").strip()
            url = str(context.get("url") or "").removeprefix(base)
            rows.append(Notification(recipient=user, kind=kind, title=title[:300], url=url[:500]))
    return Notification.objects.bulk_create(rows)


def notifications_mark_read(*, user, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications, or all of them, as read; returns how many."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())


def language_remember(*, user, language: str) -> None:
    """The language a person chose; their next mails are written in it."""
    if language not in dict(settings.LANGUAGES):
        return
    LanguagePreference.objects.update_or_create(user=user, defaults={"language": language})


# --- composing --------------------------------------------------------------------------


class MailGone(Exception):
    """What the mail is about no longer exists (or its kind is unknown)."""


def language_of(user) -> str:
    preference = LanguagePreference.objects.filter(user=user).values_list("language", flat=True)
    return preference.first() or settings.LANGUAGE_CODE


def languages_of(users: Iterable) -> dict[int, str]:
    """``language_of`` for many people, in one query: user id → language."""
    ids = {user.pk for user in users}
    chosen = dict(
        LanguagePreference.objects.filter(user_id__in=ids).values_list("user_id", "language")
    )
    return {pk: chosen.get(pk) or settings.LANGUAGE_CODE for pk in ids}


def compose(mail: OutgoingMail) -> EmailMultiAlternatives:
    """The message in the recipient's language: plain text, and HTML where a template exists."""
    kind = registry.get(mail.kind)
    context = kind.context(mail.params, mail.recipient) if kind is not None else None
    if context is None:
        raise MailGone(_("What this mail is about no longer exists."))
    language = language_of(mail.recipient)
    context = {
        **context,
        "user": mail.recipient,
        "city": settings.PORTAL_CITY_NAME,
        "base_url": settings.PORTAL_BASE_URL.rstrip("/"),
    }
    with translation.override(language):
        subject = " ".join(render_to_string(f"{kind.templates}/subject.txt", context).split())
        text = render_to_string(f"{kind.templates}/body.txt", context)
        try:
            html = render_to_string(f"{kind.templates}/body.html", context)
        except TemplateDoesNotExist:
            html = None
    message = EmailMultiAlternatives(
        subject[:300],
        text,
        settings.DEFAULT_FROM_EMAIL,
        [mail.to],
        headers={
            "Message-ID": mail.message_id,
            "Auto-Submitted": "auto-generated",
            "Content-Language": language,
        },
    )
    if html:
        message.attach_alternative(html, "text/html")
    return message


# --- sending ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one attempt did; recorded in its own transaction (and retried when that fails)."""

    attempt: int
    sent: bool
    subject: str = ""
    error: str = ""
    transient: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RetryLater:
    countdown: float


class NotRecorded(Exception):
    """The attempt is over but the database failed while recording it: record it later."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        super().__init__(outcome)


def transient(exc: BaseException) -> bool:
    """Temporary answers (4xx) and network trouble retry; 5xx and anything else do not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return bool(codes) and all(code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPException):  # an OSError too, but not always network
        return isinstance(exc, smtplib.SMTPServerDisconnected)  # not: STARTTLS unsupported
    return isinstance(exc, OSError | SoftTimeLimitExceeded)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]


@dataclass
class Handover:
    """Whether an attempt has begun to hand its mail to the server (MAIL FROM onwards)."""

    begun: bool = False


def _transmit(mail: OutgoingMail, handover: Handover) -> Outcome:
    """Compose and hand the mail to the server once; never raises for a mail problem."""
    attempt = mail.attempts
    try:
        message = compose(mail)
    except MailGone as exc:
        return Outcome(attempt, sent=False, error=str(exc))
    except DATABASE_ERRORS as exc:
        # Composing reads the request and the recipient's language: a database that is away
        # for a moment (a restart) is a reason to try again, not a broken mail. Nothing was
        # sent. (The fault suite lost one mail this way: it was marked failed.)
        return Outcome(attempt, sent=False, error=_error_text(exc), transient=True)
    except Exception as exc:  # a broken template: an IT admin must see it, not a retry loop
        logger.exception("mail %s could not be composed", mail.pk)
        return Outcome(attempt, sent=False, error=_error_text(exc))
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
        smtp = getattr(connection, "connection", None)  # Django's SMTP backend: smtplib.SMTP
        if smtp is not None:
            smtp.ehlo_or_helo_if_needed()  # connecting and greeting hand nothing over
        handover.begun = True
        accepted = connection.send_messages([message])
    except Exception as exc:
        return Outcome(attempt, sent=False, error=_error_text(exc), transient=transient(exc))
    finally:
        # The server has answered the mail by now; a failing QUIT changes nothing.
        with contextlib.suppress(Exception):
            connection.close()
    if not accepted:
        return Outcome(attempt, sent=False, error=_("The mail server accepted no recipient."))
    return Outcome(attempt, sent=True, subject=message.subject)


def mail_send(*, mail_id, now: datetime | None = None) -> RetryLater | None:
    """Send one due mail once; RetryLater when a temporary error should retry it.

    Raises NotRecorded when the mail went out (or failed) but the outcome could not be
    written, and a database error when the row could not even be claimed.
    """
    now = now or timezone.now()
    claimed = None
    try:
        with transaction.atomic():
            mail = outbox.claim(
                OutgoingMail.objects.select_related("recipient"), mail_id, OPEN_MAIL_STATES
            )
            if mail is None:
                return None  # another worker has it, it is being sent, or it is settled
            if mail.next_attempt_at > now + DUE_TOLERANCE:
                return None  # an early duplicate; the scheduled retry or the sweeper comes back
            mail.claim()
            claimed = mail
            mail.save()
    except DATABASE_ERRORS as exc:
        if claimed is None:
            raise
        # The mark may have committed although the commit failed; nothing was sent. Say so,
        # or the row would wait as "sending" and end "uncertain" for no reason.
        raise NotRecorded(
            Outcome(claimed.attempts, sent=False, error=_error_text(exc), transient=True)
        ) from exc
    handover = Handover()
    try:
        outcome = _transmit(mail, handover)
    except BaseException:
        # The worker is being stopped (SIGTERM raises SystemExit in a pool process). Before
        # the hand-over nothing can have been sent: give the attempt back, or the row would
        # end "uncertain" and never be sent. After it the row stays "sending" (unknown).
        if not handover.begun:
            _give_back(mail)
        raise
    try:
        return mail_record(mail_id=mail.pk, outcome=outcome)
    except DATABASE_ERRORS as exc:
        raise NotRecorded(outcome) from exc


def _give_back(mail: OutgoingMail) -> None:
    """Record an attempt stopped before its hand-over as not sent; it waits to retry (the
    sweeper enqueues it when due). When even that fails the row stays "sending"."""
    outcome = Outcome(
        mail.attempts,
        sent=False,
        error=_("Stopped before the mail was handed to the mail server; it is sent again."),
        transient=True,
    )
    try:
        mail_record(mail_id=mail.pk, outcome=outcome)
    except Exception:
        logger.warning("mail %s: a stopped attempt could not be given back", mail.pk)


def mail_record(*, mail_id, outcome: Outcome) -> RetryLater | None:
    """Settle an attempt: sent, retry later, or failed. Only the attempt it belongs to."""
    with transaction.atomic():
        mail = OutgoingMail.objects.select_for_update().filter(pk=mail_id).first()
        if (
            mail is None
            or mail.attempts != outcome.attempt
            or mail.state not in (MailState.SENDING, MailState.UNCERTAIN)
        ):
            return None  # recorded before (a repeated message), or an admin acted since
        retry = None
        if outcome.sent:
            mail.succeed(subject=outcome.subject)
        elif outcome.transient and mail.attempts < settings.MAIL_MAX_ATTEMPTS:
            retry = RetryLater(retry_countdown(mail.attempts))
            mail.defer(
                error=outcome.error, retry_at=timezone.now() + timedelta(seconds=retry.countdown)
            )
        else:
            mail.fail(error=outcome.error)
        mail.save()
    if not outcome.sent:
        logger.info("mail %s to %s: %s", mail.pk, mail.to, outcome.error)
    return retry


def retry_countdown(attempt: int) -> float:
    return outbox.backoff_seconds(
        attempt, base=settings.MAIL_RETRY_BASE_SECONDS, cap=settings.MAIL_RETRY_MAX_SECONDS
    )


# --- sweeping and retrying ------------------------------------------------------------------


def mails_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue due mails whose message got lost; mark stalled attempts uncertain."""
    from notifications.tasks import send_mail

    now = now or timezone.now()
    stalled_before = now - timedelta(seconds=settings.MAIL_STALLED_AFTER_SECONDS)
    stalled = list(
        OutgoingMail.objects.filter(state=MailState.SENDING, sending_since__lt=stalled_before)
        .order_by("sending_since")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    interrupted = 0
    for mail_id in stalled:
        with transaction.atomic():
            mail = outbox.claim(OutgoingMail.objects.all(), mail_id, [MailState.SENDING])
            if mail is None or mail.sending_since >= stalled_before:
                continue
            mail.interrupt(
                error=_(
                    "Sending was interrupted (the worker stopped); the mail may have arrived. "
                    "Send it again only if the recipient did not get it."
                )
            )
            mail.save()
            interrupted += 1
    overdue = outbox.overdue_ids(
        OutgoingMail.objects.all(),
        states=OPEN_MAIL_STATES,
        # Due longer than this ago: their message was lost.
        before=now - timedelta(seconds=settings.MAIL_SWEEP_AFTER_SECONDS),
        limit=SWEEP_BATCH,
    )
    for mail_id in overdue:
        send_mail.delay(str(mail_id))
    if interrupted or overdue:
        logger.warning("mail sweep: %s re-enqueued, %s interrupted", len(overdue), interrupted)
    return {"requeued": len(overdue), "interrupted": interrupted}


@transaction.atomic
def mail_retry(*, mail_id) -> OutgoingMail:
    """An IT admin sends a failed or interrupted mail again (same Message-ID)."""
    from notifications.tasks import send_mail

    mail = OutgoingMail.objects.select_for_update().filter(pk=mail_id).first()
    if mail is None or mail.state not in ATTENTION_MAIL_STATES:
        raise ActionConflict(_("Only failed or interrupted mails can be sent again."))
    mail.requeue()
    mail.save()
    outbox.enqueue_after_commit(send_mail, [mail.pk])
    return mail


def mails_prune(*, now: datetime | None = None) -> int:
    """Delete sent mails after MAIL_RETENTION_DAYS; failed ones stay until dealt with."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MAIL_RETENTION_DAYS)
    deleted, _by_model = OutgoingMail.objects.filter(
        state=MailState.SENT, sent_at__lt=cutoff
    ).delete()
    return deleted
