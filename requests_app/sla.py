"""Service levels of a request: a response target (working hours) and a resolution target
(working days) per item, both counted from the approval, when the request enters the
fulfilment queue (the time waiting for approval is not counted).

- Response: the first human reaction (taken into fulfilment, a fulfiller's comment, put on
  hold) or the automation started; due ``response_target_hours`` of business hours on
  working days after the approval (``response_due_at``).
- Resolution: fulfilled by the end of ``fulfilment_due_on``, the item's target in working
  days of the Land after the day of approval, not before the day it is needed, moved by the
  working time the request was on hold (waiting for the requester or a supplier; the periods
  are rows, ``RequestHold``), and counted again when the calendar changes.
- Warnings to the fulfilling group at 50 % and 75 % of each target, the breach (to IT
  administration too) at 100 %; each once, through the mail outbox, with a timeline event.
  A request on hold gets no resolution warning: its clock stands still.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from itportal.roles import IT_ADMIN
from itportal.workdays import (
    add_working_days,
    add_working_seconds,
    business_hours,
    close_of_business,
    working_days_between,
    working_seconds_between,
)
from notifications import registry
from notifications import services as mail
from requests_app.choices import EventKind, RequestState

WARNING = "request.sla_warning"
BREACHED = "request.sla_breached"
RESPONSE_WARNING = "request.response_warning"
RESPONSE_BREACHED = "request.response_breached"
OPEN = (RequestState.APPROVED, RequestState.IN_FULFILMENT)


def _positive(value) -> int:
    try:
        value = int(value or 0)
    except (TypeError, ValueError):
        return 0
    return max(value, 0)


def working_day_seconds() -> int:
    opens, closes = business_hours()
    return (closes.hour * 60 + closes.minute - opens.hour * 60 - opens.minute) * 60


def due_on(approved_at, target, needed_from, paused_seconds: int = 0) -> date | None:
    """The resolution deadline: ``target`` working days of the Land after the day of
    approval, not before the day the service is needed (it is delivered for it), then moved
    by the paused working time: the due day becomes the day on which that working time,
    added after the close of the original due day, runs out (a started day counts)."""
    target = _positive(target)
    if target <= 0:
        return None
    due = add_working_days(timezone.localdate(approved_at or timezone.now()), target)
    if needed_from and needed_from > due:
        due = needed_from
    if paused_seconds > 0:
        due = timezone.localdate(add_working_seconds(close_of_business(due), paused_seconds))
    return due


def response_due_at(approved_at, target_hours) -> datetime | None:
    """The response deadline: ``target_hours`` of business hours on working days after the
    approval."""
    hours = _positive(target_hours)
    if hours <= 0 or approved_at is None:
        return None
    return add_working_seconds(approved_at, hours * 3600)


def paused_seconds(holds, *, since=None) -> int:
    """Working seconds of the finished ``holds`` (rows or (started, ended) pairs) after
    ``since`` (the approval: the clock starts there)."""
    total = 0
    for hold in holds:
        started, ended = hold if isinstance(hold, tuple) else (hold.started_at, hold.ended_at)
        if ended is None:
            continue
        if since is not None and started < since:
            started = since
        total += working_seconds_between(started, ended)
    return total


def set_due_date(service_request) -> None:
    """Fix both deadlines when the request is approved (called in that transaction)."""
    snapshot = service_request.item_snapshot
    due = due_on(
        service_request.approved_at,
        snapshot.get("sla_target_days"),
        service_request.needed_from,
        service_request.sla_paused_seconds,
    )
    respond_by = response_due_at(service_request.approved_at, snapshot.get("response_target_hours"))
    if due is None and respond_by is None:
        return
    service_request.fulfilment_due_on = due
    service_request.response_due_at = respond_by
    type(service_request).objects.filter(pk=service_request.pk).update(
        fulfilment_due_on=due, response_due_at=respond_by
    )


def holds_ended(service_request) -> None:
    """After a hold ended: the paused working time counted from the rows and the due date
    moved by it (the caller saves the two fields)."""
    service_request.sla_paused_seconds = paused_seconds(
        service_request.holds.all(), since=service_request.approved_at
    )
    service_request.fulfilment_due_on = due_on(
        service_request.approved_at,
        service_request.item_snapshot.get("sla_target_days"),
        service_request.needed_from,
        service_request.sla_paused_seconds,
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


def _mark_once(
    request_id, *, stamp: str, now, event_kind, comment, mail_kind, recipients, condition=None
):
    """In one transaction: stamp the request (once), write its timeline event and queue
    the mail (outbox). False when another run or a change (state, hold, response) got there
    first: ``condition`` is checked again under the row lock."""
    from requests_app.models import RequestEvent, ServiceRequest

    with transaction.atomic():
        service_request = (
            ServiceRequest.objects.select_for_update(of=("self",))
            .filter(pk=request_id, state__in=OPEN, **{f"{stamp}__isnull": True})
            .filter(condition or Q())
            .first()
        )
        if service_request is None:
            return False
        setattr(service_request, stamp, now)
        service_request.save(update_fields=[stamp])
        local = timezone.localtime(service_request.response_due_at or now)
        RequestEvent.objects.create(
            request=service_request,
            kind=event_kind,
            from_state=service_request.state,
            to_state=service_request.state,
            comment=comment
            % {
                "date": (service_request.fulfilment_due_on or local.date()).strftime("%d.%m.%Y"),
                "time": local.strftime("%d.%m.%Y %H:%M"),
            },
        )
        mail.mail_queue(
            kind=mail_kind,
            recipients=recipients(service_request),
            params={"request_id": service_request.pk, "event": mail_kind.split(".")[-1]},
        )
    return True


def recompute_due_dates() -> int:
    """Due dates of open requests counted again with today's calendar: a changed Land
    (PORTAL_HOLIDAY_SUBDIVISION), changed business hours or a holiday added by an update of
    the holidays package moves them, and the paused working time of their holds with them.
    Reads only the open requests with a due date (their partial index), the targets out of
    the snapshot and the finished holds of those requests (one query); writes only what
    moved. Returns how many moved."""
    from django.db.models.fields.json import KT

    from requests_app.models import RequestHold, ServiceRequest

    rows = list(
        ServiceRequest.objects.filter(state__in=OPEN)
        .filter(Q(fulfilment_due_on__isnull=False) | Q(response_due_at__isnull=False))
        .annotate(
            target=KT("item_snapshot__sla_target_days"),
            hours=KT("item_snapshot__response_target_hours"),
        )
        .values_list(
            "pk",
            "approved_at",
            "target",
            "hours",
            "needed_from",
            "fulfilment_due_on",
            "response_due_at",
            "sla_paused_seconds",
        )
    )
    holds: dict[int, list] = {}
    with_pauses = [row[0] for row in rows if row[7]]
    for request_id, started, ended in RequestHold.objects.filter(
        request__in=with_pauses, ended_at__isnull=False
    ).values_list("request_id", "started_at", "ended_at"):
        holds.setdefault(request_id, []).append((started, ended))
    moved = 0
    for pk, approved_at, target, hours, needed_from, current, respond_by, before in rows:
        paused = paused_seconds(holds.get(pk, ()), since=approved_at) if before else 0
        due = due_on(approved_at, target, needed_from, paused)
        response = response_due_at(approved_at, hours)
        if (due, response, paused) != (current, respond_by, before) and (due or response):
            moved += ServiceRequest.objects.filter(
                pk=pk, state__in=OPEN, fulfilment_due_on=current, response_due_at=respond_by
            ).update(fulfilment_due_on=due, response_due_at=response, sla_paused_seconds=paused)
    return moved


def used_share(approved_at, due: date, today: date, paused: int = 0) -> float:
    """Share of the resolution target used: working days from the day of approval to today
    against those to the due day, both less the paused working time (in working days)."""
    start = timezone.localdate(approved_at) if approved_at else today
    paused_days = paused / working_day_seconds() if paused else 0.0
    window = working_days_between(start, due) - paused_days
    if window <= 0:
        return 1.0
    return (working_days_between(start, today) - paused_days) / window


def response_share(approved_at, respond_by: datetime, now: datetime) -> float:
    """Share of the response target used, in business hours."""
    window = working_seconds_between(approved_at, respond_by)
    if window <= 0:
        return 1.0
    return working_seconds_between(approved_at, now) / window


NOT_ON_HOLD = Q(hold_reason="")


def sla_warn_at_half(*, now: datetime | None = None) -> int:
    """The first resolution warning, once half of the target is used (the second comes at
    three quarters, the escalation after the due day)."""
    from requests_app.models import ServiceRequest

    now = now or timezone.now()
    today = timezone.localdate(now)
    warned = 0
    coming = ServiceRequest.objects.filter(
        NOT_ON_HOLD,
        state__in=OPEN,
        fulfilment_due_on__isnull=False,
        fulfilment_due_on__gte=today,
        sla_half_warned_at__isnull=True,
        sla_warned_at__isnull=True,  # the later warning went out already: no earlier one
    )
    for request_id, due, approved_at, paused in coming.values_list(
        "pk", "fulfilment_due_on", "approved_at", "sla_paused_seconds"
    ):
        if used_share(approved_at, due, today, paused) < 0.5:
            continue
        warned += _mark_once(
            request_id,
            stamp="sla_half_warned_at",
            now=now,
            event_kind=EventKind.REMIND,
            comment=_("Half of the time to the fulfilment deadline %(date)s is used."),
            mail_kind=WARNING,
            recipients=_group_and_assignee,
            condition=NOT_ON_HOLD,
        )
    return warned


def sla_warn_and_escalate(*, now: datetime | None = None) -> dict[str, int]:
    """The resolution warning at three quarters (or PORTAL_SLA_WARNING_WORKING_DAYS before
    the due day) and the escalation after the due day; each once per request; nothing while
    on hold. Safe to rerun."""
    from requests_app.models import ServiceRequest

    now = now or timezone.now()
    today = timezone.localdate(now)
    counts = {"warned": 0, "escalated": 0}
    due = ServiceRequest.objects.filter(
        NOT_ON_HOLD, state__in=OPEN, fulfilment_due_on__isnull=False
    )
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
            condition=NOT_ON_HOLD & Q(fulfilment_due_on__lt=today),
        )
    warn_days = settings.PORTAL_SLA_WARNING_WORKING_DAYS
    coming = due.filter(fulfilment_due_on__gte=today, sla_warned_at__isnull=True)
    for request_id, due_day, approved_at, paused in coming.values_list(
        "pk", "fulfilment_due_on", "approved_at", "sla_paused_seconds"
    ):
        near = warn_days > 0 and working_days_between(today, due_day) <= warn_days
        if not near and used_share(approved_at, due_day, today, paused) < 0.75:
            continue
        counts["warned"] += _mark_once(
            request_id,
            stamp="sla_warned_at",
            now=now,
            event_kind=EventKind.REMIND,
            comment=_("Fulfilment due on %(date)s: the fulfilling group was reminded."),
            mail_kind=WARNING,
            recipients=_group_and_assignee,
            condition=NOT_ON_HOLD,
        )
    return counts


def response_warn_and_escalate(*, now: datetime | None = None) -> dict[str, int]:
    """Requests nobody has reacted to: warnings at 50 % and 75 % of the response target,
    the breach at 100 %; each once per request. Safe to rerun."""
    from requests_app.models import ServiceRequest

    now = now or timezone.now()
    counts = {"half_warned": 0, "warned": 0, "breached": 0}
    waiting = ServiceRequest.objects.filter(
        state__in=OPEN,
        response_due_at__isnull=False,
        responded_at__isnull=True,
        response_breached_at__isnull=True,
    )
    # Per step: its stamp, timeline event, comment, mail and recipients.
    steps = {
        "breached": (
            "response_breached_at",
            EventKind.ESCALATE,
            _("No response by %(time)s; IT administration informed."),
            RESPONSE_BREACHED,
            _escalation_recipients,
        ),
        "warned": (
            "response_warned_at",
            EventKind.REMIND,
            _("Three quarters of the response time are used: response due %(time)s."),
            RESPONSE_WARNING,
            _group_and_assignee,
        ),
        "half_warned": (
            "response_half_warned_at",
            EventKind.REMIND,
            _("Half of the response time is used: response due %(time)s."),
            RESPONSE_WARNING,
            _group_and_assignee,
        ),
    }
    for request_id, approved_at, respond_by, half, warned in waiting.values_list(
        "pk", "approved_at", "response_due_at", "response_half_warned_at", "response_warned_at"
    ):
        share = 1.0 if now >= respond_by else response_share(approved_at, respond_by, now)
        if share >= 1.0:
            step = "breached"
        elif share >= 0.75 and warned is None:
            step = "warned"
        elif share >= 0.5 and half is None and warned is None:
            step = "half_warned"
        else:
            continue
        stamp, event_kind, comment, mail_kind, recipients = steps[step]
        counts[step] += _mark_once(
            request_id,
            stamp=stamp,
            now=now,
            event_kind=event_kind,
            comment=comment,
            mail_kind=mail_kind,
            recipients=recipients,
            condition=Q(responded_at__isnull=True),
        )
    return counts


def register_mail_kinds() -> None:
    from requests_app.notifications import mail_context

    for kind, label, template in (
        (WARNING, _("Request: fulfilment deadline near"), "mail/sla"),
        (BREACHED, _("Request: fulfilment deadline passed"), "mail/sla"),
        (RESPONSE_WARNING, _("Request: response time running out"), "mail/sla_response"),
        (RESPONSE_BREACHED, _("Request: response time passed"), "mail/sla_response"),
    ):
        registry.register(registry.MailKind(kind, label, template, mail_context))
