"""Reads of provisioning: jobs for IT admins, entitlements for holders and their managers."""

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from itportal.roles import is_it_admin
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest


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


def with_licence_usage(items: QuerySet) -> QuerySet:
    """Annotate catalogue items with the licences of their pool that are taken.

    ``licences_in_use``: entitlements still held (active, or being revoked: the licence is
    free only once the directory change is done). ``licences_reserved``: approved requests
    and requests in fulfilment that have no entitlement yet; they will take a licence, so
    counting them keeps IT from promising the same licence twice. One query, whatever the
    number of items (two correlated counts per item, served by the foreign-key indexes).
    """
    held = (
        Entitlement.objects.filter(
            item=OuterRef("pk"), state__in=[EntitlementState.ACTIVE, EntitlementState.REVOKING]
        )
        .order_by()
        .values("item")
        .annotate(n=Count("*"))
        .values("n")
    )
    reserved = (
        ServiceRequest.objects.filter(
            item=OuterRef("pk"), state__in=[RequestState.APPROVED, RequestState.IN_FULFILMENT]
        )
        .exclude(Exists(Entitlement.objects.filter(request=OuterRef("pk"))))
        .order_by()
        .values("item")
        .annotate(n=Count("*"))
        .values("n")
    )
    return items.annotate(
        licences_in_use=Coalesce(Subquery(held), 0),
        licences_reserved=Coalesce(Subquery(reserved), 0),
    )
