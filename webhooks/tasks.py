"""Celery tasks of webhooks: they take ids, call services, retry only transient errors."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from webhooks import services

# Above the connect and read timeouts (WEBHOOKS_*_TIMEOUT) together.
SOFT_TIME_LIMIT = 60


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker's delivery comes back (the row decides)
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=SOFT_TIME_LIMIT + 30,
    max_retries=None,  # the delivery row counts attempts; see WEBHOOKS_MAX_ATTEMPTS
)
def deliver_webhook(self, delivery_id: str) -> None:
    try:
        outcome = services.delivery_attempt(delivery_id=delivery_id)
    except SoftTimeLimitExceeded:
        outcome = services.delivery_timed_out(delivery_id=delivery_id, seconds=SOFT_TIME_LIMIT)
    if outcome is not None:
        raise self.retry(countdown=outcome.countdown)


@shared_task
def sweep_webhook_deliveries() -> int:
    return services.deliveries_sweep()


@shared_task
def prune_webhook_events() -> int:
    return services.events_prune()
