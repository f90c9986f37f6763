"""E-mail to whoever must act next and to the requester on decisions.

Services call :func:`notify` inside the transaction of the change: it writes one row per
recipient into the mail outbox (notifications app), which a worker sends after commit.
The mail is rendered when it is sent, from ``templates/mail/request/`` in the recipient's
language; :func:`mail_context` gives the templates the request.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications import services as mail
from requests_app import fulfilment

SUBMITTED = "submitted"
APPROVAL_NEEDED = "approval_needed"
REMINDER = "reminder"
APPROVED = "approved"
REJECTED = "rejected"
CANCELLED = "cancelled"
FULFILLED = "fulfilled"
FAILED = "failed"
ON_HOLD = "on_hold"
# The labels name the kinds of mail on "Postausgang".
EVENTS = {
    SUBMITTED: _("Request submitted"),
    APPROVAL_NEEDED: _("Request: approval needed"),
    REMINDER: _("Request: reminder to decide"),
    APPROVED: _("Request approved"),
    REJECTED: _("Request rejected"),
    CANCELLED: _("Request cancelled"),
    FULFILLED: _("Request fulfilled"),
    FAILED: _("Request failed"),
    ON_HOLD: _("Request: waiting for the requester"),
}
KIND_PREFIX = "request."


def notify(service_request, event: str) -> None:
    """Queue the mails of one event; call inside the transaction of the change."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    recipients = recipients_for(service_request, event)
    mail_to = None
    if event == SUBMITTED:
        # The confirmation goes by mail to whoever ordered; a colleague ordered for finds
        # it in the portal.
        mail_to = [user for user in recipients if user.pk == service_request.requester_id]
    mail.mail_queue(
        kind=KIND_PREFIX + event,
        recipients=recipients,
        params={"request_id": service_request.pk, "event": event},
        mail_to=mail_to,
    )


def notify_many(service_requests, event: str) -> None:
    """``notify`` for many requests and one event (requests fulfilled together): the people
    concerned from the rows or in one query (``_people_of``), their languages in one, each
    request's context from the row in hand, the notifications and mails in one INSERT each.
    Events whose recipients are approvers or a fulfilling group go one by one."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    service_requests = list(service_requests)
    if not service_requests:
        return
    if event in (APPROVAL_NEEDED, REMINDER, APPROVED):
        for service_request in service_requests:
            notify(service_request, event)
        return
    by_pk, by_employee = _people_of(service_requests)
    mailings = []
    for service_request in service_requests:
        concerned = [by_pk.get(service_request.requester_id)]
        concerned.append(by_employee.get(service_request.beneficiary_id))
        recipients = list({user.pk: user for user in concerned if user is not None}.values())
        mailings.append(
            mail.Mailing(
                recipients=recipients,
                params={"request_id": service_request.pk, "event": event},
                # The confirmation of an order goes by mail to whoever ordered (as notify).
                mail_to=[u for u in recipients if u.pk == service_request.requester_id]
                if event == SUBMITTED
                else None,
                context=lambda user, r=service_request: request_context(r, event, user),
            )
        )
    mail.mails_queue(kind=KIND_PREFIX + event, mailings=mailings)


def _people_of(service_requests) -> tuple[dict, dict]:
    """The active users concerned (requesters, and the beneficiaries' users), by user id and
    by employee id: from the rows when they carry them (a provisioning batch selects them
    with its requests, 100 users per batch), otherwise in one query."""
    requester = type(service_requests[0]).requester
    beneficiary = type(service_requests[0]).beneficiary
    if all(
        requester.is_cached(r)
        and beneficiary.is_cached(r)
        and type(r.beneficiary).user.is_cached(r.beneficiary)
        for r in service_requests
    ):
        by_pk, by_employee = {}, {}
        for r in service_requests:
            for user in (r.requester, r.beneficiary.user):
                if user.is_active:
                    by_pk.setdefault(user.pk, user)
            if r.beneficiary.user.is_active:
                by_employee.setdefault(r.beneficiary_id, by_pk[r.beneficiary.user_id])
        return by_pk, by_employee
    users = list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(pk__in={r.requester_id for r in service_requests})
            | Q(employee__in={r.beneficiary_id for r in service_requests})
        )
        .annotate(employee_pk=F("employee"))
    )
    by_pk = {user.pk: user for user in users}
    return by_pk, {user.employee_pk: user for user in users if user.employee_pk is not None}


def mail_context(params: dict, recipient) -> dict | None:
    """What the request templates need, read when the mail is sent."""
    from requests_app.models import ServiceRequest

    service_request = (
        ServiceRequest.objects.select_related(
            "item", "beneficiary__user", "requester", "fulfilment_group"
        )
        .filter(pk=params.get("request_id"))
        .first()
    )
    if service_request is None:
        return None
    return request_context(service_request, params.get("event"), recipient)


def request_context(service_request, event: str, recipient) -> dict:
    """The request templates' context for one recipient, from the request in hand."""
    return {
        "request": service_request,
        "event": event,
        "url": settings.PORTAL_BASE_URL.rstrip("/") + service_request.get_absolute_url(),
        # Who reads it decides what it asks: the fulfilling group is asked to act, the people
        # the request is for are told what happens next.
        "to_fulfil": event == APPROVED
        and recipient is not None
        and recipient.pk != service_request.requester_id
        and service_request.beneficiary.user_id != recipient.pk,
        "reason": _rejection_reason(service_request)
        if event == REJECTED
        else _hold_note(service_request)
        if event == ON_HOLD
        else "",
        # The next step after an approval: an automation sets it up (maybe on a later day
        # it is needed from), or a group fulfils it.
        "automated": event == APPROVED and fulfilment.is_automated(service_request),
        "scheduled": bool(
            service_request.needed_from and service_request.needed_from > timezone.localdate()
        ),
    }


def _hold_note(service_request) -> str:
    return (
        service_request.holds.filter(ended_at__isnull=True).values_list("note", flat=True).first()
        or ""
    )


def _rejection_reason(service_request) -> str:
    from requests_app.choices import ApprovalStatus
    from requests_app.models import Approval

    return (
        Approval.objects.filter(request=service_request, status=ApprovalStatus.REJECTED)
        .order_by("-decided_at")
        .values_list("comment", flat=True)
        .first()
        or ""
    )


SUBMISSION_PLACED = "submission.placed"


def notify_submission(submission) -> None:
    """One confirmation of a joint order (cart, bundle) to its requester, in its transaction."""
    mail.mail_queue(
        kind=SUBMISSION_PLACED,
        recipients=[submission.requester],
        params={"submission_id": submission.pk},
    )


def submission_mail_context(params: dict, recipient) -> dict | None:
    from requests_app.models import Submission

    submission = Submission.objects.filter(pk=params.get("submission_id")).first()
    if submission is None:
        return None
    requests = submission.requests.select_related("item", "beneficiary").order_by("id")
    return {
        "submission": submission,
        "requests": list(requests),
        "url": settings.PORTAL_BASE_URL.rstrip("/") + submission.get_absolute_url(),
    }


TASK_OPENED = "task.opened"


def notify_task(task) -> None:
    """A task for the group (collect a leaver's device): its members, in the transaction."""
    members = get_user_model().objects.filter(is_active=True, groups=task.fulfilment_group_id)
    mail.mail_queue(kind=TASK_OPENED, recipients=members, params={"task_id": task.pk})


def task_mail_context(params: dict, recipient) -> dict | None:
    from django.urls import reverse

    from requests_app.models import FulfilmentTask

    task = (
        FulfilmentTask.objects.select_related("request", "person__user")
        .filter(pk=params.get("task_id"))
        .first()
    )
    if task is None:
        return None
    return {
        "task": task,
        "url": settings.PORTAL_BASE_URL.rstrip("/") + reverse("requests:queue") + "#tasks",
    }


def register_mail_kinds() -> None:
    registry.register(
        registry.MailKind(
            name=TASK_OPENED,
            label=_("Task for the fulfilling group"),
            templates="mail/task",
            context=task_mail_context,
        )
    )
    registry.register(
        registry.MailKind(
            name=SUBMISSION_PLACED,
            label=_("Joint order placed"),
            templates="mail/submission",
            context=submission_mail_context,
        )
    )
    for event, label in EVENTS.items():
        registry.register(
            registry.MailKind(
                name=KIND_PREFIX + event,
                label=label,
                templates="mail/request",
                context=mail_context,
            )
        )


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
