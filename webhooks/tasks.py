"""Celery tasks of webhooks: they take ids, call services, retry only transient errors."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from itportal import outbox
from itportal.locks import single_run
from itportal.outages import DATABASE_ERRORS, RETRY_ON_DATABASE_ERRORS, skip_on_database_errors
from runs.progress import track
from webhooks import services

# Above the connect and read timeouts (WEBHOOKS_*_TIMEOUT) together.
SOFT_TIME_LIMIT = 60


# The delivery row counts attempts (WEBHOOKS_MAX_ATTEMPTS); a killed worker's message
# comes back and the row decides.
@shared_task(**outbox.task_options(soft_time_limit=SOFT_TIME_LIMIT))
def deliver_webhook(self, delivery_id: str) -> None:
    try:
        try:
            outcome = services.delivery_attempt(delivery_id=delivery_id)
        except SoftTimeLimitExceeded:
            outcome = services.delivery_timed_out(delivery_id=delivery_id, seconds=SOFT_TIME_LIMIT)
    except DATABASE_ERRORS as exc:
        # The database restarts: the attempt's transaction rolled back, nothing is recorded.
        # Try again with backoff (a receiver that got the call already recognises the second
        # one by its delivery id); the sweeper takes over if these retries run out.
        raise self.retry(
            exc=exc,
            countdown=services.retry_countdown(self.request.retries + 1),
            max_retries=settings.WEBHOOKS_MAX_ATTEMPTS,
        ) from exc
    if outcome is not None:
        raise self.retry(countdown=outcome.countdown)


@shared_task
@skip_on_database_errors("webhooks-sweep")  # every minute: beat's next run takes over
@single_run("webhooks-sweep")
def sweep_webhook_deliveries() -> int:
    return services.deliveries_sweep()


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # daily
@single_run("webhooks-prune")
def prune_webhook_events() -> int:
    with track("webhooks-prune", unit="events", stream=None) as run:
        pruned = services.events_prune()
        run.update(pruned)
        run.outcome = f"{pruned} events pruned"
    return pruned
