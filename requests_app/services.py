"""Writes on service requests. Views, the admin, the API and tasks call these.

Every action locks the request row, checks the transition's source state and
permission, fires it, saves, writes the audit record, and enqueues mail after
commit. Nothing here sends mail or talks to other systems inside a transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_fsm import ConcurrentTransition, can_proceed

from catalogue.choices import ApproverKind
from catalogue.models import CatalogueItem, CostCentre, Employee
from itportal import bulk, roles
from itportal.exceptions import ActionConflict
from requests_app import fulfilment, notifications, permissions, signals, sla
from requests_app.choices import (
    MANUAL_FULFILMENT_EVENTS,
    ApprovalStatus,
    EventKind,
    HoldReason,
    RequestState,
)
from requests_app.models import (
    RATING_COMMENT_MAX_LENGTH,
    RATING_MAX,
    RATING_MIN,
    RATING_WINDOW_DAYS,
    Approval,
    FulfilmentTask,
    Rating,
    RequestEvent,
    RequestHold,
    ServiceRequest,
    Submission,
    Substitution,
)

# --- helpers -----------------------------------------------------------------


def _lock(request_id: int, expected_state: str | None = None) -> ServiceRequest:
    """Lock the request row; ``expected_state`` is the state the user saw when acting.

    If the request has moved on since (someone else acted first), the action is a
    conflict even when the new state would allow it too: approve vs. cancel must not
    both go through.
    """
    try:
        service_request = (
            ServiceRequest.objects.select_for_update(of=("self",))
            .select_related("beneficiary__user", "item", "requester")
            .get(pk=request_id)
        )
    except ServiceRequest.DoesNotExist as exc:
        raise ActionConflict(_("This request does not exist.")) from exc
    if expected_state is not None and service_request.state != expected_state:
        raise ActionConflict(
            _("This request was changed in the meantime: it is now “%(state)s”.")
            % {"state": service_request.get_state_display()}
        )
    return service_request


FULFILMENT_ACTIONS = frozenset({"take", "complete", "fail"})


def _fire(
    service_request: ServiceRequest,
    name: str,
    *,
    user,
    comment: str = "",
    on_behalf_of=None,
    check_permission: bool = True,
    **kwargs,
) -> RequestEvent:
    """Fire transition ``name`` as ``user`` and write its audit record.

    Who may act is checked before the state: a user who may never take the action
    gets 403 whatever the state, one who may but comes too late gets a conflict.
    """
    method = getattr(service_request, name)
    if check_permission and not _role_may(service_request, name, user):
        if name in FULFILMENT_ACTIONS and permissions.barred_from_fulfilment(service_request, user):
            raise PermissionDenied(
                _(
                    "This service must be fulfilled by someone who is not involved in the "
                    "request: you placed it, receive it or approved it."
                )
            )
        raise PermissionDenied(_("You may not do this on this request."))
    if not can_proceed(method):
        raise ActionConflict(
            _("This action is not possible while the request is “%(state)s”.")
            % {"state": service_request.get_state_display()}
        )
    from_state = service_request.state
    try:
        method(**kwargs)
        if service_request.hold_reason and service_request.state not in sla.OPEN:
            _end_hold(service_request, user=user)  # fulfilled, failed or cancelled on hold
        service_request.save()
    except ConcurrentTransition as exc:
        raise ActionConflict() from exc
    return RequestEvent.objects.create(
        request=service_request,
        actor=user if user is not None and user.is_authenticated else None,
        on_behalf_of=on_behalf_of,
        kind=name,
        from_state=from_state,
        to_state=service_request.state,
        comment=comment,
    )


def _role_may(service_request: ServiceRequest, name: str, user) -> bool:
    """Whether the transition's ``permission=`` admits ``user``, in any source state."""
    return any(
        t.has_perm(service_request, user)
        for t in service_request.get_all_state_transitions()
        if t.name == name
    )


def _after_approval(service_request: ServiceRequest) -> None:
    """Tell whoever fulfils it: people by mail (outbox); automations by a signal inside this
    transaction, so their work (provisioning jobs) is recorded with the approval."""
    sla.set_due_date(service_request)
    notifications.notify(service_request, notifications.APPROVED)
    signals.request_approved.send(sender=ServiceRequest, request_id=service_request.pk)


def _require_text(value: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({"comment": message})
    return value


# --- approver resolution -------------------------------------------------------


def _walk_up(employee: Employee | None, excluded: set[int], notes: list[str]) -> Employee | None:
    """The first active person from ``employee`` up the manager chain who may decide."""
    seen: set[int] = set()
    while employee is not None and employee.pk not in seen:
        seen.add(employee.pk)
        if employee.user_id in excluded:
            notes.append(
                _("%(name)s may not decide on this request (four-eyes principle).")
                % {"name": employee.display_name}
            )
        elif not (employee.is_active and employee.user.is_active):
            notes.append(_("%(name)s is inactive.") % {"name": employee.display_name})
        else:
            return employee
        employee = employee.manager
    return None


def _fallback_group(notes: list[str]) -> Group:
    notes.append(_("No eligible approver found; IT administration decides."))
    group, _created = Group.objects.get_or_create(name=roles.IT_ADMIN)
    return group


# Approver kinds another app resolves (provisioning: owner of a directory group):
# kind → resolver(step, service_request) -> Employee | None.
APPROVER_RESOLVERS: dict[str, object] = {}


def register_approver_resolver(kind: str, resolver) -> None:
    APPROVER_RESOLVERS[kind] = resolver


def resolve_approver(step: dict, service_request: ServiceRequest, *, taken: set[int] = frozenset()):
    """Resolve one policy step to ``(user, group, note)``; never skips a step.

    ``taken`` holds the approvers of the request's earlier steps: one person never
    decides two steps of the same request, so the step goes up past them.
    """
    excluded = permissions.excluded_user_ids(service_request) | set(taken)
    notes: list[str] = []
    kind = step["approver_kind"]
    start: Employee | None = None
    if kind == ApproverKind.LINE_MANAGER:
        start = service_request.beneficiary.manager
        if start is None:
            notes.append(_("The beneficiary has no line manager on record."))
    elif kind == ApproverKind.COST_CENTRE_OWNER:
        start = service_request.cost_centre.owner
        if start is None:
            notes.append(_("The cost centre has no owner on record."))
    elif kind == ApproverKind.PERSON_FIELD:
        answer = service_request.answers.get(step.get("person_field_key") or "") or {}
        uid = answer.get("uid") if isinstance(answer, dict) else None
        start = Employee.objects.select_related("user").filter(personnel_number=uid).first()
        if start is None:
            notes.append(_("No person was chosen for this step."))
    elif kind in APPROVER_RESOLVERS:
        start = APPROVER_RESOLVERS[kind](step, service_request)
        if start is None:
            notes.append(_("The responsible person for this step is not known."))
    elif kind == ApproverKind.GROUP:
        group = Group.objects.filter(pk=step.get("group_id")).first()
        if group is not None:
            eligible = group.user_set.filter(is_active=True).exclude(pk__in=excluded)
            if eligible.exists():
                return None, group, ""
            notes.append(
                _("No member of %(group)s may decide on this request.") % {"group": group.name}
            )
        return None, _fallback_group(notes), " ".join(notes)
    if start is not None:
        start = Employee.objects.select_related("user", "manager__user").get(pk=start.pk)
    approver = _walk_up(start, excluded, notes)
    if approver is not None:
        return approver.user, None, " ".join(notes)
    return None, _fallback_group(notes), " ".join(notes)


# Checks other apps add to ordering and approving (governance: segregation of duties);
# each is called as check(beneficiary=, item=, answers=, needed_from=, service_request=) and
# raises ValidationError. ``answers``, ``needed_from``: the order form's answers and the day the
# service is needed from (a new order has no request yet).
ORDER_CHECKS: list = []


def register_order_check(check) -> None:
    if check not in ORDER_CHECKS:
        ORDER_CHECKS.append(check)


def _run_order_checks(
    *, beneficiary, item, answers=None, needed_from=None, service_request=None
) -> None:
    if service_request is not None:
        answers, needed_from = service_request.answers, service_request.needed_from
    else:
        needed_from = needed_from_answer(item.snapshot(), answers or {}) or needed_from
    for check in ORDER_CHECKS:
        check(
            beneficiary=beneficiary,
            item=item,
            answers=answers,
            needed_from=needed_from,
            service_request=service_request,
        )


def _route_past_deciders(approval: Approval, service_request: ServiceRequest) -> None:
    """The step about to start belongs to someone who decided an earlier step (as a group
    member, or as a substitute, which routing at submission could not know): pass it up
    their manager chain, else to IT administration, with the reason on the step, instead
    of leaving it to a person who may not decide it."""
    excluded = permissions.excluded_user_ids(service_request)
    notes: list[str] = []
    if approval.approver_id is None:
        group = approval.group
        if group is None or group.name == roles.IT_ADMIN:
            return  # IT administration: the top; escalation keeps reminding
        if group.user_set.filter(is_active=True).exclude(pk__in=excluded).exists():
            return  # another member decides
        notes.append(
            _("No member of %(group)s may decide on this request.") % {"group": group.name}
        )
        approval.group = _fallback_group(notes)
        approval.routing_note = " ".join([approval.routing_note, *notes]).strip()[:300]
        approval.save(update_fields=["group", "routing_note"])
        return
    if approval.approver_id not in excluded:
        return
    employee = (
        Employee.objects.select_related("user", "manager__user")
        .filter(user_id=approval.approver_id)
        .first()
    )
    target = _walk_up(employee, excluded, notes)
    approval.escalated_from.add(approval.approver_id)
    if target is not None:
        approval.approver, approval.group = target.user, None
    else:
        approval.approver, approval.group = None, _fallback_group(notes)
    approval.routing_note = " ".join([approval.routing_note, *notes]).strip()[:300]
    approval.save(update_fields=["approver", "group", "routing_note"])


def _activate(approval: Approval, now: datetime) -> None:
    approval.status = ApprovalStatus.PENDING
    approval.activated_at = now
    approval.save(update_fields=["status", "activated_at"])


# --- creating and submitting ---------------------------------------------------


def request_create(
    *,
    requester,
    item: CatalogueItem,
    item_version: int,
    beneficiary: Employee,
    cost_centre: CostCentre,
    answers: dict,
    justification: str = "",
    submit: bool = True,
    submission: Submission | None = None,
    needed_from=None,
) -> ServiceRequest:
    """Create a request from validated form data, and submit it unless a draft is wanted.

    ``submission``: the joint order (cart, bundle) the request is placed with;
    ``needed_from``: the day the beneficiary needs the service (a joiner's first day), unless
    the form's own "needed from" field answers it.
    """
    requester_employee = getattr(requester, "employee", None)
    if requester_employee is None:
        raise PermissionDenied(_("Only employees can order services."))
    if not CatalogueItem.objects.orderable_by(requester_employee).filter(pk=item.pk).exists():
        raise PermissionDenied(_("You may not order this service."))
    if item_version != item.version:
        raise ValidationError({"item_version": _("This service was changed; please reload.")})
    if beneficiary.pk != requester_employee.pk and not item.orderable_for_others:
        raise ValidationError({"beneficiary": _("This service can only be ordered for yourself.")})
    if not beneficiary.is_active:
        raise ValidationError({"beneficiary": _("The beneficiary is not active.")})
    _run_order_checks(beneficiary=beneficiary, item=item, answers=answers, needed_from=needed_from)
    with transaction.atomic():
        item = CatalogueItem.objects.select_for_update().get(pk=item.pk)
        if item.version != item_version:
            raise ValidationError({"item_version": _("This service was changed; please reload.")})
        snapshot = item.snapshot()
        service_request = ServiceRequest.objects.create(
            requester=requester,
            beneficiary=beneficiary,
            item=item,
            item_version=item.version,
            item_snapshot=snapshot,
            answers=answers,
            cost_centre=cost_centre,
            justification=justification,
            price_once=item.price_once,
            price_monthly=item.price_monthly,
            fulfilment_group=item.service_owner,
            submission=submission,
            # The item's own "needed from" answer, else the one given for the whole order.
            needed_from=needed_from_answer(snapshot, answers) or needed_from,
        )
        RequestEvent.objects.create(
            request=service_request,
            actor=requester,
            kind=EventKind.CREATE,
            from_state="",
            to_state=service_request.state,
        )
        if submit:
            request_submit(request_id=service_request.pk, user=requester)
            service_request.refresh_from_db()
    return service_request


def needed_from_answer(snapshot: dict, answers: dict) -> date | None:
    """The answer of the form's 'needed from' date field, if it has one and it was given."""
    key = next((f["key"] for f in snapshot.get("fields", []) if f.get("needed_from")), None)
    value = (answers or {}).get(key) if key else None
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _steps_with_charge_approval(service_request: ServiceRequest) -> list[dict]:
    """The item's approval steps; charging a cost centre that is not the requester's to
    charge adds a first step for its owner, unless the policy already has one."""
    steps = list(service_request.item_snapshot.get("approval_policy", []))
    if any(step["approver_kind"] == ApproverKind.COST_CENTRE_OWNER for step in steps):
        return steps
    requester = Employee.objects.select_related("department").get(user=service_request.requester)
    if requester.may_charge(service_request.cost_centre):
        return steps
    with translation.override(settings.LANGUAGE_CODE):
        label = _("Charge to a cost centre other than your own")
    return [{"approver_kind": ApproverKind.COST_CENTRE_OWNER, "label": label}, *steps]


@transaction.atomic
def request_submit(*, request_id: int, user, expected_state: str | None = None) -> ServiceRequest:
    service_request = _lock(request_id, expected_state)
    _fire(service_request, "submit", user=user)
    if service_request.submission_id is None:
        # Confirmed by mail to whoever ordered (and in the portal to them and the
        # beneficiary); a joint order (cart) confirms all its requests in one mail of its own.
        notifications.notify(service_request, notifications.SUBMITTED)
    now = timezone.now()
    steps = _steps_with_charge_approval(service_request)
    approvals = []
    taken: set[int] = set()
    for position, step in enumerate(steps, start=1):
        approver, group, note = resolve_approver(step, service_request, taken=taken)
        if approver is not None:
            taken.add(approver.pk)
        approvals.append(
            Approval(
                request=service_request,
                position=position,
                approver_kind=step["approver_kind"],
                label=step.get("label") or "",
                approver=approver,
                group=group,
                routing_note=note[:300],
            )
        )
    Approval.objects.bulk_create(approvals)
    # Kept on the row (saved by the transition below) so that reports need no join.
    service_request.approval_steps = len(approvals)
    if approvals:
        _activate(service_request.approvals.order_by("position").first(), now)
        _fire(service_request, "start_approval", user=user, check_permission=False)
        notifications.notify(service_request, notifications.APPROVAL_NEEDED)
    else:
        _fire(service_request, "approve_without_steps", user=user, check_permission=False)
        _after_approval(service_request)
    return service_request


# --- deciding ----------------------------------------------------------------------


def _decided_before(service_request: ServiceRequest, user) -> bool:
    """Whether ``user`` decided, or could have decided, a step that is decided already."""
    decided = service_request.approvals.filter(
        status__in=[ApprovalStatus.APPROVED, ApprovalStatus.REJECTED]
    )
    return any(
        approval.decided_by_id == user.pk
        or permissions.deciding_principal(service_request, user, approval=approval) is not None
        for approval in decided
    )


def _decide(
    request_id: int,
    user,
    *,
    approve: bool,
    comment: str,
    expected_state: str | None = None,
    expected_approval: int | None = None,
) -> ServiceRequest:
    service_request = _lock(request_id, expected_state)
    name = "approve" if approve else "reject"
    if not can_proceed(getattr(service_request, name)):
        raise ActionConflict(
            _("This request has already been decided: it is now “%(state)s”.")
            % {"state": service_request.get_state_display()}
        )
    approval = permissions.current_approval(service_request)
    if expected_approval is not None and (approval is None or approval.pk != expected_approval):
        # The step the user looked at was decided meanwhile (a second click, another tab):
        # never let one click decide the next step too.
        raise ActionConflict(_("This step has already been decided; the request has moved on."))
    principal = permissions.deciding_principal(service_request, user, approval=approval)
    if principal is not None and approve:
        # What was allowed when ordering may conflict now (two orders placed in parallel,
        # a rule added since): the approver is told and may reject instead.
        _run_order_checks(
            beneficiary=service_request.beneficiary,
            item=service_request.item,
            service_request=service_request,
        )
    if principal is None:
        if permissions.barred_by_earlier_decision(service_request, user, approval=approval):
            raise PermissionDenied(
                _(
                    "An earlier step of this request was decided by you or by the person "
                    "you stand in for; another person must decide this one (four-eyes "
                    "principle)."
                )
            )
        if _decided_before(service_request, user):
            # Someone (or the user, in another tab) decided the step the user saw; the
            # request has moved on to a step that is not theirs.
            raise ActionConflict(_("This step has already been decided; the request has moved on."))
        raise PermissionDenied(_("You may not decide on this request."))
    now = timezone.now()
    approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    approval.decided_by = user
    approval.on_behalf_of = principal if principal.pk != user.pk else None
    approval.decided_at = now
    approval.comment = comment
    approval.save()
    permissions.forget_deciders(service_request)
    if approve:
        following = (
            service_request.approvals.filter(status=ApprovalStatus.WAITING)
            .order_by("position")
            .first()
        )
        if following is not None:
            _route_past_deciders(following, service_request)
            _activate(following, now)
    else:
        service_request.approvals.filter(status=ApprovalStatus.WAITING).update(
            status=ApprovalStatus.WITHDRAWN
        )
    # The permission was checked above against the locked row, with substitutes.
    _fire(
        service_request,
        name,
        user=user,
        comment=comment,
        on_behalf_of=approval.on_behalf_of,
        check_permission=False,
    )
    if service_request.state == RequestState.AWAITING_APPROVAL:
        notifications.notify(service_request, notifications.APPROVAL_NEEDED)
    elif service_request.state == RequestState.APPROVED:
        _after_approval(service_request)
    else:
        notifications.notify(service_request, notifications.REJECTED)
    return service_request


@transaction.atomic
def request_approve(
    *,
    request_id: int,
    user,
    comment: str = "",
    expected_state: str | None = None,
    expected_approval: int | None = None,
) -> ServiceRequest:
    return _decide(
        request_id,
        user,
        approve=True,
        comment=(comment or "").strip(),
        expected_state=expected_state,
        expected_approval=expected_approval,
    )


@transaction.atomic
def request_reject(
    *,
    request_id: int,
    user,
    comment: str,
    expected_state: str | None = None,
    expected_approval: int | None = None,
) -> ServiceRequest:
    comment = _require_text(comment, _("Please give a reason for the rejection."))
    return _decide(
        request_id,
        user,
        approve=False,
        comment=comment,
        expected_state=expected_state,
        expected_approval=expected_approval,
    )


# --- requester and fulfilment actions ---------------------------------------------------


@transaction.atomic
def request_cancel(
    *, request_id: int, user, comment: str = "", expected_state: str | None = None
) -> ServiceRequest:
    service_request = _lock(request_id, expected_state)
    _fire(service_request, "cancel", user=user, comment=(comment or "").strip())
    service_request.approvals.filter(
        status__in=[ApprovalStatus.PENDING, ApprovalStatus.WAITING]
    ).update(status=ApprovalStatus.WITHDRAWN)
    notifications.notify(service_request, notifications.CANCELLED)
    return service_request


# Before approval nothing has happened yet; an approved request still waiting for a
# person (no automation claimed it) has not either.
WITHDRAWABLE_STATES = (
    RequestState.DRAFT,
    RequestState.SUBMITTED,
    RequestState.AWAITING_APPROVAL,
    RequestState.APPROVED,
)


@transaction.atomic
def request_withdraw_for_leaver(*, request_id: int, reason: str) -> ServiceRequest | None:
    """The beneficiary left: cancel their open request with a note, as the system.

    Requests already being fulfilled stay (the fulfiller sees the person has left); an
    approved request an automation has claimed is left to its jobs and the revocation that
    follows. Returns None when the request was left alone."""
    service_request = _lock(request_id)
    if service_request.state not in WITHDRAWABLE_STATES:
        return None
    if service_request.state == RequestState.APPROVED and not fulfilment.needs_manual_fulfilment(
        service_request
    ):
        return None
    _fire(service_request, "cancel", user=None, comment=reason, check_permission=False)
    service_request.approvals.filter(
        status__in=[ApprovalStatus.PENDING, ApprovalStatus.WAITING]
    ).update(status=ApprovalStatus.WITHDRAWN)
    notifications.notify(service_request, notifications.CANCELLED)
    return service_request


@transaction.atomic
def request_take(*, request_id: int, user, expected_state: str | None = None) -> ServiceRequest:
    service_request = _lock(request_id, expected_state)
    _fire(service_request, "take", user=user, assignee=user)
    return service_request


@transaction.atomic
def request_complete(
    *, request_id: int, user, note: str = "", expected_state: str | None = None
) -> ServiceRequest:
    service_request = _lock(request_id, expected_state)
    note = (note or "").strip()
    _fire(service_request, "complete", user=user, comment=note, note=note)
    signals.request_fulfilled.send(sender=ServiceRequest, service_request=service_request)
    notifications.notify(service_request, notifications.FULFILLED)
    return service_request


@transaction.atomic
def request_fail(
    *, request_id: int, user, reason: str, expected_state: str | None = None
) -> ServiceRequest:
    reason = _require_text(reason, _("Please say why the request failed."))
    service_request = _lock(request_id, expected_state)
    _fire(service_request, "fail", user=user, comment=reason, reason=reason)
    notifications.notify(service_request, notifications.FAILED)
    return service_request


@transaction.atomic
def request_reopen(
    *, request_id: int, user, comment: str = "", expected_state: str | None = None
) -> ServiceRequest:
    service_request = _lock(request_id, expected_state)
    _fire(service_request, "reopen", user=user, comment=(comment or "").strip())
    _after_approval(service_request)
    return service_request


# --- automated fulfilment (called by provisioning) ------------------------------------


@transaction.atomic
def request_start_automation(*, request_id: int, comment: str = "") -> ServiceRequest:
    """An automation takes the approved request into fulfilment."""
    service_request = _lock(request_id)
    _fire(service_request, "start_automation", user=None, comment=comment, check_permission=False)
    return service_request


def _worked_by_hand(service_request: ServiceRequest) -> bool:
    """Whether a person took, completed, failed or reopened the request (audit trail)."""
    return service_request.events.filter(
        actor__isnull=False, kind__in=MANUAL_FULFILMENT_EVENTS
    ).exists()


@transaction.atomic
def request_finish_automation(
    *, request_id: int, succeeded: bool, note: str, done_by_hand: bool = False
) -> ServiceRequest:
    """The automation is done: fulfilled, or failed with the reason for IT admins.

    ``done_by_hand``: part of the work was done by a person outside the portal's
    transitions (a provisioning job marked done by hand); the request then does not
    count as fulfilled automatically.
    """
    service_request = _lock(request_id)
    if service_request.state != RequestState.IN_FULFILMENT:
        return service_request  # already settled (by hand or a parallel worker)
    if succeeded:
        service_request.fulfilled_automatically = not done_by_hand and not _worked_by_hand(
            service_request
        )
        _fire(
            service_request, "complete", user=None, comment=note, check_permission=False, note=note
        )
        signals.request_fulfilled.send(sender=ServiceRequest, service_request=service_request)
        notifications.notify(service_request, notifications.FULFILLED)
    else:
        _fire(service_request, "fail", user=None, comment=note, check_permission=False, reason=note)
        notifications.notify(service_request, notifications.FAILED)
    return service_request


def requests_finish_automation(
    *, notes: dict[int, str], done_by_hand: frozenset[int] = frozenset()
) -> list[ServiceRequest]:
    """``request_finish_automation(succeeded=True)`` for many requests in one transaction
    (coalesced provisioning): the locks, the manual-work check, the transitions and their
    audit records in one statement each, then each request's own follow-ups (the
    ``requests_fulfilled`` receivers, the mails) written once for all of them: the same rows
    as one by one. ``notes``: request id → resolution note; ``done_by_hand``: ids with a job
    marked done by hand."""
    from django.db.models.signals import post_save

    # No savepoint of its own: called inside a batch's record transaction, whose failure
    # rolls back everything anyway (two statements fewer per batch).
    with transaction.atomic(savepoint=False), bulk.memo_scope():
        rows = list(
            ServiceRequest.objects.select_for_update(of=("self",))
            .select_related("beneficiary__user", "item", "requester")
            # The item only as a fallback of its snapshot: not its text and search columns.
            .defer("item__description", "item__search_vector", "item__search_words")
            .filter(pk__in=list(notes), state=RequestState.IN_FULFILMENT)
            .order_by("pk")
        )
        if not rows:
            return []
        by_hand = set(
            RequestEvent.objects.filter(
                request_id__in=[row.pk for row in rows],
                actor__isnull=False,
                kind__in=MANUAL_FULFILMENT_EVENTS,
            ).values_list("request_id", flat=True)
        )
        events = []
        for row in rows:
            row.fulfilled_automatically = row.pk not in done_by_hand and row.pk not in by_hand
            from_state = row.state
            row.complete(note=notes[row.pk])
            events.append(
                RequestEvent(
                    request=row,
                    kind=EventKind.COMPLETE,
                    from_state=from_state,
                    to_state=row.state,
                    comment=notes[row.pk],
                )
            )
        bulk.update_rows(rows, ["state", "resolution_note", "closed_at", "fulfilled_automatically"])
        for row in rows:  # saved: the concurrency guard compares with the new state now
            row._update_initial_state()
        RequestEvent.objects.bulk_create(events)
        for event in events:  # what RequestEvent.objects.create would tell (webhooks, metrics)
            post_save.send(
                sender=RequestEvent,
                instance=event,
                created=True,
                update_fields=None,
                raw=False,
                using=event._state.db,
            )
        signals.requests_fulfilled.send(sender=ServiceRequest, service_requests=rows)
        notifications.notify_many(rows, notifications.FULFILLED)
    return rows


# --- satisfaction ----------------------------------------------------------------------


def rating_window_open(service_request: ServiceRequest, *, now: datetime | None = None) -> bool:
    """Fulfilled, and fulfilled no more than ``RATING_WINDOW_DAYS`` ago."""
    if service_request.state != RequestState.FULFILLED or service_request.closed_at is None:
        return False
    now = now or timezone.now()
    return now <= service_request.closed_at + timedelta(days=RATING_WINDOW_DAYS)


def may_rate(service_request: ServiceRequest, user) -> bool:
    """Whether ``user`` may rate (or change the rating of) the request now."""
    return (
        user.is_authenticated
        and service_request.requester_id == user.pk
        and rating_window_open(service_request)
    )


def _clean_score(score) -> int:
    """An int, or a string of digits (a form post), from RATING_MIN to RATING_MAX."""
    value = None
    if isinstance(score, int) and not isinstance(score, bool):
        value = score
    elif isinstance(score, str) and score.strip().isascii() and score.strip().isdecimal():
        value = int(score.strip())
    if value is None or not RATING_MIN <= value <= RATING_MAX:
        raise ValidationError(
            {"score": _("Please choose a score from %(min)s to %(max)s.")
             % {"min": RATING_MIN, "max": RATING_MAX}}
        )  # fmt: skip
    return value


def _clean_comment(comment) -> str:
    comment = (comment or "").strip()
    if len(comment) > RATING_COMMENT_MAX_LENGTH:
        raise ValidationError(
            {"comment": _("The comment may have at most %(max)s characters.")
             % {"max": RATING_COMMENT_MAX_LENGTH}}
        )  # fmt: skip
    if "\x00" in comment:
        raise ValidationError({"comment": _("The comment contains invalid characters.")})
    return comment


@transaction.atomic
def request_rate(*, request_id: int, user, score: int, comment: str = "") -> Rating:
    """The requester rates a fulfilled request from 1 to 5, with an optional comment.

    Only the requester, only when fulfilled, and until ``RATING_WINDOW_DAYS`` after
    fulfilment; within that window a second call changes the rating. Each rating and
    change is written to the timeline (the score only: the comment goes to controlling).
    """
    score = _clean_score(score)
    comment = _clean_comment(comment)
    service_request = _lock(request_id)
    if not (user.is_authenticated and service_request.requester_id == user.pk):
        raise PermissionDenied(_("Only the person who placed the request can rate it."))
    if service_request.state != RequestState.FULFILLED:
        raise ActionConflict(
            _("Only fulfilled requests can be rated; this one is “%(state)s”.")
            % {"state": service_request.get_state_display()}
        )
    if not rating_window_open(service_request):
        raise ActionConflict(
            _("Ratings can be given or changed until %(days)s days after fulfilment.")
            % {"days": RATING_WINDOW_DAYS}
        )
    rating, _created = Rating.objects.update_or_create(
        request=service_request,
        defaults={
            "score": score,
            "comment": comment,
            "rated_by": user,
            "rated_at": timezone.now(),
        },
    )
    RequestEvent.objects.create(
        request=service_request,
        actor=user,
        kind=EventKind.RATE,
        from_state=service_request.state,
        to_state=service_request.state,
        comment=_("Score: %(score)s of %(max)s") % {"score": score, "max": RATING_MAX},
    )
    return rating


# --- substitutes -------------------------------------------------------------------


def substitution_create(*, principal, substitute, starts_on, ends_on) -> Substitution:
    if substitute.pk == principal.pk:
        raise ValidationError({"substitute": _("You cannot be your own substitute.")})
    if ends_on < starts_on:
        raise ValidationError({"ends_on": _("The end date must not be before the start date.")})
    if not substitute.is_active:
        raise ValidationError({"substitute": _("The substitute is not active.")})
    return Substitution.objects.create(
        principal=principal, substitute=substitute, starts_on=starts_on, ends_on=ends_on
    )


def substitution_delete(*, substitution_id: int, user) -> None:
    deleted, _rows = Substitution.objects.filter(pk=substitution_id, principal=user).delete()
    if not deleted:
        raise PermissionDenied(_("You can only remove your own substitutes."))


# --- reminders and escalation ---------------------------------------------------------


def _other_steps_approvers(approval: Approval, service_request: ServiceRequest) -> set[int]:
    """The named approvers of the request's other steps still to decide: escalating to one
    of them would leave their own step to nobody (they may decide only one)."""
    return set(
        service_request.approvals.filter(
            status__in=[ApprovalStatus.PENDING, ApprovalStatus.WAITING], approver__isnull=False
        )
        .exclude(pk=approval.pk)
        .values_list("approver_id", flat=True)
    )


def _escalation_target(approval: Approval, service_request: ServiceRequest):
    """The next level above the current approver: their manager chain, else IT admins.
    Never whoever decided an earlier step, nor the approver of another open step."""
    excluded = permissions.excluded_user_ids(service_request) | _other_steps_approvers(
        approval, service_request
    )
    notes: list[str] = []
    if approval.approver_id is not None:
        employee = (
            Employee.objects.select_related("manager__user")
            .filter(user_id=approval.approver_id)
            .first()
        )
        target = _walk_up(employee.manager if employee else None, excluded, notes)
        if target is not None:
            return target.user, None
    admins = Group.objects.filter(name=roles.IT_ADMIN).first()
    if admins is None or approval.group_id == admins.pk:
        return None, None  # already at the top: keep reminding
    return None, admins


def approvals_remind_and_escalate(*, now: datetime | None = None) -> dict[str, int]:
    """Remind approvers of overdue steps, then escalate them; safe to run at any time.

    Counts working days of the configured Land since the step became pending:
    a reminder after ``PORTAL_REMINDER_WORKING_DAYS``, an escalation to the next
    level after ``PORTAL_ESCALATION_WORKING_DAYS``.
    """
    from django.conf import settings

    from itportal.workdays import working_days_between

    now = now or timezone.now()
    today = timezone.localdate(now)
    counts = {"reminded": 0, "escalated": 0}
    pending_ids = list(
        Approval.objects.filter(
            status=ApprovalStatus.PENDING, request__state=RequestState.AWAITING_APPROVAL
        ).values_list("pk", flat=True)
    )
    for approval_id in pending_ids:
        with transaction.atomic():
            # Lock the request row as well, like every service does first: a request
            # being decided right now is skipped (the next run sees it), and a decision
            # arriving now waits for the escalation instead of overwriting it.
            approval = (
                Approval.objects.select_for_update(skip_locked=True, of=("self", "request"))
                .select_related("request__beneficiary__user", "approver", "group")
                .filter(pk=approval_id, status=ApprovalStatus.PENDING)
                .first()
            )
            if approval is None or approval.activated_at is None:
                continue
            waited = working_days_between(timezone.localdate(approval.activated_at), today)
            service_request = approval.request
            if waited >= settings.PORTAL_ESCALATION_WORKING_DAYS:
                approver, group = _escalation_target(approval, service_request)
                if approver is not None or group is not None:
                    previous = approval.approver_display
                    if approval.approver_id:
                        approval.escalated_from.add(approval.approver_id)
                    approval.approver = approver
                    approval.group = group
                    approval.escalation_level += 1
                    approval.activated_at = now
                    approval.reminded_at = None
                    approval.save()
                    RequestEvent.objects.create(
                        request=service_request,
                        kind=EventKind.ESCALATE,
                        from_state=service_request.state,
                        to_state=service_request.state,
                        comment=ngettext(
                            "Step “%(step)s” passed from %(old)s to %(new)s "
                            "after %(days)s working day.",
                            "Step “%(step)s” passed from %(old)s to %(new)s "
                            "after %(days)s working days.",
                            waited,
                        )
                        % {
                            "step": approval.label or approval.get_approver_kind_display(),
                            "old": previous,
                            "new": approval.approver_display,
                            "days": waited,
                        },
                    )
                    notifications.notify(service_request, notifications.APPROVAL_NEEDED)
                    counts["escalated"] += 1
                    continue
            if waited >= settings.PORTAL_REMINDER_WORKING_DAYS and approval.reminded_at is None:
                approval.reminded_at = now
                approval.save(update_fields=["reminded_at"])
                RequestEvent.objects.create(
                    request=service_request,
                    kind=EventKind.REMIND,
                    from_state=service_request.state,
                    to_state=service_request.state,
                    comment=ngettext(
                        "Reminder to %(approver)s after %(days)s working day.",
                        "Reminder to %(approver)s after %(days)s working days.",
                        waited,
                    )
                    % {"approver": approval.approver_display, "days": waited},
                )
                notifications.notify(service_request, notifications.REMINDER)
                counts["reminded"] += 1
    return counts


# --- deciding several requests of one joint order ---------------------------------------

DECIDE_TOGETHER_MAX = 50


@transaction.atomic
def requests_decide_together(
    *, user, steps: list[tuple[int, int | None]], approve: bool, comment: str = ""
) -> list[ServiceRequest]:
    """Approve or reject several requests at once: all or none.

    ``steps``: (request id, id of the step the user saw). Each request gets its own
    decision record through ``request_approve`` / ``request_reject``, so the four-eyes rules
    and the checks against a step decided meanwhile hold for each one.
    """
    if not steps:
        raise ValidationError({"request": _("Choose at least one request.")})
    if len(steps) > DECIDE_TOGETHER_MAX:
        raise ValidationError(
            {
                "request": _("Decide at most %(max)s requests at once.")
                % {"max": DECIDE_TOGETHER_MAX}
            }
        )
    decide = request_approve if approve else request_reject
    decided = []
    for request_id, approval_id in steps:
        try:
            decided.append(
                decide(
                    request_id=request_id,
                    user=user,
                    comment=comment,
                    expected_state=RequestState.AWAITING_APPROVAL,
                    expected_approval=approval_id,
                )
            )
        except ActionConflict as exc:
            raise ActionConflict(
                _("Request #%(number)s: %(reason)s. Nothing was decided.")
                % {"number": request_id, "reason": str(exc.message).rstrip(".")}
            ) from exc
        except PermissionDenied as exc:
            raise PermissionDenied(
                _("You may not decide on request #%(number)s. Nothing was decided.")
                % {"number": request_id}
            ) from exc
    return decided


# --- fulfilment tasks: work nobody ordered (a leaver's notebook to collect) ---------------


def task_open(*, request_id: int, kind: str, reason: str = "") -> FulfilmentTask | None:
    """Open a task for the group that fulfilled ``request_id``; call inside the caller's
    transaction. Once per request and kind: None when it exists already (open or done)."""
    service_request = (
        ServiceRequest.objects.select_related("beneficiary").filter(pk=request_id).first()
    )
    if service_request is None or kind not in FulfilmentTask.Kind.values:
        return None
    with transaction.atomic():
        task, created = FulfilmentTask.objects.get_or_create(
            request=service_request,
            kind=kind,
            defaults={
                "person": service_request.beneficiary,
                "fulfilment_group": service_request.fulfilment_group,
                "reason": (reason or "")[:300],
            },
        )
        if not created:
            return None
        notifications.notify_task(task)
    return task


def may_complete_task(task: FulfilmentTask, user) -> bool:
    return user.is_authenticated and (
        roles.is_it_admin(user) or task.fulfilment_group_id in roles.group_ids(user)
    )


@transaction.atomic
def task_complete(*, task_id: int, user, note: str = "") -> FulfilmentTask:
    """The group (or IT administration) did it: the task leaves the queue."""
    note = (note or "").strip()
    if len(note) > 500 or "\x00" in note:
        raise ValidationError({"note": _("The note is too long or contains invalid characters.")})
    task = FulfilmentTask.objects.select_for_update().get(pk=task_id)
    if not may_complete_task(task, user):
        raise PermissionDenied(_("This task is not for your groups."))
    if task.state == FulfilmentTask.State.DONE:
        raise ActionConflict(_("This task has been done already."))
    task.state = FulfilmentTask.State.DONE
    task.done_at = timezone.now()
    task.done_by = user
    task.note = note
    task.save()
    return task


# --- comments and holds (the SLA clock) ------------------------------------------------

COMMENT_MAX_LENGTH = 4000


def _clean_text(value, message: str, *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationError({"comment": message})
    if len(value) > COMMENT_MAX_LENGTH or "\x00" in value:
        raise ValidationError(
            {"comment": _("The text is too long or contains invalid characters.")}
        )
    return value


def _may_comment(service_request: ServiceRequest, user) -> bool:
    return (
        is_requesting_side(service_request, user)
        or permissions.can_fulfil(service_request, user)
        or roles.is_it_admin(user)
    )


def is_requesting_side(service_request: ServiceRequest, user) -> bool:
    return user.is_authenticated and user.pk in (
        service_request.requester_id,
        service_request.beneficiary.user_id,
    )


def _audit(
    service_request: ServiceRequest, kind: str, *, user, comment: str, now=None
) -> RequestEvent:
    return RequestEvent.objects.create(
        request=service_request,
        created_at=now or timezone.now(),
        actor=user if user is not None and user.is_authenticated else None,
        kind=kind,
        from_state=service_request.state,
        to_state=service_request.state,
        comment=comment,
    )


def _end_hold(service_request: ServiceRequest, *, user, now: datetime | None = None) -> None:
    """Close the open hold row and move the due date by its working time (the caller saves
    the request)."""
    now = now or timezone.now()
    RequestHold.objects.filter(request=service_request, ended_at__isnull=True).update(
        ended_at=now, ended_by=user if user is not None and user.is_authenticated else None
    )
    service_request.hold_reason = ""
    sla.holds_ended(service_request)


@transaction.atomic
def request_comment(*, request_id: int, user, comment: str) -> RequestEvent:
    """A comment on an open request, in its timeline. A fulfiller's first comment after the
    approval is the response (SLA); the requester's (or beneficiary's) reply ends a hold
    that waits for them."""
    comment = _clean_text(comment, _("Please write a comment."))
    service_request = _lock(request_id)
    if not _may_comment(service_request, user):
        raise PermissionDenied(_("You may not do this on this request."))
    if service_request.state not in (
        RequestState.SUBMITTED,
        RequestState.AWAITING_APPROVAL,
        *sla.OPEN,
    ):
        raise ActionConflict(
            _("This action is not possible while the request is “%(state)s”.")
            % {"state": service_request.get_state_display()}
        )
    now = timezone.now()
    event = _audit(service_request, EventKind.COMMENT, user=user, comment=comment, now=now)
    fields = []
    if (
        service_request.state in sla.OPEN
        and service_request.responded_at is None
        and permissions.can_fulfil(service_request, user)
    ):
        service_request.responded_at = now
        fields.append("responded_at")
    if service_request.hold_reason == HoldReason.REQUESTER and is_requesting_side(
        service_request, user
    ):
        _end_hold(service_request, user=user, now=now)
        fields += ["hold_reason", "sla_paused_seconds", "fulfilment_due_on"]
        _audit(
            service_request,
            EventKind.RESUME,
            user=user,
            comment=_resumed_text(service_request, _("The requester replied.")),
            now=now,
        )
    if fields:
        service_request.save(update_fields=fields)
    return event


def _resumed_text(service_request: ServiceRequest, why: str) -> str:
    if service_request.fulfilment_due_on is None:
        return why
    return "{} {}".format(
        why,
        _("Fulfilment now due on %(date)s.")
        % {"date": service_request.fulfilment_due_on.strftime("%d.%m.%Y")},
    )


@transaction.atomic
def request_hold(
    *, request_id: int, user, reason: str, note: str, expected_state: str | None = None
) -> RequestHold:
    """A fulfiller puts a request in fulfilment on hold, waiting for the requester or a
    supplier: its SLA clock stops until it is resumed (or the requester replies).

    A flag and a period row rather than an FSM state: the request stays "in fulfilment" for
    every query, index and report on the state, the hold is its own fact next to it, and
    both changes are timeline events."""
    if reason not in HoldReason.values:
        raise ValidationError({"reason": _("Please choose what the request waits for.")})
    note = _clean_text(note, _("Please say what the request waits for."))
    service_request = _lock(request_id, expected_state)
    if not permissions.can_fulfil(service_request, user):
        raise PermissionDenied(_("You may not do this on this request."))
    if service_request.state != RequestState.IN_FULFILMENT:
        raise ActionConflict(_("Only a request in fulfilment can be put on hold."))
    if service_request.hold_reason:
        raise ActionConflict(_("This request is on hold already."))
    now = timezone.now()
    hold = RequestHold.objects.create(
        request=service_request, reason=reason, note=note, started_at=now, started_by=user
    )
    service_request.hold_reason = reason
    service_request.responded_at = service_request.responded_at or now
    service_request.save(update_fields=["hold_reason", "responded_at"])
    _audit(
        service_request,
        EventKind.HOLD,
        user=user,
        comment=f"{HoldReason(reason).label}: {note}",
        now=now,
    )
    if reason == HoldReason.REQUESTER:
        notifications.notify(service_request, notifications.ON_HOLD)
    return hold


@transaction.atomic
def request_resume(
    *, request_id: int, user, comment: str = "", expected_state: str | None = None
) -> ServiceRequest:
    """The fulfiller ends the hold: the clock runs again, the due date moved by the paused
    working time."""
    comment = _clean_text(comment, "", required=False)
    service_request = _lock(request_id, expected_state)
    if not permissions.can_fulfil(service_request, user):
        raise PermissionDenied(_("You may not do this on this request."))
    if not service_request.hold_reason:
        raise ActionConflict(_("This request is not on hold."))
    now = timezone.now()
    _end_hold(service_request, user=user, now=now)
    service_request.save(update_fields=["hold_reason", "sla_paused_seconds", "fulfilment_due_on"])
    _audit(
        service_request,
        EventKind.RESUME,
        user=user,
        comment=_resumed_text(service_request, comment),
        now=now,
    )
    return service_request
