"""Fulfilment deadlines: the item's SLA target in working days of the configured Land,
counted from the approval (and counted again when the calendar changes); a warning to the
fulfilling group before the deadline and an escalation to IT administration after it, each
once, through the mail outbox."""

from __future__ import annotations

from datetime import date, datetime

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


def due_on(approved_at, target, needed_from) -> date | None:
    """The deadline: ``target`` working days of the Land after the day of approval, not
    before the day the service is needed (it is delivered for it)."""
    try:
        target = int(target or 0)
    except (TypeError, ValueError):
        return None
    if target <= 0:
        return None
    due = add_working_days(timezone.localdate(approved_at or timezone.now()), target)
    if needed_from and needed_from > due:
        due = needed_from
    return due


def set_due_date(service_request) -> None:
    """Fix the deadline when the request is approved (called in that transaction)."""
    due = due_on(
        service_request.approved_at,
        service_request.item_snapshot.get("sla_target_days"),
        service_request.needed_from,
    )
    if due is None:
        return
    service_request.fulfilment_due_on = due
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


def _mark_once(request_id, *, stamp: str, now, event_kind, comment, mail_kind, recipients):
    """In one transaction: stamp the request (once), write its timeline event and queue
    the mail (outbox). False when another run or a state change got there first."""
    from requests_app.models import RequestEvent, ServiceRequest

    with transaction.atomic():
        service_request = (
            ServiceRequest.objects.select_for_update(of=("self",))
            .filter(pk=request_id, state__in=OPEN, **{f"{stamp}__isnull": True})
            .first()
        )
        if service_request is None:
            return False
        setattr(service_request, stamp, now)
        service_request.save(update_fields=[stamp])
        RequestEvent.objects.create(
            request=service_request,
            kind=event_kind,
            from_state=service_request.state,
            to_state=service_request.state,
            comment=comment % {"date": service_request.fulfilment_due_on.strftime("%d.%m.%Y")},
        )
        mail.mail_queue(
            kind=mail_kind,
            recipients=recipients(service_request),
            params={"request_id": service_request.pk, "event": mail_kind.split(".")[-1]},
        )
    return True


def recompute_due_dates() -> int:
    """Due dates of open requests counted again with today's calendar: a changed Land
    (PORTAL_HOLIDAY_SUBDIVISION) or a holiday added by an update of the holidays package
    moves them. Reads only the open requests with a due date (their partial index) and the
    target out of the snapshot; writes only what moved. Returns how many moved."""
    from django.db.models.fields.json import KT

    from requests_app.models import ServiceRequest

    rows = (
        ServiceRequest.objects.filter(state__in=OPEN, fulfilment_due_on__isnull=False)
        .annotate(target=KT("item_snapshot__sla_target_days"))
        .values_list("pk", "approved_at", "target", "needed_from", "fulfilment_due_on")
    )
    moved = 0
    for pk, approved_at, target, needed_from, current in rows.iterator(chunk_size=2000):
        due = due_on(approved_at, target, needed_from)
        if due is not None and due != current:
            moved += ServiceRequest.objects.filter(
                pk=pk, state__in=OPEN, fulfilment_due_on=current
            ).update(fulfilment_due_on=due)
    return moved


def used_share(approved_at, due: date, today: date) -> float:
    """Share of the working days from approval to the deadline that have passed."""
    start = timezone.localdate(approved_at) if approved_at else today
    window = working_days_between(start, due)
    if window <= 0:
        return 1.0
    return working_days_between(start, today) / window


def sla_warn_at_half(*, now: datetime | None = None) -> int:
    """The first warning, once half of the time to the deadline is used (the second comes
    at three quarters or the configured working days before it, the escalation after it)."""
    from requests_app.models import ServiceRequest

    now = now or timezone.now()
    today = timezone.localdate(now)
    warned = 0
    coming = ServiceRequest.objects.filter(
        state__in=OPEN,
        fulfilment_due_on__isnull=False,
        fulfilment_due_on__gte=today,
        sla_half_warned_at__isnull=True,
        sla_warned_at__isnull=True,  # the later warning went out already: no earlier one
    )
    for request_id, due_on, approved_at in coming.values_list(
        "pk", "fulfilment_due_on", "approved_at"
    ):
        if used_share(approved_at, due_on, today) < 0.5:
            continue
        warned += _mark_once(
            request_id,
            stamp="sla_half_warned_at",
            now=now,
            event_kind=EventKind.REMIND,
            comment=_("Half of the time to the fulfilment deadline %(date)s is used."),
            mail_kind=WARNING,
            recipients=_group_and_assignee,
        )
    return warned


def sla_warn_and_escalate(*, now: datetime | None = None) -> dict[str, int]:
    """Warn before and escalate after the deadline; each once per request. Safe to rerun."""
    from requests_app.models import ServiceRequest

    now = now or timezone.now()
    today = timezone.localdate(now)
    counts = {"warned": 0, "escalated": 0}
    due = ServiceRequest.objects.filter(state__in=OPEN, fulfilment_due_on__isnull=False)
    overdue = due.filter(fulfilment_due_on__lt=today, sla_escalated_at__isnull=True)
    for request_id in overdue.values_list("pk", flat=True):
        counts["escalated"] += _mark_once(
            request_id,
            stamp="sla_escalated_at",
            now=now,
            event_kind=EventKind.ESCALATE,
            comment=_("Fulfilment deadline %(date)s passed; IT administration informed."),
            mail_kind=BREACHED,
            recipients=_escalation_recipients,
        )
    warn_days = settings.PORTAL_SLA_WARNING_WORKING_DAYS
    coming = due.filter(fulfilment_due_on__gte=today, sla_warned_at__isnull=True)
    for request_id, due_on, approved_at in coming.values_list(
        "pk", "fulfilment_due_on", "approved_at"
    ):
        near = working_days_between(today, due_on) <= warn_days
        if not near and used_share(approved_at, due_on, today) < 0.75:
            continue
        counts["warned"] += _mark_once(
            request_id,
            stamp="sla_warned_at",
            now=now,
            event_kind=EventKind.REMIND,
            comment=_("Fulfilment due on %(date)s: the fulfilling group was reminded."),
            mail_kind=WARNING,
            recipients=_group_and_assignee,
        )
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
