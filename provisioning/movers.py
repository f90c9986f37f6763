"""Movers: a person who changed department or line manager keeps their access only if the
new line manager confirms it within PORTAL_MOVER_REVIEW_WORKING_DAYS working days (ORP.4.A2).

The directory sync flags the access (``flag_mover``) and tells the new manager; the manager
decides on "Zugriffe prüfen" (governance's review page), which clears the flag. Once a day
``movers_sweep`` reminds managers whose review is due within
PORTAL_MOVER_REMINDER_WORKING_DAYS (once), and removes what is still undecided after the due
day through the usual revocation (directory jobs, or a task for the group by hand).
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from itportal.workdays import add_working_days, working_days_between
from notifications import registry
from notifications import services as mail
from provisioning import services
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement

MOVER_REVIEW = "provisioning.mover_review"


def flagged() -> Q:
    return Q(state=EntitlementState.ACTIVE, review_due_on__isnull=False) & ~Q(review_note="")


def review_done(entitlement_ids) -> int:
    """Mark the mover's review of these accesses decided: the note, the due date and the
    reminder stamp go, so no later sweep reminds of or removes them, and a later move starts
    afresh. Returns how many were still flagged."""
    return (
        Entitlement.objects.filter(pk__in=entitlement_ids)
        .exclude(review_note="", review_due_on__isnull=True)
        .update(review_note="", review_due_on=None, review_reminded_at=None)
    )


def flag_mover(employee, *, note: str, old_department=None, today: date | None = None) -> int:
    """Flag the person's active access for review by their (new) line manager; returns how
    many. Access ordered for or charged to the department they left is marked as such."""
    today = today or timezone.localdate()
    due = add_working_days(today, settings.PORTAL_MOVER_REVIEW_WORKING_DAYS)
    held = Entitlement.objects.filter(holder=employee, state=EntitlementState.ACTIVE)
    count = held.update(
        review_note=note[:300], review_due_on=due, review_reminded_at=None,
        review_old_department=False,
    )  # fmt: skip
    if old_department is not None and count:
        held.filter(
            Q(item__allowed_departments=old_department)
            | Q(request__cost_centre_id=old_department.cost_centre_id)
        ).update(review_old_department=True)
    return count


def notify_manager(employee, *, event: str = "requested") -> None:
    """Ask the person's line manager to review (or remind them); inside the transaction."""
    manager = employee.manager
    if manager is None or not (manager.is_active and manager.user.is_active):
        return  # IT administration sees the run report; nobody else can decide
    mail.mail_queue(
        kind=MOVER_REVIEW,
        recipients=[manager.user],
        params={"employee_id": employee.pk, "event": event},
    )


def movers_sweep(*, today: date | None = None) -> dict[str, int]:
    """Remind once before the due day; remove what is undecided after it. Safe to rerun."""
    from catalogue.models import Employee

    today = today or timezone.localdate()
    counts = {"reminded": 0, "removed": 0}
    remind_within = settings.PORTAL_MOVER_REMINDER_WORKING_DAYS
    pending = Entitlement.objects.filter(flagged())
    soon = pending.filter(review_due_on__gte=today, review_reminded_at__isnull=True)
    holders = {}
    for holder_id, due in soon.values_list("holder_id", "review_due_on"):
        if working_days_between(today, due) <= remind_within:
            holders.setdefault(holder_id, due)
    for employee in Employee.objects.filter(pk__in=list(holders)).select_related("manager__user"):
        with transaction.atomic():
            marked = (
                Entitlement.objects.filter(flagged(), holder=employee)
                .filter(review_reminded_at__isnull=True)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)
            )
            ids = list(marked)
            if not ids:
                continue  # another run got there first
            Entitlement.objects.filter(pk__in=ids).update(review_reminded_at=timezone.now())
            notify_manager(employee, event="reminder")
            counts["reminded"] += 1
    overdue = pending.filter(review_due_on__lt=today).values_list("pk", "review_due_on")
    for entitlement_id, due in list(overdue):
        with translation.override(settings.LANGUAGE_CODE):
            reason = _(
                "Not confirmed by the new line manager by %(date)s after a change of "
                "department or manager."
            ) % {"date": due.strftime("%d.%m.%Y")}
        with transaction.atomic():
            still = (
                Entitlement.objects.select_for_update()
                .filter(flagged(), pk=entitlement_id, review_due_on__lt=today)
                .exists()
            )
            if not still:
                continue  # decided meanwhile
            review_done([entitlement_id])
            services.entitlement_revoke(entitlement_id=entitlement_id, user=None, reason=reason)
            counts["removed"] += 1
    return counts


def _context(params: dict, recipient) -> dict | None:
    from django.urls import reverse

    from catalogue.models import Employee

    employee = Employee.objects.select_related("user").filter(pk=params.get("employee_id")).first()
    if employee is None:
        return None
    entitlements = list(
        Entitlement.objects.filter(flagged(), holder=employee)
        .select_related("item")
        .order_by("review_due_on", "id")
    )
    if not entitlements:
        return None  # decided in the meantime: nothing to say
    return {
        "employee": employee,
        "entitlements": entitlements,
        "due_on": entitlements[0].review_due_on,
        "event": params.get("event", "requested"),
        "url": settings.PORTAL_BASE_URL.rstrip("/") + reverse("reviews:pending") + "#moved-heading",
    }


def register() -> None:
    from django.utils.translation import gettext_lazy

    registry.register(
        registry.MailKind(
            MOVER_REVIEW,
            gettext_lazy("Mover: review the access of a colleague who changed"),
            "mail/mover_review",
            _context,
        )
    )
