"""Reads behind the assistance: peer figures and decision history, aggregated in PostgreSQL.

Every figure is counted in the database (correlated counts in one statement per page, however
many rows) and comes back with what it was counted over, so the page can say why. Figures of a
peer group smaller than ASSIST_MIN_PEER_GROUP are withheld: in a small group one person's
holdings could be read off them.
"""

import functools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Trim
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.text import Truncator
from django.utils.translation import gettext

from catalogue.licences import licences_free
from catalogue.models import CatalogueItem, Employee
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import OPEN_STATES, ApprovalStatus, RequestState
from requests_app.models import Approval, ServiceRequest

HISTORY_DAYS = 365
# Last year's decisions on an item are counted up to this many each: a popular service has
# tens of thousands, and "more than 1,000" tells an approver as much as the exact figure.
DECISIONS_COUNTED = 1000
REASONS_SHOWN = 3
REASON_LENGTH = 80


class _Count(Subquery):
    """count(*) of a queryset as a scalar subquery (correlated through its OuterRefs)."""

    template = "(SELECT count(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()


def enabled(part: str) -> bool:
    """Is assistance on, and this part of it (``decision_support``, ``recommendations``)?"""
    return settings.ASSIST_ENABLED and getattr(settings, f"ASSIST_{part.upper()}", True)


@dataclass(frozen=True)
class PeerFigures:
    """How many of a person's peers hold an item; ``size`` 0 and ``too_few`` when withheld."""

    department: str
    job_title: str  # empty: the whole department was compared
    size: int
    holders: int
    minimum: int

    @property
    def too_few(self) -> bool:
        return self.size < self.minimum

    @property
    def outlier(self) -> bool:
        return not self.too_few and self.holders < self.size * settings.ASSIST_OUTLIER_SHARE

    @property
    def outlier_percent(self) -> int:
        return round(settings.ASSIST_OUTLIER_SHARE * 100)


def _peer_figures(*, department, job_title, by_title, by_title_holders, by_dept, by_dept_holders):
    """The narrowest group big enough: same job title if the person has one and it is, else
    the department."""
    minimum = settings.ASSIST_MIN_PEER_GROUP
    if job_title and by_title >= minimum:
        return PeerFigures(department, job_title, by_title, by_title_holders, minimum)
    if by_dept < minimum:
        return PeerFigures(department, "", 0, 0, minimum)
    return PeerFigures(department, "", by_dept, by_dept_holders, minimum)


@dataclass
class DecisionSupport:
    """What an approver may want to know about one request; it never suggests a decision."""

    # The request; for a list's figures (decision_support_for_rows) its row, as values.
    request: ServiceRequest | dict
    peers: PeerFigures
    approved: int
    rejected: int
    held_before: bool
    reasons: list[tuple[str, int]] = field(default_factory=list)
    licences_free: int | None = None

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def approved_label(self) -> str:
        return _bounded_label(self.approved)

    @property
    def rejected_label(self) -> str:
        return _bounded_label(self.rejected)


def _bounded_label(count: int) -> str:
    if count <= DECISIONS_COUNTED:
        return number_format(count, force_grouping=True)
    return gettext("more than %(count)s") % {
        "count": number_format(DECISIONS_COUNTED, force_grouping=True)
    }


def _peers(**conditions) -> QuerySet:
    """Active colleagues of the row's beneficiary (not the beneficiary), as a count source."""
    return (
        Employee.objects.filter(
            is_active=True, department=OuterRef("beneficiary__department"), **conditions
        )
        .exclude(pk=OuterRef("beneficiary"))
        .order_by()
        .values("pk")
    )


def with_decision_figures(
    requests: QuerySet[ServiceRequest], *, since=None
) -> QuerySet[ServiceRequest]:
    """Annotate requests with peer counts, the decisions on the item since ``since`` (a
    year ago by default) and whether the beneficiary held it before: one statement whatever
    the number of rows."""
    since = since or timezone.now() - timedelta(days=HISTORY_DAYS)
    holds = Exists(
        Entitlement.objects.filter(
            holder=OuterRef("pk"), item=OuterRef(OuterRef("item")), state=EntitlementState.ACTIVE
        )
    )
    same_title = {"job_title": OuterRef("beneficiary__job_title")}
    others = ServiceRequest.objects.filter(item=OuterRef("item")).exclude(pk=OuterRef("pk"))
    return requests.annotate(
        peers_dept=_Count(_peers()),
        holders_dept=_Count(_peers().filter(holds)),
        peers_title=_Count(_peers(**same_title)),
        holders_title=_Count(_peers(**same_title).filter(holds)),
        # Decided by a person: approved with at least one step, or rejected.
        # Bounded (DECISIONS_COUNTED + 1 rows at most), each from a partial index of its
        # own: counting a popular item's 57,000 approvals of a year took 1.3 s per row.
        # Ordered like the index, so the planner walks it and stops (a bitmap scan reads
        # every entry before the limit applies).
        approved_year=_Count(
            others.filter(approved_at__gte=since, approval_steps__gt=0)
            .order_by("-approved_at")
            .values("pk")[: DECISIONS_COUNTED + 1]
        ),
        rejected_year=_Count(
            others.filter(state=RequestState.REJECTED, closed_at__gte=since)
            .order_by("-closed_at")
            .values("pk")[: DECISIONS_COUNTED + 1]
        ),
        held_before=Exists(
            Entitlement.objects.filter(
                holder=OuterRef("beneficiary"),
                item=OuterRef("item"),
                state=EntitlementState.REVOKED,
            )
        ),
    )


def _support(row: ServiceRequest) -> DecisionSupport:
    beneficiary = row.beneficiary
    return DecisionSupport(
        request=row,
        peers=_peer_figures(
            department=beneficiary.department.name,
            job_title=beneficiary.job_title,
            by_title=row.peers_title,
            by_title_holders=row.holders_title,
            by_dept=row.peers_dept,
            by_dept_holders=row.holders_dept,
        ),
        approved=row.approved_year,
        rejected=row.rejected_year,
        held_before=row.held_before,
    )


def _annotated(request_ids) -> list[ServiceRequest]:
    rows = ServiceRequest.objects.filter(pk__in=request_ids).select_related(
        "item", "beneficiary__department", "beneficiary__user"
    )
    return list(with_decision_figures(rows).order_by("pk"))


def rejection_reasons(service_request: ServiceRequest) -> list[tuple[str, int]]:
    """The most common reasons given for rejecting the item in the last year, shortened."""
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    rows = (
        Approval.objects.filter(
            request__item=service_request.item_id,
            status=ApprovalStatus.REJECTED,
            decided_at__gte=since,
        )
        .exclude(request=service_request.pk)
        .annotate(reason=Trim("comment"))
        .exclude(reason="")
        .values("reason")
        .annotate(n=Count("*"))
        .order_by("-n", "reason")[:REASONS_SHOWN]
    )
    return [(Truncator(r["reason"]).chars(REASON_LENGTH), r["n"]) for r in rows]


def decision_support(service_request: ServiceRequest) -> DecisionSupport:
    """Everything for the request page: two queries, a third for an item with a licence pool."""
    (row,) = _annotated([service_request.pk])
    support = _support(row)
    support.reasons = rejection_reasons(service_request)
    if row.item.licence_pool_size is not None:
        support.licences_free = licences_free(row.item)
    return support


# What decision_support_for_rows reads of each row: the figures, and of the beneficiary
# what the peer group is named by.
_ROW_FIGURES = (
    "pk",
    "peers_dept",
    "holders_dept",
    "peers_title",
    "holders_title",
    "approved_year",
    "rejected_year",
    "held_before",
    "beneficiary__department__name",
    "beneficiary__job_title",
)
# Stand-ins the list rows' statement is compiled with, once per process; each call binds
# its own request ids and date in their places (no request has a negative id).
_IDS_MARK = [-1]
_SINCE_MARK = datetime(1901, 1, 1, tzinfo=UTC)


@functools.cache
def _row_figures_statement() -> tuple[str, tuple]:
    """with_decision_figures over ``id = ANY(ids)`` as SQL and parameters, the ids and the
    date as stand-ins: building and compiling it through the ORM for every page was a
    third of the approvals page's CPU (bench/bench_cpu.py at 1M), for the same statement."""
    ids = Value(_IDS_MARK, output_field=ArrayField(BigIntegerField()))
    rows = ServiceRequest.objects.filter(pk__any=ids)
    figures = with_decision_figures(rows, since=_SINCE_MARK).order_by("pk")
    sql, params = figures.values_list(*_ROW_FIGURES).query.sql_with_params()
    if params.count(_IDS_MARK) != 1 or _SINCE_MARK not in params:
        raise RuntimeError("decision figures: the stand-ins are not where expected")
    return sql, tuple(params)


def decision_support_for_rows(rows) -> dict[int, DecisionSupport]:
    """The compact figures for a list page's rows, by request id, in one statement.

    ``rows`` are the list's rows as values (dicts with the request's ``id``, see
    requests_app.tables.RequestRowTable), each the ``request`` of its figures; the
    statement is with_decision_figures', compiled once (_row_figures_statement).
    """
    by_id = {row["id"]: row for row in rows}
    if not by_id:
        return {}
    sql, params = _row_figures_statement()
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    bound = [list(by_id) if p == _IDS_MARK else since if p == _SINCE_MARK else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        rows = cursor.fetchall()
    result = {}
    for pk, p_dept, h_dept, p_title, h_title, approved, rejected, held, dept, title in rows:
        result[pk] = DecisionSupport(
            request=by_id[pk],
            peers=_peer_figures(
                department=dept,
                job_title=title,
                by_title=p_title,
                by_title_holders=h_title,
                by_dept=p_dept,
                by_dept_holders=h_dept,
            ),
            approved=approved,
            rejected=rejected,
            held_before=held,
        )
    return result


@dataclass(frozen=True)
class Recommendation:
    """An item most of the person's peers hold and she does not; ``peers`` says who counted."""

    item: object
    holders: int
    peers: PeerFigures


def _peer_group(employee) -> PeerFigures:
    """The comparison group of one person (same rules as for approvers): one query."""
    colleagues = Employee.objects.filter(is_active=True, department=employee.department_id).exclude(
        pk=employee.pk
    )
    # The department's name comes along, so the page needs no query of its own for it.
    sizes = colleagues.aggregate(
        by_dept=Count("pk"),
        by_title=Count("pk", filter=Q(job_title=employee.job_title)),
        department=Max("department__name"),
    )
    return _peer_figures(
        department=sizes["department"] or "",
        job_title=employee.job_title,
        by_title=sizes["by_title"],
        by_title_holders=0,
        by_dept=sizes["by_dept"],
        by_dept_holders=0,
    )


def recommendations_for(employee, *, limit: int = 3) -> list[Recommendation]:
    """Items at least ASSIST_RECOMMEND_SHARE of the person's peers hold, that she may order,
    does not hold and has no open request for; most held first. Two queries (one for a
    group too small to compare)."""
    group = _peer_group(employee)
    if group.too_few:
        return []
    peers = Employee.objects.filter(is_active=True, department=employee.department_id).exclude(
        pk=employee.pk
    )
    if group.job_title:
        peers = peers.filter(job_title=group.job_title)
    holding = Exists(
        Entitlement.objects.filter(
            holder=OuterRef("pk"), item=OuterRef(OuterRef("pk")), state=EntitlementState.ACTIVE
        )
    )
    needed = max(1, math.ceil(group.size * settings.ASSIST_RECOMMEND_SHARE))
    items = (
        CatalogueItem.objects.orderable_by(employee)
        .annotate(holders=_Count(peers.filter(holding).order_by().values("pk")))
        .filter(holders__gte=needed)
        .exclude(
            Exists(
                Entitlement.objects.filter(
                    holder=employee,
                    item=OuterRef("pk"),
                    state__in=[EntitlementState.ACTIVE, EntitlementState.REVOKING],
                )
            )
        )
        .exclude(
            Exists(
                ServiceRequest.objects.filter(
                    beneficiary=employee, item=OuterRef("pk"), state__in=OPEN_STATES
                )
            )
        )
        .order_by("-holders", "name")[:limit]
    )
    return [
        Recommendation(
            item=item,
            holders=item.holders,
            peers=PeerFigures(
                group.department, group.job_title, group.size, item.holders, group.minimum
            ),
        )
        for item in items
    ]
