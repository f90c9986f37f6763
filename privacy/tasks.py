"""Celery tasks of privacy: the nightly retention run (beat "privacy-retention")."""

from celery import shared_task

from itportal.locks import single_run
from itportal.outages import RETRY_ON_DATABASE_ERRORS
from privacy import retention
from runs.progress import track


@shared_task(soft_time_limit=3600, time_limit=3900, **RETRY_ON_DATABASE_ERRORS)  # nightly
@single_run("retention")
def apply_retention() -> dict:
    # Every batch commits on its own: a run cut off by the time limit leaves finished
    # batches done, and the next night goes on from there.
    with track("retention", unit="rows", stream=None) as run:
        counts = retention.retention_apply(progress=run)
        run.outcome = retention.summary(counts)
    return counts
