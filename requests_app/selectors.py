"""Reads of service requests. Visibility lives here, in the queryset, so no view can forget it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.fields.json import KT, KeyTextTransform
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from catalogue.models import CatalogueItem, CostCentre, Department, Employee
from itportal.roles import group_ids, is_it_admin
from itportal.statements import (
    CompiledRows,
    conditions_mark,
    kept_statement_order,
    read_with_conditions,
    split_at_conditions,
)
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


def _person(prefix: str, path: str) -> dict:
    return {
        f"{prefix}_first_name": F(f"{path}__first_name"),
        f"{prefix}_last_name": F(f"{path}__last_name"),
        f"{prefix}_username": F(f"{path}__username"),
    }


def _item_name(path: str = "") -> Coalesce:
    """ServiceRequest.item_name of the request at ``path``: the name as ordered, else the
    item's current one."""
    return Coalesce(
        NullIf(KeyTextTransform("name", f"{path}item_snapshot"), Value("")),
        F(f"{path}item__name"),
        output_field=TextField(),
    )


def _looked_up(queryset: QuerySet, outer: str, column) -> Subquery:
    """``column`` (a field's name or an expression) of the row of ``queryset`` whose id is
    the outer row's ``outer``."""
    rows = queryset.filter(pk=OuterRef(outer)).order_by()
    rows = rows.values(column) if isinstance(column, str) else rows.values(value=column)
    return Subquery(rows[:1], output_field=TextField())


# What the request lists of the pages (requests_app.tables) may show of a row, by flat key:
# read as values, a row is one dict of these, not seven model objects (the request, its
# item and category, the people, the cost centre) built from 80 columns. None: a column of
# the request itself.
ROW_COLUMNS = {
    "id": None,
    "state": None,
    "created_at": None,
    "item_name": _item_name(),
    **_person("beneficiary", "beneficiary__user"),
    **_person("requester", "requester"),
    "cost_centre_code": F("cost_centre__code"),
    # The fulfilment queue's.
    **_person("assignee", "assignee"),
    "fulfilment_group_name": F("fulfilment_group__name"),
    "approved_at": None,
    "fulfilment_due_on": None,
    "hold_reason": None,
}


def list_rows(queryset: QuerySet[ServiceRequest], columns) -> QuerySet[dict]:
    """``queryset`` (filtered and ordered) as dicts of the ``columns`` named in ROW_COLUMNS."""
    own = [name for name in columns if ROW_COLUMNS[name] is None]
    joined = {name: ROW_COLUMNS[name] for name in columns if ROW_COLUMNS[name] is not None}
    return queryset.values(*own, **joined)


def page_rows(queryset: QuerySet[ServiceRequest], columns) -> list[dict] | QuerySet[dict]:
    """``list_rows(queryset, columns)`` for the rows of a page, which ``queryset`` picks by
    conditions on the request's own columns (the pager's ``pk__in`` its chosen ids) and
    orders: the same rows in one statement, whose part that joins and selects what the rows
    show is compiled once per columns and order (``_page_rows_statement``); only the
    conditions are compiled per view. Building and compiling the joins of 16 columns took
    1.5-2 ms of the fulfilment queue's CPU on every view, for the same SQL. Read at once; as
    ``list_rows`` (a queryset) for other querysets (joined, sliced, combined, unordered).
    (The API's rows: api/request_rows.py.)"""
    order = kept_statement_order(queryset)
    if order is None:
        return list_rows(queryset, columns)
    statement, layout = _page_rows_statement(tuple(columns), order)
    _names, rows = read_with_conditions(queryset, statement)
    return records_of(layout, rows)


def records_of(layout, rows) -> list[dict]:
    """``rows`` as dicts: per column of ``layout``, its key, or the keys of a related row's
    columns read together as one array (``looked_up_together``; None without the row)."""
    records = []
    for row in rows:
        record = {}
        for keys, value in zip(layout, row, strict=True):
            if type(keys) is str:
                record[keys] = value
            else:
                record.update(zip(keys, value or (None,) * len(keys), strict=True))
        records.append(record)
    return records


# ROW_COLUMNS' joined columns as subqueries per row, for the rows of a page: joined, the
# request, item, employee, three users and group made seven tables whose join order
# PostgreSQL searched for 2.7-6 ms on every view of the fulfilment queue at 1M requests (the
# 25 rows executed in 0.5 ms); as subqueries, planning took 0.5 ms. The same values: a
# missing row (no assignee) gives NULL as the outer join did; the inner joins followed
# foreign keys that are never NULL.
_ROW_LOOKUPS = {
    "item_name": Coalesce(
        NullIf(KeyTextTransform("name", "item_snapshot"), Value("")),
        _looked_up(CatalogueItem.objects.all(), "item_id", "name"),
        output_field=TextField(),
    ),
    "cost_centre_code": _looked_up(CostCentre.objects.all(), "cost_centre_id", "code"),
    "fulfilment_group_name": _looked_up(Group.objects.all(), "fulfilment_group_id", "name"),
}

# The people's names, by person: all the columns a page shows of one person come from one
# subquery per row, as an array. A subquery per column (nine for the queue's three people)
# ran 275 subplans for 25 rows: 2-3.5 ms of the queue's statement at 1M requests, and
# 0.65 ms to plan it; by person, 1 ms and 0.25 ms.
_PEOPLE = {
    "beneficiary": (Employee.objects.all(), "beneficiary_id", "user__"),
    "requester": (get_user_model().objects.all(), "requester_id", ""),
    "assignee": (get_user_model().objects.all(), "assignee_id", ""),
}


def _person_of(name: str) -> str | None:
    """The person (a key of _PEOPLE) whose column ``name`` is, or None."""
    prefix = name.partition("_")[0]
    return prefix if prefix in _PEOPLE and name in ROW_COLUMNS else None


def looked_up_together(queryset: QuerySet, outer: str, paths: list[str]) -> Subquery:
    """The columns at ``paths`` of the row of ``queryset`` whose id is the outer row's
    ``outer``, as one array of texts (NULL without that row)."""
    values = Func(
        *(F(path) for path in paths),
        function="ARRAY",
        template="%(function)s[%(expressions)s]",
        output_field=ArrayField(TextField()),
    )
    rows = queryset.filter(pk=OuterRef(outer)).order_by().values(value=values)
    return Subquery(rows[:1], output_field=ArrayField(TextField()))


@functools.lru_cache(maxsize=128)
def _page_rows_statement(columns: tuple[str, ...], order: tuple[str, ...]) -> tuple:
    """``list_rows`` of the requests that meet some conditions, in ``order``, as the ORM
    compiles it: the SQL before and after the conditions and the parameters of each part
    (``split_at_conditions``); and the layout of a row: per selected column, its name, or
    the names of a person's columns read together (in list_rows' order of the keys)."""
    marked = ServiceRequest.objects.filter(conditions_mark()).order_by(*order)
    own = [name for name in columns if ROW_COLUMNS[name] is None]
    layout: list = list(own)
    selected = {}
    for name in columns:
        if name in own:
            continue
        person = _person_of(name)
        previous = layout[-1] if len(layout) > len(own) else None
        if person is not None and isinstance(previous, tuple) and _person_of(previous[0]) == person:
            layout[-1] = (*previous, name)  # the same person's next column
        else:
            layout.append((name,) if person is not None else name)
    for index, keys in enumerate(layout):
        if isinstance(keys, str):
            if keys not in own:
                selected[keys] = _ROW_LOOKUPS.get(keys, ROW_COLUMNS[keys])
            continue
        queryset, outer, path = _PEOPLE[_person_of(keys[0])]
        columns_of = [path + key.split("_", 1)[1] for key in keys]
        selected[f"person_{index}"] = looked_up_together(queryset, outer, columns_of)
    return split_at_conditions(marked.values(*own, **selected)), tuple(layout)


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


def request_visible_to(user, pk: int, *related: str) -> ServiceRequest | None:
    """Request ``pk`` (with ``related`` joined) if ``user`` may see it (requests_visible_to),
    else None. Read by its id alone first: for its requester, its beneficiary, its
    fulfilling groups and IT admins the row itself says so; only for others (approvers) the
    visibility query decides, in a second statement. Building that query (the approvals'
    groups and substitutes) cost 8 ms of CPU, a third of the request page's."""
    if not user.is_authenticated:
        return None
    rows = _request_by_id(tuple(related))(pk)
    if not rows:
        return None
    row = rows[0]
    if (
        row.requester_id == user.pk
        or row.beneficiary.user_id == user.pk
        or row.fulfilment_group_id in group_ids(user)
        or is_it_admin(user)
        or requests_visible_to(user).filter(pk=pk).exists()
    ):
        return row
    return None


@functools.lru_cache(maxsize=16)
def _request_by_id(related: tuple[str, ...]) -> CompiledRows:
    """A request by its id with its list joins and ``related``: one statement compiled once
    per set of joins (building and compiling the joins was 2 ms of the request page's CPU)."""
    return CompiledRows(
        ServiceRequest,
        lambda number: _base().select_related(*related).filter(pk=number).order_by(),
    )


def requests_of(user) -> QuerySet[ServiceRequest]:
    """ "My requests": placed by the user or for the user."""
    # The user's employee record as a scalar subquery (an InitPlan, run once): both sides
    # of the OR are then equalities on indexed columns, which the planner estimates from
    # the column statistics and answers with a BitmapOr of two index scans. With ``IN
    # (subquery)`` it guessed a hundred times too many rows and scanned the whole table.
    return listed(_base().filter(_placed_by(user) | _placed_for(user)))


def requests_of_rows(user) -> QuerySet[ServiceRequest]:
    """``requests_of(user)`` without the related rows and the wide columns of its model
    rows, for a list that reads its page as values (``list_rows``): counting, filtering and
    sorting need none of them, and every copy of the query on the way copied them."""
    return ServiceRequest.objects.filter(_placed_by(user) | _placed_for(user))


def _placed_by(user) -> Q:
    return Q(requester=user)


def _placed_for(user) -> Q:
    own_record = Employee.objects.filter(user=user).order_by().values("pk")[:1]
    return Q(beneficiary=Subquery(own_record))


def requests_of_parts(user) -> list[QuerySet[ServiceRequest]]:
    """``requests_of(user)`` in two parts: the requests the user placed, and those others
    placed for them (disjoint). Read apart (BoundedPaginator's ``parts``), each goes along
    its own index in the list's order (requester or beneficiary, then the order date); the
    OR of both made the planner read the order-date index of all requests, or all of the
    user's thousands of rows, for a page of 25."""
    # Only their ids and order columns are read, so without the list's joins.
    return [
        ServiceRequest.objects.filter(_placed_by(user)),
        ServiceRequest.objects.filter(_placed_for(user)).exclude(_placed_by(user)),
    ]


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
    return _in_queue_of(_queue_base(rows_only=False), user)


def fulfilment_queue_rows(user) -> QuerySet[ServiceRequest]:
    """``fulfilment_queue(user)`` without the related rows and columns of its model rows,
    for a list that reads its page as values (``list_rows``): counting, filtering and
    sorting need none of them, and every copy of the query made on the way copied them."""
    return _in_queue_of(_queue_base(rows_only=True), user)


@functools.cache
def _queue_base(*, rows_only: bool) -> QuerySet[ServiceRequest]:
    """The queue of all groups, built once per process and never evaluated (only copied,
    ``_in_queue_of``): resolving its condition, joins and deferred columns anew was 0.18 ms
    of the queue's CPU on every view, for the same query."""
    # In fulfilment without an assignee means an automation runs it: not a queue item.
    if rows_only:
        return ServiceRequest.objects.filter(QUEUE_CONDITION)
    return listed(_base().select_related("assignee", "fulfilment_group")).filter(QUEUE_CONDITION)


def item_name_rank() -> Func:
    """Where a request's item comes among the catalogue's items ordered by name: items of
    the same name share a rank (a dense rank), so ordering by it and then by a column of
    the request gives the order of ``item__name`` and that column, ties included.

    The queue sorted by service joined the items to its ~2,000 rows at 1M requests to sort
    them by name (a hash join in the page's ids, and the items again in the page's rows).
    The ranks are read by the statement itself, once (an InitPlan over the few items, in
    the name column's collation as its ORDER BY), into an array indexed by the item's id: a
    subscript per request and no join, never a rank older than the catalogue the
    statement sees (a renamed or new item included), so nothing is kept per process."""
    quote = connection.ops.quote_name
    table = quote(CatalogueItem._meta.db_table)
    key, name = (quote(CatalogueItem._meta.get_field(f).column) for f in ("id", "name"))
    # Only the table's and columns' names are interpolated; there are no values.
    ranked = f"SELECT {key} AS id, dense_rank() OVER (ORDER BY {name}) AS rank FROM {table}"  # noqa: S608
    ranks = (
        f"(SELECT array_agg(r.rank ORDER BY g) FROM generate_series(1, (SELECT max({key})"  # noqa: S608
        f" FROM {table})) g LEFT JOIN ({ranked}) r ON r.id = g)"
    )
    rank = Func(
        F("item_id"), template=f"({ranks})[%(expressions)s]", output_field=BigIntegerField()
    )
    # A page's ids walk the items in this order, each one's requests along an index of
    # (item, id) (request_queue_item_idx), and stop when the page is full
    # (itportal.inputs.PartsUnion): sorting all ~2,000 queue entries by their rank for 25
    # was 1.1 ms of the queue sorted by service at 1M, the walk 0.15 ms.
    rank.walk = ("item", ranked)
    return rank


def _in_queue_of(queryset: QuerySet[ServiceRequest], user) -> QuerySet[ServiceRequest]:
    """A copy of ``queryset`` (a ``_queue_base``) for the user's groups."""
    groups = fulfilment_groups(user)
    return queryset.all() if groups is None else queryset.filter(fulfilment_group__in=groups)


def tasks_visible_to(user) -> QuerySet[FulfilmentTask]:
    """Fulfilment tasks of the user's groups, open and done; IT admins see all. The page
    and the API alike."""
    return _tasks_of(fulfilment_groups(user))


def task_list_values(queryset: QuerySet[FulfilmentTask], columns) -> QuerySet:
    """``queryset`` (filtered and ordered) as dicts of ``columns``, for the API's list of
    tasks; the request's item name (``ServiceRequest.item_name``) comes as ``item_name``.

    The name is read by a subquery per row: joined, the request and its item made seven
    tables whose join order PostgreSQL searched for 3 ms per page at 1M requests (the page
    itself ran in 0.3 ms); with the subquery, planning took 0.7 ms."""
    request = ServiceRequest.objects.filter(pk=OuterRef("request_id")).order_by()
    item_name = Subquery(request.values(name=_item_name())[:1], output_field=TextField())
    return queryset.annotate(item_name=item_name).values(*columns)


def fulfilment_groups(user) -> tuple[int, ...] | None:
    """The groups whose queue and tasks ``user`` sees; None for all (IT admins)."""
    return None if is_it_admin(user) else tuple(sorted(group_ids(user)))


def _tasks_of(groups: tuple[int, ...] | None) -> QuerySet[FulfilmentTask]:
    qs = FulfilmentTask.objects.select_related(
        "request", "person__user", "person__department", "fulfilment_group", "done_by"
    )
    if groups is not None:
        qs = qs.filter(fulfilment_group__in=groups)
    return qs


def open_tasks(user) -> QuerySet[FulfilmentTask]:
    """Open tasks (collect a leaver's device) of the user's groups, oldest first; IT admins
    see all. Read through the partial indexes on open tasks."""
    return _open_tasks_of(fulfilment_groups(user))


def _open_tasks_of(groups: tuple[int, ...] | None) -> QuerySet[FulfilmentTask]:
    return _tasks_of(groups).filter(state=FulfilmentTask.State.OPEN).order_by("created_at", "id")


# What the queue's list of open tasks shows of a task, by flat key (as ROW_COLUMNS): one
# dict per task, not a task with its request (item snapshot and answers included), person,
# user, department and group built from 70 columns, which cost the queue page a tenth of
# its CPU even without any open task. The item name, department and group come by a
# subquery per row: joined, the seven tables' join order cost PostgreSQL 3 ms of planning
# per view at 1M requests (executing 0.8 ms); as subqueries, 0.6 ms (as task_list_values).
TASK_ROW_COLUMNS = {
    "id": None,
    "kind": None,
    "reason": None,
    "request_id": None,
    "created_at": None,
    "item_name": Coalesce(
        NullIf(KeyTextTransform("name", "request__item_snapshot"), Value("")),
        _looked_up(CatalogueItem.objects.all(), "request__item_id", "name"),
        output_field=TextField(),
    ),
    **_person("person", "person__user"),
    "personnel_number": F("person__personnel_number"),
    "department_code": _looked_up(Department.objects.all(), "person__department_id", "code"),
    "fulfilment_group_name": _looked_up(Group.objects.all(), "fulfilment_group_id", "name"),
}


def open_task_rows(user, limit: int) -> list[dict]:
    """The first ``limit`` of ``open_tasks(user)`` as dicts of TASK_ROW_COLUMNS."""
    return task_row_dicts(open_task_values(user, limit))


def open_task_values(user, limit: int) -> list[tuple]:
    """``open_task_rows`` as the statement reads them (``task_row_dicts`` makes the dicts):
    the queue keeps its tasks' markup by these values, and makes the dicts only to render
    them anew (requests_app/templatetags/queue_tasks.py)."""
    groups = fulfilment_groups(user)
    if groups == ():
        return []  # in no group: no task, as the ORM finds without asking
    sql, params = _open_task_rows_statement(groups, limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def task_row_dicts(rows: list[tuple]) -> list[dict]:
    """Rows of ``open_task_values`` as dicts of TASK_ROW_COLUMNS."""
    # The statement's columns follow TASK_ROW_COLUMNS' keys, but for the person's five,
    # which come as one array, the last but one column (_open_task_rows_statement).
    return [
        dict(zip(TASK_ROW_COLUMNS, (*row[:-2], *(row[-2] or _NO_PERSON), row[-1]), strict=True))
        for row in rows
    ]


_NO_PERSON = (None,) * 5  # never: a task's person is a foreign key that is never NULL


@functools.lru_cache(maxsize=64)
def _open_task_rows_statement(groups: tuple[int, ...] | None, limit: int) -> tuple[str, tuple]:
    """open_task_rows' SQL and parameters, the same for every user of the same groups:
    built and compiled through the ORM once per process, not on every view of the queue
    (0.8 ms of its CPU, for the same statement). TASK_ROW_COLUMNS' values, each related
    row's by a subquery per task (the person's together, as an array): joined, the task,
    request, employee and user took PostgreSQL 0.6 ms to plan at 1M requests (executing
    0.6 ms), by subqueries 0.3 ms, for the same rows (the foreign keys are never NULL)."""
    own = [name for name, column in TASK_ROW_COLUMNS.items() if column is None]
    item_name = Coalesce(
        NullIf(KeyTextTransform("name", "item_snapshot"), Value("")),
        _looked_up(CatalogueItem.objects.all(), "item_id", "name"),
        output_field=TextField(),
    )
    person = ["user__first_name", "user__last_name", "user__username", "personnel_number",
              "department__code"]  # fmt: skip
    rows = _open_tasks_of(groups).values(
        *own,
        item_name=_looked_up(ServiceRequest.objects.all(), "request_id", item_name),
        person_columns=looked_up_together(Employee.objects.all(), "person_id", person),
        fulfilment_group_name=TASK_ROW_COLUMNS["fulfilment_group_name"],
    )[:limit]
    sql, params = rows.query.sql_with_params()
    return sql, tuple(params)


# The request page's (and the API detail's) events and steps of a request, each read by a
# statement compiled once: building their joins on every view cost more than reading them.
_TIMELINE = CompiledRows(
    RequestEvent,
    lambda number: (
        RequestEvent.objects.filter(request_id=number)
        .select_related("actor", "on_behalf_of")
        .order_by("created_at", "id")
    ),
)
_APPROVALS = CompiledRows(
    Approval,
    lambda number: (
        Approval.objects.filter(request_id=number)
        .select_related("approver", "group", "decided_by", "on_behalf_of")
        .order_by("position")
    ),
)


def request_timeline(service_request) -> list[RequestEvent]:
    """The request's events, oldest first, with their actors."""
    return _TIMELINE(service_request.pk, known={"request": service_request})


def request_timeline_rows(service_request) -> list[tuple]:
    """The rows of ``request_timeline`` as read (plain values): the request page keys its
    kept markup on them and makes the events only to render it."""
    return _TIMELINE.rows(service_request.pk)


def timeline_of_rows(service_request, rows: list[tuple]) -> list[RequestEvent]:
    """``request_timeline`` made from its ``request_timeline_rows``."""
    return _TIMELINE.objects(rows, known={"request": service_request})


def request_approvals(service_request) -> list[Approval]:
    """The request's approval steps in order, with their approvers and deciders."""
    return _APPROVALS(service_request.pk, known={"request": service_request})


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


@dataclass(frozen=True)
class PendingDecision:
    """A step the user may decide now: its request, the step itself, the joint order."""

    request_id: int
    approval_id: int
    submission_id: int | None


@functools.cache
def _pending_decisions_sql() -> str:
    """requests_awaiting_decision_by's conditions as one statement (the same rules, see
    there and _approvals_for), without the ORM: building and compiling that query for the
    count, the rows and the joint orders was 40 % of the approvals page's CPU.

    Planned on every view, it cost PostgreSQL more to plan (1.1-1.4 ms at 1M requests)
    than to run, so it gives the planner little to weigh: whom the user substitutes and
    those principals' groups are read once each (materialized CTEs, without statistics or
    indexes to consider; the subquery was planned three times); the user's groups and own
    employee record are subqueries on the user's id (their own query and a join to the
    employees before); and the request of each matching step is read by its id (a lateral
    subquery, which the planner does not join with the requests table's 27 indexes). The
    steps are first narrowed by their own columns (what any branch of the rule needs), so
    only those requests are read; the hash join read every request awaiting approval.
    0.5-0.7 ms to plan, 0.3 to run, one query less (the user's group ids)."""
    tables = {
        "approval": Approval._meta.db_table,
        "request": ServiceRequest._meta.db_table,
        "employee": Employee._meta.db_table,
        "substitution": Substitution._meta.db_table,
        "user": get_user_model()._meta.db_table,
        "user_groups": get_user_model().groups.through._meta.db_table,
    }
    table = tables["user_groups"]
    own_groups = f"SELECT m.group_id FROM {table} m WHERE m.user_id = %(user)s"  # noqa: S608
    return """
        WITH principals AS MATERIALIZED (
          -- whom the user substitutes today
          SELECT s.principal_id FROM {substitution} s JOIN {user} p ON p.id = s.principal_id
          WHERE s.substitute_id = %(user)s AND s.starts_on <= %(today)s
            AND s.ends_on >= %(today)s AND p.is_active
        ), principal_groups AS MATERIALIZED (
          SELECT m.group_id, m.user_id, e.id AS employee_id
          FROM {user_groups} m LEFT JOIN {employee} e ON e.user_id = m.user_id
          WHERE m.user_id IN (SELECT principal_id FROM principals)
        )
        SELECT a.request_id, a.id, r.submission_id
        FROM {approval} a
        CROSS JOIN LATERAL (
          SELECT r.submission_id, r.state, r.requester_id, r.beneficiary_id
          FROM {request} r WHERE r.id = a.request_id
          OFFSET 0  -- kept a subquery: read by the id, not joined
        ) r
        WHERE a.status = %(pending)s
          -- implied by the rule below: narrows the steps before their requests are read
          AND (
            a.approver_id = %(user)s
            OR a.group_id = ANY(ARRAY({own_groups}))
            OR a.approver_id = ANY(ARRAY(SELECT principal_id FROM principals))
            OR a.group_id = ANY(ARRAY(SELECT group_id FROM principal_groups))
          )
          AND (
            a.approver_id = %(user)s
            OR a.group_id = ANY(ARRAY({own_groups}))
            OR a.approver_id = ANY(ARRAY(SELECT principal_id FROM principals))
            OR (
              a.group_id = ANY(ARRAY(SELECT group_id FROM principal_groups))
              -- a substitute decides for a group member only where that member could
              AND EXISTS (
                SELECT 1 FROM principal_groups g
                WHERE g.group_id = a.group_id AND g.user_id <> r.requester_id
                  AND g.employee_id IS DISTINCT FROM r.beneficiary_id
              )
            )
          )
          AND r.state = %(awaiting)s
          AND r.requester_id <> %(user)s
          -- every request has a beneficiary; the user may have no employee record
          AND r.beneficiary_id IS DISTINCT FROM (
            SELECT e.id FROM {employee} e WHERE e.user_id = %(user)s
          )
          AND NOT EXISTS (
            SELECT 1 FROM {approval} d
            WHERE d.request_id = a.request_id
              AND (d.decided_by_id = %(user)s OR d.on_behalf_of_id = %(user)s)
          )
        ORDER BY a.request_id
    """.format(own_groups=own_groups, **tables)  # noqa: S608 - table names, the SQL above


def pending_decisions_of(user, *, on_date=None) -> list[PendingDecision]:
    """The steps ``user`` may decide now, one per request: the requests of
    ``requests_awaiting_decision_by(user)`` (tests/test_approvals.py holds them equal), read
    in one statement for the approvals page and API list, whose count, rows and joint
    orders then filter by request id."""
    if not user.is_authenticated:
        return []
    params = {
        "user": user.pk,
        "today": on_date or timezone.localdate(),
        "pending": ApprovalStatus.PENDING.value,
        "awaiting": RequestState.AWAITING_APPROVAL.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_pending_decisions_sql(), params)
        return [PendingDecision(*row) for row in cursor.fetchall()]


def requests_to_decide(user, pending: list[PendingDecision] | None = None):
    """ "Approvals for me" as its lists read it: the requests of ``pending`` (the user's
    pending decisions, read here if not given) that still await approval."""
    if pending is None:
        pending = pending_decisions_of(user)
    if not pending:
        # Nothing to decide: counted and read without a query, and without the joins'
        # columns (the compiler builds the select before it finds the query empty).
        return ServiceRequest.objects.none()
    return listed(
        _base().filter(pk__in=[p.request_id for p in pending], state=RequestState.AWAITING_APPROVAL)
    )


def requests_to_decide_rows(user, pending: list[PendingDecision] | None = None):
    """``requests_to_decide(user, pending)`` without the related rows and the wide columns
    of its model rows, for the approvals list, which reads its page as values
    (``page_rows``): choosing, filtering and sorting its rows need none of them, and
    building them was half of the list's query work in Python."""
    if pending is None:
        pending = pending_decisions_of(user)
    if not pending:
        return ServiceRequest.objects.none()
    return ServiceRequest.objects.filter(
        pk__in=[p.request_id for p in pending], state=RequestState.AWAITING_APPROVAL
    )


# Joint orders shown grouped on the approvals page, newest first; more wait in the table.
APPROVAL_GROUPS_MAX = 20


def approval_groups(user, pending: list[PendingDecision] | None = None) -> list[dict]:
    """Joint orders of which several requests await ``user``'s decision, for deciding them
    together: each with its requests and, as ``current_approval``, the id of the step the
    user would decide.

    Grouped from ``pending`` (pending_decisions_of, read here if not given): one query for
    the grouped requests, none without a joint order.
    """
    if pending is None:
        pending = pending_decisions_of(user)
    ordered = sorted(
        (p for p in pending if p.submission_id is not None),
        key=lambda p: (-p.submission_id, p.request_id),
    )[: APPROVAL_GROUPS_MAX * 10]
    by_submission: dict[int, list[PendingDecision]] = {}
    for step in ordered:
        by_submission.setdefault(step.submission_id, []).append(step)
    chosen = [steps for steps in by_submission.values() if len(steps) > 1][:APPROVAL_GROUPS_MAX]
    if not chosen:
        return []
    grouped = [step for steps in chosen for step in steps]
    found = {r.pk: r for r in requests_to_decide(user, grouped)}
    result = []
    for steps in chosen:
        requests = []
        for step in steps:
            service_request = found.get(step.request_id)
            if service_request is not None:  # else decided since the first read
                service_request.current_approval = step.approval_id
                requests.append(service_request)
        if len(requests) > 1:
            result.append({"submission_id": steps[0].submission_id, "requests": requests})
    return result
