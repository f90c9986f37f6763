"""The mail outbox: one row per recipient and event, written in the transaction of the
event and sent by a worker after commit (notifications/services.py)."""

import uuid
from email.utils import parseaddr

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from itportal.fsm import ConcurrentStateMixin
from itportal.models import OutboxRow
from notifications.choices import MailState

M = MailState


class OutgoingMail(ConcurrentStateMixin, OutboxRow):
    """One mail to one person. Its id is the idempotency key and the Message-ID.

    Subject and body are rendered when it is sent, in the recipient's language, from the
    templates of its ``kind`` (notifications/registry.py) and the ids in ``params``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=60)
    params = models.JSONField(_("parameters"), default=dict)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    to = models.EmailField(_("address"), max_length=254)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    state = FSMField(_("state"), default=M.PENDING, choices=M.choices, protected=True)
    sending_since = models.DateTimeField(_("sending since"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta(OutboxRow.Meta):
        verbose_name = _("outgoing mail")
        verbose_name_plural = _("outgoing mails")
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outgoingmail_due_idx"),
            models.Index(fields=["-created_at"], name="outgoingmail_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to}"

    @property
    def message_id(self) -> str:
        """Stable for every attempt, so a receiving system can recognise a repeat."""
        domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "itportal"
        return f"<{self.pk}@{domain}>"

    # --- transitions: this row only ------------------------------------------------

    @transition(field=state, source=[M.PENDING, M.RETRYING], target=M.SENDING)
    def claim(self):
        """Marked (and committed) before the mail goes out: a crash leaves it visible."""
        self.attempts += 1
        self.sending_since = timezone.now()

    @transition(field=state, source=[M.SENDING, M.UNCERTAIN], target=M.SENT)
    def succeed(self, *, subject: str):
        self.subject = subject
        self.sent_at = timezone.now()
        self.sending_since = None
        self.last_error = ""

    @transition(field=state, source=[M.SENDING, M.UNCERTAIN], target=M.RETRYING)
    def defer(self, *, error: str, retry_at):
        self.sending_since = None
        self.last_error = error
        self.next_attempt_at = retry_at

    @transition(field=state, source=[M.SENDING, M.UNCERTAIN], target=M.FAILED)
    def fail(self, *, error: str):
        self.sending_since = None
        self.last_error = error

    @transition(field=state, source=M.SENDING, target=M.UNCERTAIN)
    def interrupt(self, *, error: str):
        self.last_error = error

    @transition(field=state, source=[M.FAILED, M.UNCERTAIN], target=M.PENDING)
    def requeue(self):
        """An IT admin sends it again: a new round of attempts, same Message-ID."""
        self.attempts = 0
        self.sending_since = None
        self.next_attempt_at = timezone.now()


class LanguagePreference(models.Model):
    """The language a person chose in the portal; their mails are written in it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="language_preference",
        verbose_name=_("user"),
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)

    class Meta:
        verbose_name = _("language preference")
        verbose_name_plural = _("language preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language}"


class Notification(models.Model):
    """A message in the person's list in the portal ("Benachrichtigungen"), one per person
    and event. Written by ``mail_queue`` in the transaction of the event, with the mails, so
    the list never tells of an event that was rolled back. Title and link are rendered when
    written, in the person's language, so the list costs one query however long it is."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    kind = models.CharField(_("kind"), max_length=60)
    title = models.CharField(_("title"), max_length=300)
    url = models.CharField(_("link"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_recipient_idx"),
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title
