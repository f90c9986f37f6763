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
from django.db.models.expressions import RawSQL
from django.db.models.functions import Trim
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.text import Truncator

from catalogue.licences import licences_free
from catalogue.models import CatalogueItem, Employee
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import OPEN_STATES, ApprovalStatus, RequestState
from requests_app.models import Approval, ServiceRequest

HISTORY_DAYS = 365
# Of last year's decisions on an item, the most recent this many are counted: a popular
# service has tens of thousands, and their share of rejections, with the day the counted
# ones start, tells an approver as much as the exact figures (which "more than 1,000 each"
# hid); each row reads at most this many index entries, however long the history.
DECISIONS_COUNTED = 200
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
    # When the year held DECISIONS_COUNTED decisions or more: the time of the oldest one
    # counted (the figures are the most recent ones'); None: the figures are the year's.
    decisions_since: datetime | None = None

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def decided_label(self) -> str:
        return number_format(self.decided, force_grouping=True)

    @property
    def approved_label(self) -> str:
        return number_format(self.approved, force_grouping=True)

    @property
    def rejected_label(self) -> str:
        return number_format(self.rejected, force_grouping=True)

    @property
    def since_label(self) -> str:
        """The day the counted decisions start, in the portal's time zone."""
        if self.decisions_since is None:
            return ""
        return date_format(timezone.localtime(self.decisions_since), "SHORT_DATE_FORMAT")


def _decisions_sql() -> str:
    """The most recent DECISIONS_COUNTED decisions on the outer request's item since a time
    (parameter 1), other than the request itself, as ``[approved, rejected, oldest time in
    epoch seconds]``: a merge of two partial indexes walked newest first (decided by a
    person: approved with at least one step, or rejected), which stops at the bound."""
    table = ServiceRequest._meta.db_table
    outer = f'"{table}"'
    # Each part limited too, so the planner walks both indexes backwards and merges them.
    return f"""(
        SELECT ARRAY[
            count(*) FILTER (WHERE d.approved),
            count(*) FILTER (WHERE NOT d.approved),
            COALESCE(floor(extract(epoch FROM min(d.at))), 0)::bigint
        ]
        FROM (
            SELECT * FROM (
                (SELECT u.approved_at AS at, true AS approved FROM {outer} u
                 WHERE u.item_id = {outer}.item_id AND u.id <> {outer}.id
                   AND u.approval_steps > 0 AND u.approved_at >= %s
                 ORDER BY u.approved_at DESC LIMIT %s)
                UNION ALL
                (SELECT u.closed_at, false FROM {outer} u
                 WHERE u.item_id = {outer}.item_id AND u.id <> {outer}.id
                   AND u.state = %s AND u.closed_at >= %s
                 ORDER BY u.closed_at DESC LIMIT %s)
            ) both_kinds
            ORDER BY at DESC LIMIT %s
        ) d
    )"""  # noqa: S608 - the table's name; the values are parameters


def _decisions(since) -> RawSQL:
    bound = DECISIONS_COUNTED
    params = (since, bound, RequestState.REJECTED.value, since, bound, bound)
    # S611: the SQL is the constant above, every value a parameter.
    return RawSQL(_decisions_sql(), params, output_field=ArrayField(BigIntegerField()))  # noqa: S611


def _decision_figures(decisions) -> dict:
    """DecisionSupport's figures from ``_decisions``' array."""
    approved, rejected, oldest = decisions
    capped = approved + rejected >= DECISIONS_COUNTED
    return {
        "approved": approved,
        "rejected": rejected,
        "decisions_since": datetime.fromtimestamp(oldest, UTC) if capped else None,
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
    """Annotate requests with peer counts, the most recent decisions on the item since
    ``since`` (a year ago by default; at most DECISIONS_COUNTED, see _decisions_sql) and
    whether the beneficiary held it before: one statement whatever the number of rows."""
    since = since or timezone.now() - timedelta(days=HISTORY_DAYS)
    holds = Exists(
        Entitlement.objects.filter(
            holder=OuterRef("pk"), item=OuterRef(OuterRef("item")), state=EntitlementState.ACTIVE
        )
    )
    same_title = {"job_title": OuterRef("beneficiary__job_title")}
    return requests.annotate(
        peers_dept=_Count(_peers()),
        holders_dept=_Count(_peers().filter(holds)),
        peers_title=_Count(_peers(**same_title)),
        holders_title=_Count(_peers(**same_title).filter(holds)),
        decisions=_decisions(since),
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
        held_before=row.held_before,
        **_decision_figures(row.decisions),
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
    "decisions",
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
    for pk, p_dept, h_dept, p_title, h_title, decisions, held, dept, title in rows:
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
            held_before=held,
            **_decision_figures(decisions),
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
