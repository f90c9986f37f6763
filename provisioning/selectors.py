"""Reads of provisioning: jobs for IT admins, entitlements for holders and their managers."""

import functools
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse

from catalogue.choices import FulfilmentKind
from catalogue.models import Employee
from itportal.roles import is_it_admin
from itportal.statements import (
    MARK,
    conditions_mark,
    kept_statement_order,
    read_with_conditions,
    split_at_conditions,
)
from provisioning.choices import REVERSE, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningAction, ProvisioningJob
from requests_app.choices import RequestState
from requests_app.holdings import Holding
from requests_app.models import ServiceRequest


def jobs_visible_to(user) -> QuerySet[ProvisioningJob]:
    if not is_it_admin(user):
        return ProvisioningJob.objects.none()
    return ProvisioningJob.objects.select_related(
        "request__item", "request__beneficiary__user", "entitlement"
    )


# The jobs page's row keys: the job's own columns the table shows.
_JOB_ROW = (
    "id",
    "request_id",
    "kind",
    "user_uid",
    "target_dn",
    "direction",
    "state",
    "attempts",
    "last_error",
    "updated_at",
)


def job_list_rows(queryset: QuerySet[ProvisioningJob]) -> list[dict] | QuerySet:
    """``queryset`` (filtered and ordered) as the jobs page's rows: one dict per row of the
    job's own columns the table shows. The joins of ``jobs_visible_to`` (the request, its
    item and beneficiary, the entitlement: a few hundred columns) are for the job's page;
    compiling and reading them was most of the list's CPU.

    For the page's rows, which ``queryset`` picks by conditions on the job's own columns
    (the pager's ``pk__in`` its chosen ids) and orders, the statement is compiled once per
    order (``_job_rows_statement``); only the conditions are compiled per view. Other
    querysets as values through the ORM."""
    order = kept_statement_order(queryset)
    if order is None:
        return queryset.values(*_JOB_ROW)
    names, rows = read_with_conditions(queryset, _job_rows_statement(order))
    return [dict(zip(names, row, strict=True)) for row in rows]


@functools.lru_cache(maxsize=32)
def _job_rows_statement(order: tuple[str, ...]) -> tuple:
    """The page's rows of the jobs that meet some conditions, in ``order``, as the ORM
    compiles them (``split_at_conditions``)."""
    marked = ProvisioningJob._base_manager.filter(conditions_mark()).order_by(*order)
    return split_at_conditions(marked.values(*_JOB_ROW))


def entitlement_holders(user) -> list[int]:
    """Ids of the employees whose entitlements ``user`` sees: their own record and their
    direct reports. A handful of rows, read once per user object, by a statement compiled
    once per process (``_holders_statement``): building the OR over the joined manager
    and compiling it took half a millisecond of every view."""
    cached = getattr(user, "_portal_entitlement_holders", None)
    if cached is None:
        db = router.db_for_read(Employee)
        sql, params = _holders_statement(db)
        with connections[db].cursor() as cursor:
            cursor.execute(sql, [user.pk if value == MARK else value for value in params])
            cached = [row[0] for row in cursor.fetchall()]
        user._portal_entitlement_holders = cached
    return cached


@functools.cache
def _holders_statement(db: str) -> tuple[str, tuple]:
    """The holders' query as the ORM compiles it, the user's id as ``MARK``."""
    holders = (
        Employee.objects.using(db)
        .filter(Q(user_id=MARK) | Q(manager__user_id=MARK))
        .order_by()
        .values_list("pk", flat=True)
    )
    return holders.query.sql_with_params()


def entitlements_visible_to(user) -> QuerySet[Entitlement]:
    """The user's own entitlements and those of their direct reports; IT admins see all."""
    qs = Entitlement.objects.select_related("holder__user", "holder__department", "item", "request")
    if is_it_admin(user):
        return qs
    # The holders as literal ids: the planner then knows one holder from six (the column
    # statistics) and walks the (holder, granted_at) or the granted_at index. An OR over
    # joined employees made it scan all entitlements.
    return qs.filter(holder__in=entitlement_holders(user))


# The entitlements page's row keys: the entitlement's own columns, and what it shows of
# the item, the holder and their department.
_ROW_OWN = ("id", "state", "granted_at", "expires_on", "request_id")
_ROW_JOINED = {
    "item_name": F("item__name"),
    "holder_username": F("holder__user__username"),
    "holder_first_name": F("holder__user__first_name"),
    "holder_last_name": F("holder__user__last_name"),
    "department_name": F("holder__department__name"),
}


def entitlement_list_rows(queryset: QuerySet[Entitlement]) -> list[dict] | QuerySet:
    """``queryset`` (filtered and ordered) as the entitlements page's rows: one dict per
    row with flat keys, instead of the six model objects (entitlement, holder, their user
    and department, item, request) a row took, most of the page's CPU.

    For the page's rows, which ``queryset`` picks by conditions on the entitlement's own
    columns (the pager's ``pk__in`` its chosen ids) and orders, the part of the statement
    that joins and selects is compiled once per order (``_list_rows_statement``); only the
    conditions are compiled per view (1 ms of the page's CPU, for the same SQL). Other
    querysets as values through the ORM."""
    order = kept_statement_order(queryset)
    if order is None:
        return queryset.values(*_ROW_OWN, **_ROW_JOINED)
    names, rows = read_with_conditions(queryset, _list_rows_statement(order))
    return [dict(zip(names, row, strict=True)) for row in rows]


@functools.lru_cache(maxsize=32)
def _list_rows_statement(order: tuple[str, ...]) -> tuple:
    """The page's rows of the entitlements that meet some conditions, in ``order``, as the
    ORM compiles them: the SQL before and after the conditions and each part's values."""
    marked = Entitlement._base_manager.filter(conditions_mark()).order_by(*order)
    return split_at_conditions(marked.values(*_ROW_OWN, **_ROW_JOINED))


def revoke_preview(entitlement: Entitlement) -> list[ProvisioningJob]:
    """The directory changes that revoking would undo: the request's grant jobs that have
    a reverse action (their revoke jobs are built from exactly these)."""
    return [
        job
        for job in ProvisioningJob.objects.filter(
            request_id=entitlement.request_id, direction=Direction.GRANT
        ).order_by("position")
        if job.kind in REVERSE
    ]


def held_by(employee, item) -> list:
    """The employee's active entitlements to the item, for the order page's warning."""
    rows = Entitlement.objects.active().filter(holder=employee, item=item).order_by("-granted_at")
    return [
        Holding(
            since=e.granted_at,
            until=e.expires_on,
            url=reverse("requests:detail", kwargs={"pk": e.request_id}),
        )
        for e in rows[:5]
    ]


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


def stalled_jobs(*, now: datetime) -> dict[str, Q]:
    """Conditions on jobs the sweeper enqueues again, by kind.

    ``overdue_job``: pending or waiting to retry, due more than PROVISIONING_SWEEP_AFTER_SECONDS
    ago (its message was lost); ``abandoned_job``: running, but the worker's lease ended (the
    worker died), and not woken by the sweeper within that time. Served by the (state, due_at)
    index.
    """
    cutoff = now - timedelta(seconds=settings.PROVISIONING_SWEEP_AFTER_SECONDS)
    return {
        "overdue_job": Q(state__in=[JobState.PENDING, JobState.RETRYING], due_at__lt=cutoff),
        "abandoned_job": Q(state=JobState.RUNNING)
        & (Q(lease_until__lt=now) | Q(lease_until=None))
        & (Q(due_at__lt=cutoff) | Q(due_at=None)),
    }


def stalled_requests(*, now: datetime) -> QuerySet[ServiceRequest]:
    """Automated requests approved more than PROVISIONING_SWEEP_AFTER_SECONDS ago whose
    provisioning never started (approved before jobs were recorded with the approval, or
    recording them failed). Only with a directory: without one, people fulfil them."""
    if not settings.DIRECTORY.get("url"):
        return ServiceRequest.objects.none()
    cutoff = now - timedelta(seconds=settings.PROVISIONING_SWEEP_AFTER_SECONDS)
    return ServiceRequest.objects.filter(
        state=RequestState.APPROVED,
        approved_at__lt=cutoff,
        item_snapshot__fulfilment_kind=FulfilmentKind.AUTOMATED,
    ).filter(
        Exists(ProvisioningAction.objects.filter(item=OuterRef("item"))),
        ~Exists(ProvisioningJob.objects.filter(request=OuterRef("pk"), direction=Direction.GRANT)),
    )
