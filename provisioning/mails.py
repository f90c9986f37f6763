"""Mails of provisioning, through the mail outbox (notifications app): the notice before a
time-limited entitlement ends, and the report of a directory sync or reconciliation to IT
administration. Queued in the transaction of the run, rendered when sent."""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications import services as mail

EXPIRY_NOTICE = "provisioning.expiry_notice"
RUN_REPORT = "provisioning.run_report"


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
)


def register() -> None:
    for kind in KINDS:
        registry.register(kind)
