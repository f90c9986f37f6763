"""Writes of governance: recertification campaigns and their decisions."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from governance import mails
from governance.models import Campaign, Review
from itportal.exceptions import ActionConflict
from itportal.roles import IT_ADMIN, is_it_admin
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from provisioning.services import entitlement_revoke
from requests_app.selectors import principals_substituted_by

D = Review.Decision


def _clean_name(name) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError(
            {"name": _("Give the recertification a name of up to 200 characters.")}
        )
    return name


# One statement, whatever the number of entitlements: the reviewer is the holder's line
# manager when that person and their account are active, else nobody (IT administration).
_START_SQL = """
INSERT INTO {review} (campaign_id, entitlement_id, reviewer_id, decision, comment)
SELECT %s, e.id,
       CASE WHEN m.is_active AND mu.is_active AND m.user_id <> h.user_id
            THEN m.user_id END,
       'pending', ''
FROM {entitlement} e
JOIN {employee} h ON h.id = e.holder_id
LEFT JOIN {employee} m ON m.id = h.manager_id
LEFT JOIN {user} mu ON mu.id = m.user_id
WHERE e.state = %s
"""


@transaction.atomic
def campaign_start(*, name, due_on: datetime.date, user=None) -> Campaign:
    """Ask every line manager to confirm or remove the lasting access their staff hold."""
    name = _clean_name(name)
    if not isinstance(due_on, datetime.date) or due_on <= timezone.localdate():
        raise ValidationError({"due_on": _("The due date must lie in the future.")})
    if due_on > timezone.localdate() + datetime.timedelta(days=366):
        raise ValidationError({"due_on": _("The due date must lie within a year.")})
    campaign = Campaign.objects.create(name=name, due_on=due_on, started_by=user)
    from catalogue.models import Employee

    tables = {
        "review": Review._meta.db_table,
        "entitlement": Entitlement._meta.db_table,
        "employee": Employee._meta.db_table,
        "user": get_user_model()._meta.db_table,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _START_SQL.format(**{k: connection.ops.quote_name(v) for k, v in tables.items()}),
            [campaign.pk, EntitlementState.ACTIVE],
        )
    reviewers = (
        get_user_model()
        .objects.filter(access_reviews__campaign=campaign, is_active=True)
        .distinct()
    )
    mails.queue_review_requested(campaign, reviewers)
    if campaign.reviews.filter(reviewer__isnull=True).exists():
        admins = get_user_model().objects.filter(groups__name=IT_ADMIN, is_active=True)
        mails.queue_review_requested(campaign, admins)
    return campaign


def start_due_campaign(*, today: datetime.date | None = None) -> Campaign | None:
    """The periodic recertification: a new campaign when the last one started
    ``RECERTIFICATION_INTERVAL_DAYS`` ago or more (0 switches it off)."""
    interval = settings.RECERTIFICATION_INTERVAL_DAYS
    if not interval:
        return None
    today = today or timezone.localdate()
    last = Campaign.objects.order_by("-started_at").values_list("started_at", flat=True).first()
    if last is not None and timezone.localdate(last) > today - datetime.timedelta(days=interval):
        return None
    # Two runs at once cannot both start one: the task holds an advisory lock (single_run).
    return campaign_start(
        name=_("Recertification %(date)s") % {"date": today.strftime("%d.%m.%Y")},
        due_on=today + datetime.timedelta(days=settings.RECERTIFICATION_DUE_DAYS),
    )


def may_decide(review: Review, user) -> bool:
    """The reviewer, their substitute of today, or IT administration for rows without a
    reviewer; never the holder themselves (four-eyes)."""
    if not user.is_authenticated or review.entitlement.holder.user_id == user.pk:
        return False
    if review.reviewer_id is None:
        return is_it_admin(user)
    if review.reviewer_id == user.pk:
        return True
    return principals_substituted_by(user).filter(principal_id=review.reviewer_id).exists()


@transaction.atomic
def review_decide(*, review_id: int, user, decision: str, comment: str = "") -> Review:
    if decision not in (D.KEEP, D.REMOVE):
        raise ValidationError({"decision": _("Choose keep or remove.")})
    comment = (comment or "").strip()
    if len(comment) > 500 or "\x00" in comment:
        raise ValidationError(
            {"comment": _("The comment is too long or contains invalid characters.")}
        )
    review = (
        Review.objects.select_for_update(of=("self",))
        .select_related("campaign", "entitlement__holder", "entitlement__item")
        .get(pk=review_id)
    )
    if not may_decide(review, user):
        raise PermissionDenied(_("You may not decide on this access."))
    if review.campaign.state != Campaign.State.OPEN:
        raise ActionConflict(_("This recertification is closed."))
    if review.decision == decision:
        return review  # a second click, or another tab: already so
    if review.decision != D.PENDING:
        raise ActionConflict(_("This access has been decided already."))
    review.decision = decision
    review.decided_by = user
    review.decided_at = timezone.now()
    review.comment = comment
    review.save()
    _settle_entitlement(
        review.entitlement,
        user,
        decision,
        reason=_("Recertification “%(name)s”: access no longer needed.")
        % {"name": review.campaign.name}
        + (f" {comment}" if comment else ""),
    )
    return review


def _settle_entitlement(entitlement, user, decision, *, reason) -> None:
    """Clear the mover's review flag; remove the access where so decided."""
    if entitlement.review_note:
        Entitlement.objects.filter(pk=entitlement.pk).update(review_note="")
    if decision == D.REMOVE and entitlement.state == EntitlementState.ACTIVE:
        entitlement_revoke(entitlement_id=entitlement.pk, user=user, reason=reason, authorised=True)


@transaction.atomic
def flagged_decide(*, entitlement_id: int, user, decision: str) -> Entitlement:
    """A mover's new line manager keeps or removes an access flagged for review."""
    if decision not in (D.KEEP, D.REMOVE):
        raise ValidationError({"decision": _("Choose keep or remove.")})
    entitlement = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("holder__manager")
        .get(pk=entitlement_id)
    )
    manager = entitlement.holder.manager
    allowed = manager is not None and (
        manager.user_id == user.pk
        or principals_substituted_by(user).filter(principal_id=manager.user_id).exists()
    )
    if not allowed or entitlement.holder.user_id == user.pk:
        raise PermissionDenied(_("You may not decide on this access."))
    if not entitlement.review_note:
        raise ActionConflict(_("This access has been decided already."))
    _settle_entitlement(
        entitlement,
        user,
        decision,
        reason=_("Reviewed after a change of department: access no longer needed."),
    )
    return entitlement


@transaction.atomic
def campaign_close(*, campaign_id: int, user) -> Campaign:
    if not is_it_admin(user):
        raise PermissionDenied(_("Only IT administration closes a recertification."))
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if campaign.state == Campaign.State.CLOSED:
        raise ActionConflict(_("This recertification is closed."))
    campaign.state = Campaign.State.CLOSED
    campaign.closed_at = timezone.now()
    campaign.save()
    return campaign
