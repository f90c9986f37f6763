"""E-mail to whoever must act next and to the requester on decisions.

Services call :func:`enqueue` from ``transaction.on_commit``; the Celery task
loads the request by id and sends. Mail is never sent inside a transition.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from requests_app import fulfilment

APPROVAL_NEEDED = "approval_needed"
REMINDER = "reminder"
APPROVED = "approved"
REJECTED = "rejected"
CANCELLED = "cancelled"
FULFILLED = "fulfilled"
FAILED = "failed"
EVENTS = {APPROVAL_NEEDED, REMINDER, APPROVED, REJECTED, CANCELLED, FULFILLED, FAILED}


def enqueue(request_id: int, event: str) -> None:
    from requests_app.tasks import send_request_notification

    send_request_notification.delay(request_id, event)


def _approver_recipients(service_request):
    """Current approver(s) of the pending step, plus their substitutes of today."""
    from requests_app import permissions

    approval = permissions.current_approval(service_request)
    if approval is None:
        return []
    users = get_user_model().objects.filter(is_active=True)
    if approval.approver_id:
        principals = users.filter(pk=approval.approver_id)
    else:
        principals = users.filter(groups=approval.group_id)
    excluded = permissions.excluded_user_ids(service_request)
    principals = principals.exclude(pk__in=excluded)
    today = timezone.localdate()
    substitutes = users.filter(
        substitutions_taken__principal__in=principals,
        substitutions_taken__starts_on__lte=today,
        substitutions_taken__ends_on__gte=today,
    ).exclude(pk__in=excluded)
    return list(principals.union(substitutes))


def recipients_for(service_request, event: str):
    users = get_user_model().objects.filter(is_active=True)
    if event in (APPROVAL_NEEDED, REMINDER):
        return _approver_recipients(service_request)
    if event == APPROVED and fulfilment.needs_manual_fulfilment(service_request):
        group_members = users.filter(groups=service_request.fulfilment_group_id)
        return list(group_members) + _people_concerned(service_request)
    return _people_concerned(service_request)


def _people_concerned(service_request):
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(pk=service_request.requester_id) | Q(employee=service_request.beneficiary_id))
        .distinct()
    )


def send(service_request, event: str) -> int:
    """Send the mails for one event; returns the number of messages."""
    recipients = [u for u in recipients_for(service_request, event) if u.email]
    if not recipients:
        return 0
    url = settings.PORTAL_BASE_URL.rstrip("/") + service_request.get_absolute_url()
    messages = []
    with translation.override(settings.LANGUAGE_CODE):
        for user in {u.pk: u for u in recipients}.values():
            context = {
                "request": service_request,
                "event": event,
                "user": user,
                "url": url,
                "city": settings.PORTAL_CITY_NAME,
            }
            subject = render_to_string("mail/subject.txt", context).strip()
            body = render_to_string("mail/body.txt", context)
            messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]))
    send_mass_mail(messages, fail_silently=False)
    return len(messages)
