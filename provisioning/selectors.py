"""Reads of provisioning: jobs for IT admins, entitlements for holders and their managers."""

from django.db.models import Q, QuerySet

from itportal.roles import is_it_admin
from provisioning.models import Entitlement, ProvisioningJob


def jobs_visible_to(user) -> QuerySet[ProvisioningJob]:
    if not is_it_admin(user):
        return ProvisioningJob.objects.none()
    return ProvisioningJob.objects.select_related(
        "request__item", "request__beneficiary__user", "entitlement"
    )


def entitlements_visible_to(user) -> QuerySet[Entitlement]:
    """The user's own entitlements and those of their direct reports; IT admins see all."""
    qs = Entitlement.objects.select_related("holder__user", "holder__department", "item", "request")
    if is_it_admin(user):
        return qs
    return qs.filter(Q(holder__user=user) | Q(holder__manager__user=user))
