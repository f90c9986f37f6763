"""Mails of governance, through the mail outbox: a recertification asks for decisions,
reminds before the due date and escalates after it."""

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications import services as mail

REVIEW_REQUESTED = "governance.review_requested"
REVIEW_REMINDER = "governance.review_reminder"
REVIEW_ESCALATED = "governance.review_escalated"


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
