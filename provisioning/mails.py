"""Mails of provisioning, through the mail outbox (notifications app): the notice before a
time-limited entitlement ends, and the report of a directory sync or reconciliation to IT
administration. Queued in the transaction of the run, rendered when sent."""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications import services as mail

EXPIRY_NOTICE = "provisioning.expiry_notice"
RUN_REPORT = "provisioning.run_report"
JOINER_OFFER = "provisioning.joiner_offer"


def queue_joiner_offer(employee, manager, bundle_slug: str) -> list:
    """The directory brought a new colleague: offer the manager the joiner bundle for them."""
    return mail.mail_queue(
        kind=JOINER_OFFER,
        recipients=[manager.user],
        params={"employee_id": employee.pk, "bundle": bundle_slug},
    )


def _joiner_context(params: dict, recipient) -> dict | None:
    from django.conf import settings
    from django.urls import reverse
    from django.utils.http import urlencode

    from catalogue.models import Bundle, Employee

    employee = Employee.objects.select_related("user").filter(pk=params.get("employee_id")).first()
    bundle = Bundle.objects.active().filter(slug=params.get("bundle") or "").first()
    if employee is None or bundle is None:
        return None
    path = reverse("ordering:bundle", args=[bundle.slug])
    # Pre-filled: for the new colleague, needed from their first working day.
    query = {"fuer": employee.personnel_number}
    if employee.start_date:
        query["ab"] = employee.start_date.isoformat()
    query = urlencode(query)
    return {
        "employee": employee,
        "start_date": employee.start_date,
        "bundle": bundle,
        "url": f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}?{query}",
    }


def queue_expiry_notice(entitlement) -> list:
    return mail.mail_queue(
        kind=EXPIRY_NOTICE,
        recipients=[entitlement.holder.user],
        params={"entitlement_id": entitlement.pk},
    )


def queue_run_report(run) -> list:
    """Tell the IT administration group what a sync or reconciliation run found."""
    from itportal.roles import IT_ADMIN

    admins = get_user_model().objects.filter(groups__name=IT_ADMIN, is_active=True)
    return mail.mail_queue(kind=RUN_REPORT, recipients=admins, params={"run_id": run.pk})


def _expiry_context(params: dict, recipient) -> dict | None:
    from provisioning.models import Entitlement

    entitlement = (
        Entitlement.objects.select_related("holder__user", "item")
        .filter(pk=params.get("entitlement_id"))
        .first()
    )
    return None if entitlement is None else {"entitlement": entitlement}


def _run_context(params: dict, recipient) -> dict | None:
    from provisioning.models import SyncRun

    run = SyncRun.objects.filter(pk=params.get("run_id")).first()
    if run is None:
        return None
    return {"run": run, "findings": list(run.findings.all()[:1000])}


KINDS = (
    registry.MailKind(
        EXPIRY_NOTICE, _("Entitlement ends soon"), "mail/expiry_notice", _expiry_context
    ),
    registry.MailKind(
        RUN_REPORT, _("Directory sync or reconciliation report"), "mail/run_report", _run_context
    ),
    registry.MailKind(
        JOINER_OFFER,
        _("New colleague: order the joiner bundle"),
        "mail/joiner_offer",
        _joiner_context,
    ),
)


def register() -> None:
    for kind in KINDS:
        registry.register(kind)
