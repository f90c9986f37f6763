"""Celery tasks of the assistance."""

from celery import shared_task

from assist import reclaim
from assist.selectors import enabled
from itportal.locks import single_run
from itportal.outages import skip_on_database_errors


@shared_task
@skip_on_database_errors("reclaim-candidates")  # every 10 min: beat's next run takes over
@single_run("reclaim-candidates")
def refresh_reclaim_candidates() -> dict:
    """Rank the candidates to reclaim and store the first ones the page shows."""
    if not enabled("anomalies"):
        return {"skipped": "switched off"}
    return {"stored": reclaim.refresh_stored()}
