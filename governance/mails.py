"""Mails of governance, through the mail outbox: a recertification asks for decisions."""

from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications import services as mail

REVIEW_REQUESTED = "governance.review_requested"


def queue_review_requested(campaign, reviewers) -> list:
    return mail.mail_queue(
        kind=REVIEW_REQUESTED, recipients=reviewers, params={"campaign_id": campaign.pk}
    )


def _campaign_context(params: dict, recipient) -> dict | None:
    from governance.models import Campaign, Review

    campaign = Campaign.objects.filter(pk=params.get("campaign_id")).first()
    if campaign is None:
        return None
    pending = Review.objects.filter(
        campaign=campaign, reviewer=recipient, decision=Review.Decision.PENDING
    ).count()
    return {"campaign": campaign, "pending": pending}


def register() -> None:
    registry.register(
        registry.MailKind(
            REVIEW_REQUESTED,
            _("Recertification: please review access"),
            "mail/review_requested",
            _campaign_context,
        )
    )
