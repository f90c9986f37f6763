"""Fulfilment deadlines: the item's SLA target in working days of the configured Land,
counted from the approval; a warning to the fulfilling group before the deadline and an
escalation to IT administration after it, each once, through the mail outbox."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from itportal.roles import IT_ADMIN
from itportal.workdays import add_working_days, working_days_between
from notifications import registry
from notifications import services as mail
from requests_app.choices import EventKind, RequestState

WARNING = "request.sla_warning"
BREACHED = "request.sla_breached"
OPEN = (RequestState.APPROVED, RequestState.IN_FULFILMENT)


def set_due_date(service_request) -> None:
    """Fix the deadline when the request is approved (called in that transaction)."""
    target = service_request.item_snapshot.get("sla_target_days")
    if not target:
        return
    approved = timezone.localdate(service_request.approved_at or timezone.now())
    service_request.fulfilment_due_on = add_working_days(approved, int(target))
    type(service_request).objects.filter(pk=service_request.pk).update(
        fulfilment_due_on=service_request.fulfilment_due_on
    )


def _group_and_assignee(service_request):
    users = get_user_model().objects.filter(is_active=True)
    return list(
        users.filter(
            Q(groups=service_request.fulfilment_group_id) | Q(pk=service_request.assignee_id)
        ).distinct()
    )


def _escalation_recipients(service_request):
    admins = get_user_model().objects.filter(is_active=True, groups__name=IT_ADMIN)
    return list({u.pk: u for u in [*admins, *_group_and_assignee(service_request)]}.values())


def sla_warn_and_escalate(*, now: datetime | None = None) -> dict[str, int]:
    """Warn before and escalate after the deadline; each once per request. Safe to rerun."""
    from requests_app.models import RequestEvent, ServiceRequest

    now = now or timezone.now()
    today = timezone.localdate(now)
    counts = {"warned": 0, "escalated": 0}
    due = ServiceRequest.objects.filter(state__in=OPEN, fulfilment_due_on__isnull=False)
    for request_id in due.filter(
        fulfilment_due_on__lt=today, sla_escalated_at__isnull=True
    ).values_list("pk", flat=True):
        with transaction.atomic():
            service_request = (
                ServiceRequest.objects.select_for_update(of=("self",))
                .filter(pk=request_id, state__in=OPEN, sla_escalated_at__isnull=True)
                .first()
            )
            if service_request is None:
                continue
            service_request.sla_escalated_at = now
            service_request.save(update_fields=["sla_escalated_at"])
            RequestEvent.objects.create(
                request=service_request,
                kind=EventKind.ESCALATE,
                from_state=service_request.state,
                to_state=service_request.state,
                comment=_("Fulfilment deadline %(date)s passed; IT administration informed.")
                % {"date": service_request.fulfilment_due_on.strftime("%d.%m.%Y")},
            )
            mail.mail_queue(
                kind=BREACHED,
                recipients=_escalation_recipients(service_request),
                params={"request_id": service_request.pk, "event": "sla_breached"},
            )
            counts["escalated"] += 1
    warn_days = settings.PORTAL_SLA_WARNING_WORKING_DAYS
    candidates = due.filter(fulfilment_due_on__gte=today, sla_warned_at__isnull=True).values_list(
        "pk", "fulfilment_due_on"
    )
    for request_id, due_on in candidates:
        if working_days_between(today, due_on) > warn_days:
            continue
        with transaction.atomic():
            service_request = (
                ServiceRequest.objects.select_for_update(of=("self",))
                .filter(pk=request_id, state__in=OPEN, sla_warned_at__isnull=True)
                .first()
            )
            if service_request is None:
                continue
            service_request.sla_warned_at = now
            service_request.save(update_fields=["sla_warned_at"])
            RequestEvent.objects.create(
                request=service_request,
                kind=EventKind.REMIND,
                from_state=service_request.state,
                to_state=service_request.state,
                comment=_("Fulfilment due on %(date)s: the fulfilling group was reminded.")
                % {"date": service_request.fulfilment_due_on.strftime("%d.%m.%Y")},
            )
            mail.mail_queue(
                kind=WARNING,
                recipients=_group_and_assignee(service_request),
                params={"request_id": service_request.pk, "event": "sla_warning"},
            )
            counts["warned"] += 1
    return counts


def register_mail_kinds() -> None:
    from requests_app.notifications import mail_context

    registry.register(
        registry.MailKind(WARNING, _("Request: fulfilment deadline near"), "mail/sla", mail_context)
    )
    registry.register(
        registry.MailKind(
            BREACHED, _("Request: fulfilment deadline passed"), "mail/sla", mail_context
        )
    )
