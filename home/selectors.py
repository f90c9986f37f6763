"""Reads for the start page and the counts in the navigation.

Like metrics, this app reads from all the others and none imports it. Every figure is a
count in SQL and every list is sliced, so the page costs the same few queries whatever the
data: the navigation's counts in one query, then one per list.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, Func, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from catalogue.models import CatalogueItem, Employee
from governance import selectors as governance_selectors
from itportal.roles import group_ids, is_controlling, is_it_admin
from notifications.models import Notification
from provisioning.choices import EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app import selectors as request_selectors
from requests_app.choices import OPEN_STATES, ApprovalStatus, RequestState
from requests_app.models import Approval, ServiceRequest, Substitution

LIST_SIZE = 5


def _count(qs: QuerySet) -> Subquery:
    """A correlated-free COUNT(*) of ``qs`` to embed in another query's SELECT."""
    return Subquery(qs.order_by().values(n=Func(F("pk"), function="COUNT"))[:1])


def _expiring(user) -> QuerySet[Entitlement]:
    """Active entitlements of the user or of their direct reports ending within the notice
    period (the start page's "access expiring soon")."""
    until = timezone.localdate() + timedelta(days=settings.PORTAL_EXPIRING_WITHIN_DAYS)
    return Entitlement.objects.filter(
        Q(holder__user=user) | Q(holder__manager__user=user),
        state=EntitlementState.ACTIVE,
        expires_on__isnull=False,
        expires_on__lte=until,
    )


def nav_counts(user) -> dict:
    """What waits for the user, and which menus apply to them, in one query.

    ``approvals``/``queue``/``assigned``/``expiring``/``reviews`` are counts; ``approver`` and
    ``fulfiller`` say whether the menus apply at all: someone is an approver who has
    something to decide, decided before, manages people or substitutes someone; a fulfiller
    is in a group that owns a catalogue item. Cached on the user object for the request.
    """
    if not user.is_authenticated:
        return {}
    cached = getattr(user, "_portal_nav_counts", None)
    if cached is not None:
        return cached
    groups = list(group_ids(user))
    queue = request_selectors.fulfilment_queue(user)
    today = timezone.localdate()
    values = {
        "mine": _count(request_selectors.requests_of(user).filter(state__in=OPEN_STATES)),
        "approvals": _count(request_selectors.requests_awaiting_decision_by(user)),
        "queue": _count(queue),
        "assigned": _count(queue.filter(assignee=user)),
        "expiring": _count(_expiring(user)),
        "decided": Exists(Approval.objects.filter(Q(decided_by=user) | Q(approver=user))),
        "manages": Exists(Employee.objects.filter(manager__user=user)),
        "substitutes": Exists(Substitution.objects.filter(substitute=user, ends_on__gte=today)),
        "group_approver": Exists(
            Approval.objects.filter(group__in=groups, status=ApprovalStatus.PENDING)
        ),
        "owns_items": Exists(CatalogueItem.objects.filter(service_owner__in=groups)),
        "unread": _count(Notification.objects.filter(recipient=user, read_at__isnull=True)),
        "reviews": _count(governance_selectors.undecided_tasks_for(user)),
        "moved": _count(governance_selectors.flagged_for(user)),
    }
    # Prefixed: the user model has relations named like some of the counts ("approvals").
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .values(**{f"nav_{key}": value for key, value in values.items()})
        .get()
    )
    row = {key.removeprefix("nav_"): value for key, value in row.items()}
    admin = is_it_admin(user)
    counts = {
        "mine": row["mine"] or 0,
        "approvals": row["approvals"] or 0,
        "queue": row["queue"] or 0,
        "assigned": row["assigned"] or 0,
        "expiring": row["expiring"] or 0,
        "unread": row["unread"] or 0,
        # Recertification tasks and movers' access still to decide: the link shows only then.
        "reviews": (row["reviews"] or 0) + (row["moved"] or 0),
        "approver": bool(
            row["approvals"]
            or row["decided"]
            or row["manages"]
            or row["substitutes"]
            or row["group_approver"]
        ),
        "fulfiller": admin or bool(row["owns_items"] or row["queue"]),
    }
    user._portal_nav_counts = counts
    return counts


def _with_pending_approval(qs: QuerySet[ServiceRequest]) -> QuerySet[ServiceRequest]:
    """Requests with their pending approval (``pending_approvals``, 0 or 1) and who fulfils."""
    pending = Approval.objects.filter(status=ApprovalStatus.PENDING).select_related(
        "approver", "group"
    )
    return qs.select_related("fulfilment_group", "assignee").prefetch_related(
        Prefetch("approvals", queryset=pending, to_attr="pending_approvals")
    )


def start_page(user) -> dict:
    from requests_app import progress

    counts = nav_counts(user)
    mine = request_selectors.requests_of(user).filter(state__in=OPEN_STATES)
    my_open = list(_with_pending_approval(mine).order_by("-created_at")[:LIST_SIZE])
    for req in my_open:
        pending = req.pending_approvals[0] if req.pending_approvals else None
        req.now_with = progress.now_with(req, pending)
        req.tone = progress.tone(req.state)
    context = {
        "counts": counts,
        "my_open": my_open,
        "expiring": list(
            _expiring(user)
            .select_related("item", "holder__user")
            .order_by("expires_on")[:LIST_SIZE]
        )
        if counts["expiring"]
        else [],
        "to_decide": list(
            request_selectors.requests_awaiting_decision_by(user).order_by("created_at")[:LIST_SIZE]
        )
        if counts["approvals"]
        else [],
    }
    if is_it_admin(user):
        context["admin"] = it_admin_figures()
    if is_controlling(user):
        context["controlling"] = controlling_figures()
    return context


def it_admin_figures() -> dict:
    """Failed provisioning jobs and requests open for longer than they should be."""
    stale_before = timezone.now() - timedelta(days=settings.PORTAL_STALE_REQUEST_DAYS)
    stale = ServiceRequest.objects.filter(
        state__in=OPEN_STATES, submitted_at__lt=stale_before
    ).select_related("item", "fulfilment_group")
    failed = ProvisioningJob.objects.filter(state=JobState.FAILED)
    totals = ServiceRequest.objects.aggregate(
        stale=Count("pk", filter=Q(state__in=OPEN_STATES, submitted_at__lt=stale_before)),
        failed_requests=Count("pk", filter=Q(state=RequestState.FAILED)),
    )
    return {
        "failed_jobs": failed.count(),
        "failed_job_list": list(failed.order_by("-updated_at")[:LIST_SIZE]),
        "stale": totals["stale"],
        "stale_list": list(stale.order_by("submitted_at")[:LIST_SIZE]),
        "failed_requests": totals["failed_requests"],
        "stale_days": settings.PORTAL_STALE_REQUEST_DAYS,
    }


def controlling_figures() -> dict:
    """This month's key figures, one aggregate over the month's requests."""
    today = timezone.localdate()
    start = timezone.make_aware(
        timezone.datetime(today.year, today.month, 1), timezone.get_current_timezone()
    )
    figures = ServiceRequest.objects.aggregate(
        ordered=Count("pk", filter=Q(submitted_at__gte=start)),
        fulfilled=Count("pk", filter=Q(state=RequestState.FULFILLED, closed_at__gte=start)),
        automated=Count(
            "pk",
            filter=Q(
                state=RequestState.FULFILLED, closed_at__gte=start, fulfilled_automatically=True
            ),
        ),
        open=Count("pk", filter=Q(state__in=OPEN_STATES)),
    )
    fulfilled = figures["fulfilled"]
    figures["automation_rate"] = (
        round(100 * figures["automated"] / fulfilled) if fulfilled else None
    )
    figures["month"] = start
    return figures
