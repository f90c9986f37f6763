"""Celery tasks of the request workflow: they take ids and call services.

Mail goes through the outbox of the notifications app (notifications/tasks.py).
"""

from celery import shared_task

from itportal.locks import single_run
from itportal.outages import RETRY_ON_DATABASE_ERRORS
from requests_app import services


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # hourly on workdays
@single_run("approvals-remind")
def approvals_remind_and_escalate() -> dict:
    return services.approvals_remind_and_escalate()


@shared_task(**RETRY_ON_DATABASE_ERRORS)  # hourly on workdays
@single_run("sla-warn")
def sla_warn_and_escalate() -> dict:
    from requests_app import sla

    # The calendar may have changed since the deadlines were fixed (another Land, a holiday
    # the holidays package learned): count them again first, then warn on the right ones.
    moved = sla.recompute_due_dates()
    counts = sla.sla_warn_and_escalate()  # three quarters (or the last days), and the breach
    response = {f"response_{k}": n for k, n in sla.response_warn_and_escalate().items()}
    return {**counts, "half_warned": sla.sla_warn_at_half(), "recomputed": moved, **response}
