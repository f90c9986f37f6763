"""Reads of the mail outbox: only IT admins see it."""

from django.db.models import Count, QuerySet

from itportal.roles import is_it_admin
from notifications.choices import MailState
from notifications.models import Notification, OutgoingMail

# The gauge's states: everything not sent yet, and what needs an admin.
GAUGE_STATES = (
    MailState.PENDING,
    MailState.SENDING,
    MailState.RETRYING,
    MailState.FAILED,
    MailState.UNCERTAIN,
)


def mails_visible_to(user) -> QuerySet[OutgoingMail]:
    if not is_it_admin(user):
        return OutgoingMail.objects.none()
    return OutgoingMail.objects.select_related("recipient")


def mail_counts_by_state(states=GAUGE_STATES) -> dict[str, int]:
    """Mails not sent, by state (all of them, or ``states``); one grouped query on the indexed
    state column."""
    counts = dict.fromkeys(states, 0)
    rows = (
        OutgoingMail.objects.filter(state__in=states)
        .order_by()
        .values_list("state")
        .annotate(count=Count("pk"))
    )
    counts.update(dict(rows))
    return counts


def notifications_of(user) -> QuerySet[Notification]:
    """The person's own notifications, newest first; nobody sees another's."""
    if not user.is_authenticated:
        return Notification.objects.none()
    return Notification.objects.filter(recipient=user)
