"""Celery tasks of provisioning: they take ids, call services, retry only transient errors."""

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections

from itportal import outbox
from itportal.locks import single_run
from itportal.outages import DATABASE_ERRORS, RETRY_ON_DATABASE_ERRORS, skip_on_database_errors
from provisioning import services
from runs.progress import track


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker's job is delivered again (it is idempotent)
    soft_time_limit=60,
    time_limit=90,
    max_retries=None,  # the job row counts attempts; see PROVISIONING_MAX_ATTEMPTS
)
def run_provisioning_job(self, job_id: int, reclaim: bool = False) -> None:
    try:
        outcome = services.job_run(job_id=job_id, reclaim=reclaim)
    except DATABASE_ERRORS as exc:
        # The database restarts: drop the broken connection and try again with backoff.
        # reclaim: the job may be marked running by this very attempt (its lease is ours).
        close_old_connections()
        countdown = outbox.backoff_seconds(self.request.retries + 1, base=2, cap=60)
        raise self.retry(
            args=(job_id,), kwargs={"reclaim": True}, countdown=countdown, exc=exc
        ) from exc
    if outcome is not None:
        raise self.retry(args=(job_id,), kwargs={}, countdown=outcome.countdown)


@shared_task
@skip_on_database_errors("provisioning-sweep")  # every 30 s: beat's next run takes over
@single_run("provisioning-sweep")
def sweep_provisioning_jobs() -> dict:
    return services.pipeline_sweep()


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # daily
@single_run("entitlements-expire")
def expire_entitlements() -> dict:
    from provisioning import entitlements

    return entitlements.expire_due(notice_days=settings.PROVISIONING_EXPIRY_NOTICE_DAYS)


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # daily
@single_run("movers-review")
def review_movers() -> dict:
    from provisioning import movers

    return movers.movers_sweep()


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # every 15 min, and the full one daily
@single_run("directory-sync")  # full and incremental alike
def sync_directory(full: bool = False) -> dict:
    from provisioning.sync import sync_people

    if not services.directory_configured():
        return {}
    name = "directory-sync" + ("" if full else "-incremental")
    with track(name, unit="entries", stream=None) as progress:
        counts = sync_people(full=full, progress=progress.update).counts
        progress.outcome = ", ".join(f"{k} {v}" for k, v in counts.items())
    return counts


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # daily
@single_run("directory-reconcile")
def reconcile_directory() -> dict:
    from provisioning.reconcile import reconcile

    if not services.directory_configured():
        return {}
    with track("directory-reconcile", unit="findings", stream=None) as progress:
        counts = reconcile().counts
        progress.outcome = ", ".join(f"{k} {v}" for k, v in counts.items())
    return counts
