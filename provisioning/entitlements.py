"""Time-limited entitlements: notice before expiry, revocation when due."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from provisioning import mails, services
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement


def expire_due(*, notice_days: int, today=None) -> dict[str, int]:
    today = today or timezone.localdate()
    counts = {"noticed": 0, "revoked": 0}
    soon = Entitlement.objects.filter(
        state=EntitlementState.ACTIVE,
        expires_on__isnull=False,
        expires_on__lte=today + timedelta(days=notice_days),
        expires_on__gte=today,
        expiry_notice_sent_at__isnull=True,
    ).select_related("holder__user", "item")
    for entitlement in soon:
        with transaction.atomic():
            updated = Entitlement.objects.filter(
                pk=entitlement.pk, expiry_notice_sent_at__isnull=True
            ).update(expiry_notice_sent_at=timezone.now())
            if updated and entitlement.holder.user.email:
                # The notice is an outbox row of this transaction: sent after commit, once.
                mails.queue_expiry_notice(entitlement)
                counts["noticed"] += 1
    due = Entitlement.objects.filter(
        state=EntitlementState.ACTIVE, expires_on__isnull=False, expires_on__lt=today
    ).values_list("pk", flat=True)
    for entitlement_id in list(due):
        services.entitlement_revoke(entitlement_id=entitlement_id, user=None, reason=_("Expired."))
        counts["revoked"] += 1
    return counts
