"""Who reviews: each stage's reviewer rule turned into review tasks, one statement per rule
whatever the number of accesses.

No self-review: a rule never picks the holder themselves; where it finds nobody who may
decide (inactive, no manager, no owner), the task goes to IT administration (no reviewer,
route "fallback"), where again anybody but the holder decides.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection

from governance.choices import ReviewerRule, TaskRoute


def _tables() -> dict[str, str]:
    from catalogue.models import CatalogueItem, CostCentre, Department, Employee
    from governance.models import Review, ReviewTask
    from provisioning.models import Entitlement

    user = get_user_model()
    names = {
        "review": Review,
        "task": ReviewTask,
        "entitlement": Entitlement,
        "employee": Employee,
        "department": Department,
        "costcentre": CostCentre,
        "item": CatalogueItem,
        "user": user,
    }
    tables = {key: model._meta.db_table for key, model in names.items()}
    tables["user_groups"] = user.groups.through._meta.db_table
    return {key: connection.ops.quote_name(value) for key, value in tables.items()}


# The reviews of one campaign that a stage still has to decide.
_CASES = """
FROM {review} r
JOIN {entitlement} e ON e.id = r.entitlement_id
JOIN {employee} h ON h.id = e.holder_id
"""
_WHERE = "WHERE r.campaign_id = %(campaign)s AND r.stage = %(stage)s AND r.decision = 'pending'"
_INSERT = (
    "INSERT INTO {task} (review_id, stage, iteration, reviewer_id, route, decision, comment, "
    "locked) "
)

# One person: the holder's line manager, or the owner of the holder's cost centre.
_ONE_PERSON = {
    ReviewerRule.LINE_MANAGER: "LEFT JOIN {employee} m ON m.id = h.manager_id",
    ReviewerRule.COST_CENTRE_OWNER: """
        JOIN {department} d ON d.id = h.department_id
        JOIN {costcentre} c ON c.id = COALESCE(h.cost_centre_id, d.cost_centre_id)
        LEFT JOIN {employee} m ON m.id = c.owner_id
    """,
}
_ONE_PERSON_SQL = (
    _INSERT
    + "SELECT r.id, %(stage)s, 1, m.user_id, %(route)s, 'pending', '', false"
    + _CASES
    + "{join} JOIN {user} mu ON mu.id = m.user_id "
    + _WHERE
    + " AND m.is_active AND mu.is_active AND m.user_id <> h.user_id"
)

# Every active member of the service's owner group (the group that fulfils it).
_ITEM_OWNER_SQL = (
    _INSERT
    + "SELECT r.id, %(stage)s, 1, ug.user_id, %(route)s, 'pending', '', false"
    + _CASES
    + """
JOIN {item} i ON i.id = e.item_id
JOIN {user_groups} ug ON ug.group_id = i.service_owner_id
JOIN {user} u ON u.id = ug.user_id
"""
    + _WHERE
    + " AND u.is_active AND ug.user_id <> h.user_id"
)

# Whatever the rule left without a task: IT administration. (Table names come from the
# models, values are parameters.)
_FALLBACK_SQL = (
    _INSERT  # noqa: S608
    + "SELECT r.id, %(stage)s, 1, NULL, %(route)s, 'pending', '', false"
    + _CASES
    + _WHERE
    + " AND NOT EXISTS (SELECT 1 FROM {task} t WHERE t.review_id = r.id AND t.stage = %(stage)s)"
)


def create_tasks(*, campaign_id: int, stage: int, rule: str) -> None:
    """The tasks of ``stage`` for every undecided review of the campaign in that stage."""
    tables = _tables()
    params = {"campaign": campaign_id, "stage": stage}
    with connection.cursor() as cursor:
        if rule in _ONE_PERSON:
            join = _ONE_PERSON[rule].format(**tables)
            cursor.execute(_ONE_PERSON_SQL.format(join=join, **tables), {**params, "route": rule})
        elif rule == ReviewerRule.ITEM_OWNER:
            cursor.execute(_ITEM_OWNER_SQL.format(**tables), {**params, "route": rule})
        fallback = TaskRoute.IT_ADMIN if rule == ReviewerRule.IT_ADMIN else TaskRoute.FALLBACK
        cursor.execute(_FALLBACK_SQL.format(**tables), {**params, "route": fallback})


def escalation_target(task) -> int | None:
    """The reviewer's line manager, when active and not the holder; else IT administration
    (None). ``task`` comes with reviewer__employee__manager__user and the holder."""
    holder_user_id = task.review.entitlement.holder.user_id
    employee = getattr(task.reviewer, "employee", None) if task.reviewer_id else None
    manager = employee.manager if employee is not None else None
    if (
        manager is not None
        and manager.is_active
        and manager.user.is_active
        and manager.user_id != holder_user_id
    ):
        return manager.user_id
    return None
