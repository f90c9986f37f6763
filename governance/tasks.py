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
