"""Mails of governance, through the mail outbox: a recertification asks for decisions,
reminds before the due date and escalates after it."""

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications import services as mail

REVIEW_REQUESTED = "governance.review_requested"
REVIEW_REMINDER = "governance.review_reminder"
REVIEW_ESCALATED = "governance.review_escalated"
SOD_EXCEPTION_EXPIRING = "governance.sod_exception_expiring"


def queue_review_requested(campaign, reviewers) -> list:
    return mail.mail_queue(
        kind=REVIEW_REQUESTED, recipients=reviewers, params={"campaign_id": campaign.pk}
    )


def queue_review_reminder(campaign, reviewers) -> list:
    return mail.mail_queue(
        kind=REVIEW_REMINDER, recipients=reviewers, params={"campaign_id": campaign.pk}
    )


def queue_review_escalated(campaign, reviewers) -> list:
    return mail.mail_queue(
        kind=REVIEW_ESCALATED, recipients=reviewers, params={"campaign_id": campaign.pk}
    )


def queue_sod_exception_expiring(exception, recipients) -> list:
    return mail.mail_queue(
        kind=SOD_EXCEPTION_EXPIRING,
        recipients=recipients,
        params={"exception_id": exception.pk, "reminder": exception.reminders_sent},
    )


def _sod_exception_context(params: dict, recipient) -> dict | None:
    from django.urls import reverse

    from governance.models import SodException
    from governance.sod import exceptions_to_recertify

    exception = (
        SodException.objects.select_related("rule", "holder__user")
        .filter(pk=params.get("exception_id"))
        .first()
    )
    if exception is None:
        return None
    # Renewed, revoked or expired meanwhile: nothing to ask any more.
    if not exceptions_to_recertify(within_days=366).filter(pk=exception.pk).exists():
        return None
    return {
        "exception": exception,
        "url": reverse("governance:exception", args=[exception.pk]),
    }


def _campaign_context(params: dict, recipient) -> dict | None:
    from governance.choices import TaskDecision
    from governance.models import Campaign, ReviewTask
    from itportal.roles import is_it_admin

    campaign = Campaign.objects.filter(pk=params.get("campaign_id")).first()
    if campaign is None:
        return None
    mine = Q(reviewer=recipient)
    if is_it_admin(recipient):
        mine |= Q(reviewer__isnull=True)
    pending = (
        ReviewTask.objects.filter(
            mine, review__campaign=campaign, locked=False, decision=TaskDecision.PENDING
        )
        .exclude(review__entitlement__holder__user=recipient)
        .count()
    )
    return {"campaign": campaign, "pending": pending}


def register() -> None:
    for name, label, templates in (
        (REVIEW_REQUESTED, _("Recertification: please review access"), "mail/review_requested"),
        (REVIEW_REMINDER, _("Recertification: reminder"), "mail/review_reminder"),
        (REVIEW_ESCALATED, _("Recertification: escalated to you"), "mail/review_escalated"),
    ):
        registry.register(registry.MailKind(name, label, templates, _campaign_context))
    registry.register(
        registry.MailKind(
            SOD_EXCEPTION_EXPIRING,
            _("Segregation of duties: an exception expires"),
            "mail/sod_exception_expiring",
            _sod_exception_context,
        )
    )
