"""Celery tasks of the metrics app: the controlling roll-ups and the incremental gauges."""

from celery import shared_task
from django.conf import settings

from itportal.locks import single_run
from itportal.outages import skip_on_database_errors
from metrics import gauges
from metrics.controlling import rollup


@shared_task
@skip_on_database_errors("controlling-rollup")  # every 5 min: beat's next run takes over
@single_run("controlling-rollup")
def refresh_controlling_rollups() -> dict:
    """Roll up closed months that are dirty or new; one run at a time (advisory lock)."""
    return rollup.refresh(budget_seconds=settings.CONTROLLING_ROLLUP_BUDGET_SECONDS)


@shared_task
@skip_on_database_errors("compact-gauges")  # every minute: beat's next run takes over
def compact_gauges() -> dict:
    """Fold the gauge deltas the triggers appended, so a scrape sums few rows."""
    return {"removed": gauges.compact()}
