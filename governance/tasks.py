from celery import shared_task

from governance import services
from itportal.locks import single_run
from itportal.outages import RETRY_ON_DATABASE_ERRORS


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
