"""Celery tasks of the metrics app: keeping the controlling roll-ups current."""

from celery import shared_task
from django.conf import settings

from itportal.locks import single_run
from metrics.controlling import rollup


@shared_task
@single_run("controlling-rollup")
def refresh_controlling_rollups() -> dict:
    """Roll up closed months that are dirty or new; one run at a time (advisory lock)."""
    return rollup.refresh(budget_seconds=settings.CONTROLLING_ROLLUP_BUDGET_SECONDS)
