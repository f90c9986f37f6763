"""Celery tasks of the request workflow: they take ids and call services."""

import smtplib

from celery import shared_task

from requests_app import notifications, services
from requests_app.models import ServiceRequest

TRANSIENT_MAIL_ERRORS = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,
    TimeoutError,
)


@shared_task(
    autoretry_for=TRANSIENT_MAIL_ERRORS,
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
)
def send_request_notification(request_id: int, event: str) -> int:
    if event not in notifications.EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    service_request = (
        ServiceRequest.objects.select_related("item", "beneficiary__user", "requester")
        .filter(pk=request_id)
        .first()
    )
    if service_request is None:
        return 0
    return notifications.send(service_request, event)


@shared_task
def approvals_remind_and_escalate() -> dict:
    return services.approvals_remind_and_escalate()
