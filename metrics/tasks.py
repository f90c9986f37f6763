"""Celery tasks of the metrics app: keeping the controlling roll-ups current."""

from celery import shared_task
from django.conf import settings

from itportal.locks import single_run
from itportal.outages import skip_on_database_errors
from metrics.controlling import rollup


@shared_task
@skip_on_database_errors("controlling-rollup")  # every 5 min: beat's next run takes over
@single_run("controlling-rollup")
def refresh_controlling_rollups() -> dict:
    """Roll up closed months that are dirty or new; one run at a time (advisory lock)."""
    return rollup.refresh(budget_seconds=settings.CONTROLLING_ROLLUP_BUDGET_SECONDS)
