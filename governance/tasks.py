from celery import shared_task

from governance import services
from itportal.exceptions import ActionConflict
from itportal.locks import single_run
from itportal.outages import RETRY_ON_DATABASE_ERRORS, skip_on_database_errors


@shared_task(**RETRY_ON_DATABASE_ERRORS)
@single_run("governance.recertification")
def start_due_recertification():
    """Daily: start the periodic recertification when it is due (idempotent)."""
    campaign = services.start_due_campaign()
    return {"started": campaign.pk if campaign else None}


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # daily on working days
@single_run("governance.recertification-remind")
def recertification_remind_and_escalate():
    """Reminders before a stage's due date, escalation after it, the stage's close at the
    end of the escalation window (idempotent: each task reminded and escalated once)."""
    return services.campaigns_remind_and_escalate()


@shared_task(**RETRY_ON_DATABASE_ERRORS)
def scan_segregation_of_duties(holder_ids=None):
    """Hourly, after a rule changes and after a grant: refresh the holder report's findings
    (idempotent: reads the holdings, writes the difference)."""
    from governance import sod_services

    return sod_services.sod_scan(holder_ids=holder_ids)


@shared_task(**RETRY_ON_DATABASE_ERRORS)
@single_run("governance.group_nesting")
def refresh_group_nesting():
    """Daily: which directory groups are nested in which (for rules over groups). A
    directory that cannot be reached leaves the last known nesting and fails the run."""
    from governance import sod_services
    from provisioning.services import directory_configured

    if not directory_configured():
        return {}
    return sod_services.group_nesting_refresh()


@shared_task(**RETRY_ON_DATABASE_ERRORS)
@single_run("governance.sod-exceptions")
def sod_exceptions_remind_and_lapse():
    """Daily: remind whoever approved an exception before it expires (once per reminder),
    and let expired ones lapse (idempotent: each reminder recorded on its exception)."""
    from governance import sod_services

    return sod_services.sod_exceptions_remind_and_lapse()


@shared_task(acks_late=True, **RETRY_ON_DATABASE_ERRORS)
def close_recertification_stage(campaign_id: int, stage: int):
    """Close one stage asked for on the campaign page (idempotent: a stage closed already,
    by a redelivery or the daily run, is left as it is)."""
    try:
        campaign = services.campaign_stage_close(campaign_id=campaign_id, stage=stage)
    except ActionConflict:
        return {"skipped": "closed already"}
    return {"closed": stage, "state": campaign.state}


@shared_task
@skip_on_database_errors("governance.sweep_stage_closes")
@single_run("governance.sweep-stage-closes")
def sweep_stage_closes():
    """Every few minutes: wake the close of a stage whose wake-up was lost."""
    stalled = services.stalled_stage_closes()
    for campaign_id, stage in stalled:
        close_recertification_stage.delay(campaign_id=campaign_id, stage=stage)
    return {"woken": len(stalled)}
