"""Reads of service requests. Visibility lives here, in the queryset, so no view can forget it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.utils import timezone

from catalogue.models import Employee
from itportal.roles import group_ids, is_it_admin
from requests_app.choices import ApprovalStatus, RequestState
from requests_app.models import (
    QUEUE_CONDITION,
    Approval,
    CartLine,
    FulfilmentTask,
    RequestEvent,
    ServiceRequest,
    Submission,
    Substitution,
)

LIST_RELATED = ("item__category", "beneficiary__user", "requester", "cost_centre")


# What a list row never shows: the item as ordered (a kilobyte of JSON per request, most of
# the row), the answers and the free texts; of the item its texts and search columns. Lists
# read the snapshot's name only (``listed_item_name``, see ServiceRequest.item_name), so
# PostgreSQL sorts narrow rows and Python decodes no JSON per row.
LIST_DEFERRED = (
    "item_snapshot",
    "answers",
    "justification",
    "resolution_note",
    "item__description",
    "item__summary",
    "item__keywords",
    "item__search_vector",
    "item__search_words",
)


def _base() -> QuerySet[ServiceRequest]:
    return ServiceRequest.objects.select_related(*LIST_RELATED)


def listed(queryset: QuerySet[ServiceRequest]) -> QuerySet[ServiceRequest]:
    """``queryset`` with the columns its list rows show, not the wide ones (LIST_DEFERRED)."""
    return queryset.defer(*LIST_DEFERRED).annotate(listed_item_name=KT("item_snapshot__name"))


def list_values(queryset: QuerySet[ServiceRequest], columns) -> QuerySet:
    """``queryset`` (filtered and ordered) as dicts of ``columns``, for lists built from
    values; the item's name as ordered comes as ``listed_item_name``."""
    if "listed_item_name" not in queryset.query.annotations:
        queryset = queryset.annotate(listed_item_name=KT("item_snapshot__name"))
    return queryset.values(*columns)


def principals_substituted_by(user, *, on_date=None) -> QuerySet:
    """Ids of the approvers whom ``user`` substitutes on ``on_date`` (today by default)."""
    on_date = on_date or timezone.localdate()
    return Substitution.objects.filter(
        substitute=user, starts_on__lte=on_date, ends_on__gte=on_date, principal__is_active=True
    ).values("principal_id")


def _approvals_for(user, *, on_date=None) -> QuerySet[Approval]:
    """Approvals that ``user`` may decide: directly, through a group, or as a substitute."""
    principals = principals_substituted_by(user, on_date=on_date)
    # A substitute decides for a group member only where that member could: never for
    # the requester or the beneficiary of the request (four-eyes).
    substituted_member = (
        get_user_model()
        .groups.through.objects.filter(group_id=OuterRef("group_id"), user_id__in=principals)
        .exclude(user_id=OuterRef("request__requester_id"))
        .exclude(user__employee=OuterRef("request__beneficiary_id"))
    )
    principal_groups = (
        get_user_model().groups.through.objects.filter(user_id__in=principals).values("group_id")
    )
    # Every branch an index condition (``= ANY(ARRAY(subquery))``, itportal/lookups.py), so
    # the pending approvals come from a BitmapOr of index scans; the correlated four-eyes
    # check runs only for groups a substituted principal is in. Before, the OR held
    # subplans and every request awaiting approval was probed: 60-90 ms at 1M requests.
    return Approval.objects.filter(
        Q(approver=user)
        | Q(group__in=list(group_ids(user)))
        | Q(approver__any=ArraySubquery(principals))
        | (Q(group__any=ArraySubquery(principal_groups)) & Exists(substituted_member))
    )


def requests_visible_to(user) -> QuerySet[ServiceRequest]:
    """Requests in which ``user`` has a part; IT admins see all."""
    if not user.is_authenticated:
        return ServiceRequest.objects.none()
    if is_it_admin(user):
        return _base()
    approvals = _approvals_for(user).filter(request=OuterRef("pk"))
    decided = Approval.objects.filter(
        Q(decided_by=user) | Q(escalated_from=user), request=OuterRef("pk")
    )
    return _base().filter(
        Q(requester=user)
        | Q(beneficiary__user=user)
        | Q(fulfilment_group__in=list(group_ids(user)))
        | Exists(approvals)
        | Exists(decided)
    )


def requests_of(user) -> QuerySet[ServiceRequest]:
    """ "My requests": placed by the user or for the user."""
    # The user's employee record as a scalar subquery (an InitPlan, run once): both sides
    # of the OR are then equalities on indexed columns, which the planner estimates from
    # the column statistics and answers with a BitmapOr of two index scans. With ``IN
    # (subquery)`` it guessed a hundred times too many rows and scanned the whole table.
    own_record = Employee.objects.filter(user=user).order_by().values("pk")[:1]
    return listed(_base().filter(Q(requester=user) | Q(beneficiary=Subquery(own_record))))


def requests_awaiting_decision_by(user) -> QuerySet[ServiceRequest]:
    """ "Approvals for me": requests whose current step the user may decide."""
    # Driven from the user's pending approvals (a few index entries), not from every
    # request awaiting approval with a probe each.
    pending = _approvals_for(user).filter(status=ApprovalStatus.PENDING).values("request_id")
    # Four-eyes across steps: whoever decided an earlier step (in person or as the
    # principal of a substitute) does not decide the next one.
    decided_earlier = Approval.objects.filter(
        Q(decided_by=user) | Q(on_behalf_of=user), request=OuterRef("pk")
    )
    return listed(
        _base()
        .filter(state=RequestState.AWAITING_APPROVAL, pk__in=pending)
        .exclude(requester=user)
        .exclude(beneficiary__user=user)
        .exclude(Exists(decided_earlier))
    )


def fulfilment_queue(user) -> QuerySet[ServiceRequest]:
    """Approved requests waiting for or in fulfilment by hand, for the user's groups.

    Until an automation claims requests (see ``requests_app.fulfilment``), every
    approved request is fulfilled by hand, automated items included.
    """
    # In fulfilment without an assignee means an automation runs it: not a queue item.
    qs = listed(_base().select_related("assignee", "fulfilment_group").filter(QUEUE_CONDITION))
    if is_it_admin(user):
        return qs
    return qs.filter(fulfilment_group__in=list(group_ids(user)))


def tasks_visible_to(user) -> QuerySet[FulfilmentTask]:
    """Fulfilment tasks of the user's groups, open and done; IT admins see all. The page
    and the API alike."""
    qs = FulfilmentTask.objects.select_related(
        "request", "person__user", "person__department", "fulfilment_group", "done_by"
    )
    if not is_it_admin(user):
        qs = qs.filter(fulfilment_group__in=list(group_ids(user)))
    return qs


def open_tasks(user) -> QuerySet[FulfilmentTask]:
    """Open tasks (collect a leaver's device) of the user's groups, oldest first; IT admins
    see all. Read through the partial indexes on open tasks."""
    return (
        tasks_visible_to(user).filter(state=FulfilmentTask.State.OPEN).order_by("created_at", "id")
    )


def request_timeline(service_request) -> QuerySet[RequestEvent]:
    return service_request.events.select_related("actor", "on_behalf_of").order_by(
        "created_at", "id"
    )


def request_approvals(service_request) -> QuerySet[Approval]:
    return service_request.approvals.select_related(
        "approver", "group", "decided_by", "on_behalf_of"
    ).order_by("position")


# --- cart and joint orders -------------------------------------------------------------


def cart_lines_of(user) -> QuerySet[CartLine]:
    """The user's cart, oldest line first, with what the cart page shows of each line."""
    return (
        CartLine.objects.filter(owner=user)
        .select_related("item", "beneficiary__user")
        .prefetch_related("item__form_fields")
        .order_by("created_at", "id")
    )


def cart_count(user) -> int:
    return CartLine.objects.filter(owner=user).count()


def submissions_of(user) -> QuerySet[Submission]:
    """Joint orders the user placed; others' are not found (404), as with requests."""
    return Submission.objects.filter(requester=user)


def submission_requests(submission) -> QuerySet[ServiceRequest]:
    return _base().filter(submission=submission).order_by("id")


# Joint orders shown grouped on the approvals page, newest first; more wait in the table.
APPROVAL_GROUPS_MAX = 20


def approval_groups(user, awaiting: QuerySet[ServiceRequest] | None = None) -> list[dict]:
    """Joint orders of which several requests await ``user``'s decision, for deciding them
    together: each with its requests and the id of the step the user would decide.

    One query, whatever the number of groups. ``awaiting`` is
    ``requests_awaiting_decision_by(user)`` if the caller has it already (building that
    query is a tenth of the approvals page's CPU).
    """
    pending = Approval.objects.filter(request=OuterRef("pk"), status=ApprovalStatus.PENDING)
    if awaiting is None:
        awaiting = requests_awaiting_decision_by(user)
    rows = (
        awaiting.filter(submission__isnull=False)
        .annotate(current_approval=Subquery(pending.values("pk")[:1]))
        .order_by("-submission_id", "id")
    )
    groups: dict[int, list[ServiceRequest]] = {}
    for service_request in rows[: APPROVAL_GROUPS_MAX * 10]:
        groups.setdefault(service_request.submission_id, []).append(service_request)
    result = [
        {"submission_id": submission_id, "requests": requests}
        for submission_id, requests in groups.items()
        if len(requests) > 1
    ]
    return result[:APPROVAL_GROUPS_MAX]
