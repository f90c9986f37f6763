"""Celery tasks of the mail outbox: they take ids, call services, retry what is transient.

The row decides what happens (notifications/services.py): a repeated or redelivered
message finds it sent or being sent and does nothing.
"""

from celery import shared_task
from django.conf import settings

from itportal import outbox
from itportal.locks import single_run
from itportal.outages import skip_on_database_errors
from notifications import services

# Above the SMTP timeout (EMAIL_TIMEOUT) and below MAIL_STALLED_AFTER_SECONDS.
SOFT_TIME_LIMIT = 90


def _database_countdown(retries: int) -> float:
    return services.retry_countdown(retries + 1)


# The row counts mail attempts (MAIL_MAX_ATTEMPTS); database retries are capped below.
@shared_task(**outbox.task_options(soft_time_limit=SOFT_TIME_LIMIT))
def send_mail(self, mail_id: str, outcome: dict | None = None) -> None:
    try:
        if outcome is not None:
            retry = services.mail_record(mail_id=mail_id, outcome=services.Outcome(**outcome))
        else:
            retry = services.mail_send(mail_id=mail_id)
    except services.NotRecorded as exc:
        # The attempt is over; only writing it down failed. Retry the writing, never the send.
        raise self.retry(
            kwargs={"mail_id": mail_id, "outcome": exc.outcome.as_dict()},
            countdown=_database_countdown(self.request.retries),
            max_retries=settings.MAIL_MAX_ATTEMPTS,
        ) from exc
    except services.DATABASE_ERRORS as exc:
        # Nothing was claimed or sent: try the whole thing again later.
        raise self.retry(
            exc=exc,
            countdown=_database_countdown(self.request.retries),
            max_retries=settings.MAIL_MAX_ATTEMPTS,
        ) from exc
    if retry is not None:
        raise self.retry(countdown=retry.countdown)


@shared_task(acks_late=True, reject_on_worker_lost=True)  # a second run only sends again
def wake_mails(mail_ids: list[str]) -> None:
    """The wake-up of many mails queued together (a batch of requests fulfilled at once):
    each mail gets its own ``send_mail`` message here, in a mail worker, as the after-commit
    wake-up of a single mail does, so the worker that fulfilled them sends one message
    instead of one per mail. Touches no database; a message lost on the way leaves its mail
    to the sweeper, as any lost wake-up."""
    for mail_id in mail_ids:
        send_mail.delay(mail_id)


@shared_task
@skip_on_database_errors("mail-sweep")  # every minute: beat's next run takes over
@single_run("mail-sweep")
def sweep_mails(prune: bool = False) -> dict:
    """Beat: every minute the sweep; once a day (``prune``) also the retention (a pruning
    missed in an outage is done by the next day's, which removes what is due then)."""
    counts = services.mails_sweep()
    if prune:
        counts["pruned"] = services.mails_prune()
    return counts
