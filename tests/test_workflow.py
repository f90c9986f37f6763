"""The request state machine through the services: every transition, per role and per state.

Roles (from the ``org`` fixture): alice orders for bob (requester, beneficiary); manager is
bob's line manager and the approver; outsider is another employee; desk is a member of the
fulfilling group; admin is an IT admin.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from catalogue.choices import ApproverKind, Audience, FieldType, FulfilmentKind
from catalogue.models import CatalogueItem
from itportal.exceptions import ActionConflict
from requests_app import fulfilment, notifications, selectors, services
from requests_app.choices import ApprovalStatus, EventKind, RequestState
from requests_app.models import ImmutableError, RequestEvent, ServiceRequest
from tests.factories import (
    ApprovalPolicyStepFactory,
    EmployeeFactory,
    FormFieldFactory,
    UserFactory,
)
from tests.workflow_support import EventProbe, addresses, mail_of, make_item

pytestmark = pytest.mark.django_db

S = RequestState

ROLES = {
    "requester": "alice",
    "beneficiary": "bob",
    "approver": "manager",
    "other_employee": "outsider",
    "fulfiller": "fulfiller",
    "it_admin": "admin",
}


def user_of(org, role):
    return getattr(org, ROLES[role]).user


COMMENTS = {
    "submit": "",
    "approve": "Passt so.",
    "reject": "Dienstlich nicht notwendig.",
    "cancel": "Hat sich erledigt.",
    "take": "",
    "complete": "Gerät ausgegeben, Inventarnummer 4711.",
    "fail": "Modell nicht mehr lieferbar.",
    "reopen": "Lieferant liefert nach.",
}


def run(action, service_request, user, text=None):
    """Call the service for ``action`` the way the pages do."""
    text = COMMENTS[action] if text is None else text
    rid = service_request.pk
    if action == "submit":
        return services.request_submit(request_id=rid, user=user)
    if action == "approve":
        return services.request_approve(request_id=rid, user=user, comment=text)
    if action == "reject":
        return services.request_reject(request_id=rid, user=user, comment=text)
    if action == "cancel":
        return services.request_cancel(request_id=rid, user=user, comment=text)
    if action == "take":
        return services.request_take(request_id=rid, user=user)
    if action == "complete":
        return services.request_complete(request_id=rid, user=user, note=text)
    if action == "fail":
        return services.request_fail(request_id=rid, user=user, reason=text)
    if action == "reopen":
        return services.request_reopen(request_id=rid, user=user, comment=text)
    raise AssertionError(action)


def bring_to(state, org, item, place_order):
    """A request by alice for bob on ``item`` (one line-manager step), in ``state``."""
    if state == S.DRAFT:
        req = place_order(item, org.alice.user, beneficiary=org.bob, submit=False)
        assert req.state == S.DRAFT
        return req
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    rid = req.pk
    if state == S.REJECTED:
        services.request_reject(request_id=rid, user=org.manager.user, comment="Nein.")
    elif state == S.CANCELLED:
        services.request_cancel(request_id=rid, user=org.alice.user)
    elif state != S.AWAITING_APPROVAL:
        services.request_approve(request_id=rid, user=org.manager.user)
        if state in (S.IN_FULFILMENT, S.FULFILLED, S.FAILED):
            services.request_take(request_id=rid, user=org.fulfiller.user)
        if state == S.FULFILLED:
            services.request_complete(request_id=rid, user=org.fulfiller.user, note="ok")
        if state == S.FAILED:
            services.request_fail(request_id=rid, user=org.fulfiller.user, reason="kaputt")
    req.refresh_from_db()
    assert req.state == state
    return req


# action: (state it starts from in the role tests, roles allowed, resulting state)
ALLOWED = {
    "submit": (S.DRAFT, {"requester"}, S.AWAITING_APPROVAL),
    "approve": (S.AWAITING_APPROVAL, {"approver"}, S.APPROVED),
    "reject": (S.AWAITING_APPROVAL, {"approver"}, S.REJECTED),
    "cancel": (S.AWAITING_APPROVAL, {"requester", "it_admin"}, S.CANCELLED),
    "take": (S.APPROVED, {"fulfiller", "it_admin"}, S.IN_FULFILMENT),
    "complete": (S.IN_FULFILMENT, {"fulfiller", "it_admin"}, S.FULFILLED),
    "fail": (S.IN_FULFILMENT, {"fulfiller", "it_admin"}, S.FAILED),
    "reopen": (S.FAILED, {"it_admin"}, S.APPROVED),
}

ROLE_CASES = [
    pytest.param(action, role, role in allowed, id=f"{action}-{role}")
    for action, (_state, allowed, _target) in ALLOWED.items()
    for role in ROLES
]


@pytest.mark.parametrize(("action", "role", "allowed"), ROLE_CASES)
def test_transition_per_role(org, manual_item, place_order, action, role, allowed):
    start, _allowed, target = ALLOWED[action]
    req = bring_to(start, org, manual_item, place_order)
    user = user_of(org, role)
    probe = EventProbe(req)

    if not allowed:
        with pytest.raises(PermissionDenied):
            run(action, req, user)
        req.refresh_from_db()
        assert req.state == start
        probe.assert_none()
        return

    run(action, req, user)
    req.refresh_from_db()
    assert req.state == target
    if action == "submit":
        # Two transitions, two audit records: draft → submitted → awaiting approval.
        events = probe.new()
        assert [(e.kind, e.from_state, e.to_state, e.actor_id) for e in events] == [
            (EventKind.SUBMIT, S.DRAFT, S.SUBMITTED, user.pk),
            (EventKind.START_APPROVAL, S.SUBMITTED, S.AWAITING_APPROVAL, user.pk),
        ]
    else:
        probe.assert_one(
            action, actor=user, from_state=start, to_state=target, comment=COMMENTS[action]
        )


ALL_STATES = [
    S.DRAFT,
    S.AWAITING_APPROVAL,
    S.APPROVED,
    S.REJECTED,
    S.CANCELLED,
    S.IN_FULFILMENT,
    S.FULFILLED,
    S.FAILED,
]
SOURCES = {
    "submit": {S.DRAFT},
    "approve": {S.AWAITING_APPROVAL},
    "reject": {S.AWAITING_APPROVAL},
    "cancel": {S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED},
    "take": {S.APPROVED},
    "complete": {S.IN_FULFILMENT},
    "fail": {S.APPROVED, S.IN_FULFILMENT},
    "reopen": {S.FAILED},
}
RIGHT_ROLE = {
    "submit": "requester",
    "approve": "approver",
    "reject": "approver",
    "cancel": "requester",
    "take": "fulfiller",
    "complete": "fulfiller",
    "fail": "fulfiller",
    "reopen": "it_admin",
}
STATE_CASES = [
    pytest.param(action, state, id=f"{action}-from-{state}")
    for action, sources in SOURCES.items()
    for state in ALL_STATES
    if state not in sources
]


@pytest.mark.parametrize(("action", "state"), STATE_CASES)
def test_transition_refused_in_wrong_state(org, manual_item, place_order, action, state):
    """Even the right person gets ActionConflict when the state does not allow the action."""
    req = bring_to(state, org, manual_item, place_order)
    before = ServiceRequest.objects.values().get(pk=req.pk)
    approvals_before = list(req.approvals.values("pk", "status", "approver_id", "decided_by_id"))
    probe = EventProbe(req)
    with pytest.raises(ActionConflict):
        run(action, req, user_of(org, RIGHT_ROLE[action]))
    assert ServiceRequest.objects.values().get(pk=req.pk) == before
    assert list(req.approvals.values("pk", "status", "approver_id", "decided_by_id")) == (
        approvals_before
    )
    probe.assert_none()


@pytest.mark.parametrize("state", [S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED])
@pytest.mark.parametrize("role", ["requester", "it_admin"])
def test_cancel_allowed_until_fulfilment(org, manual_item, place_order, state, role):
    req = bring_to(state, org, manual_item, place_order)
    user = user_of(org, role)
    probe = EventProbe(req)
    services.request_cancel(request_id=req.pk, user=user, comment="  Hat sich erledigt.  ")
    req.refresh_from_db()
    assert req.state == S.CANCELLED
    assert req.closed_at is not None
    probe.assert_one(
        EventKind.CANCEL,
        actor=user,
        from_state=state,
        to_state=S.CANCELLED,
        comment="Hat sich erledigt.",
    )
    assert not req.approvals.filter(
        status__in=[ApprovalStatus.PENDING, ApprovalStatus.WAITING]
    ).exists()


@pytest.mark.parametrize("state", [S.IN_FULFILMENT, S.FULFILLED, S.FAILED])
@pytest.mark.parametrize("role", ["requester", "it_admin"])
def test_cancel_refused_once_in_fulfilment(org, manual_item, place_order, state, role):
    req = bring_to(state, org, manual_item, place_order)
    probe = EventProbe(req)
    with pytest.raises(ActionConflict):
        services.request_cancel(request_id=req.pk, user=user_of(org, role))
    req.refresh_from_db()
    assert req.state == state
    probe.assert_none()


# --- submission ------------------------------------------------------------------------


def test_create_writes_create_event_and_draft_waits(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob, submit=False)
    assert req.state == S.DRAFT
    assert req.submitted_at is None
    assert not req.approvals.exists()
    (event,) = req.events.all()
    assert (event.kind, event.actor_id, event.from_state, event.to_state) == (
        EventKind.CREATE,
        org.alice.user.pk,
        "",
        S.DRAFT,
    )


def test_submit_without_policy_steps_is_approved(
    org, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    item = make_item(org.service_desk)  # no approval steps
    with django_capture_on_commit_callbacks(execute=True):
        req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert req.state == S.APPROVED
    assert req.submitted_at is not None
    assert req.approved_at is not None
    assert not req.approvals.exists()
    events = list(req.events.order_by("id"))
    assert [(e.kind, e.from_state, e.to_state, e.actor_id) for e in events] == [
        (EventKind.CREATE, "", S.DRAFT, org.alice.user.pk),
        (EventKind.SUBMIT, S.DRAFT, S.SUBMITTED, org.alice.user.pk),
        (EventKind.APPROVE_WITHOUT_STEPS, S.SUBMITTED, S.APPROVED, org.alice.user.pk),
    ]
    # Approved manual request: the fulfilling group and the people concerned are told; the
    # requester also had the confirmation of the submission.
    assert addresses(mailoutbox) == mail_of(org.fulfiller, org.alice, org.bob, org.alice)
    assert req in selectors.fulfilment_queue(org.fulfiller.user)


def test_submit_of_draft_by_requester_creates_steps(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob, submit=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_submit(request_id=req.pk, user=org.alice.user)
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    (approval,) = req.approvals.all()
    assert approval.status == ApprovalStatus.PENDING
    assert approval.approver_id == org.manager.user.pk
    assert approval.activated_at is not None
    assert addresses(mailoutbox) == mail_of(
        org.manager, org.alice
    )  # and the requester's confirmation


def test_automated_item_without_automation_is_fulfilled_by_hand(
    org, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    """Until an automation claims it, an automated item goes to the manual queue."""
    item = make_item(org.service_desk, kind=FulfilmentKind.AUTOMATED)
    with django_capture_on_commit_callbacks(execute=True):
        req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert req.state == S.APPROVED
    assert org.fulfiller.user.email in addresses(mailoutbox)
    assert req in selectors.fulfilment_queue(org.fulfiller.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    req.refresh_from_db()
    assert req.state == S.IN_FULFILMENT


@pytest.fixture
def automation():
    """An automation that claims automated items, as provisioning will register."""

    def claims(service_request):
        return service_request.item_snapshot.get("fulfilment_kind") == FulfilmentKind.AUTOMATED

    fulfilment.register_automation(claims)
    yield claims
    fulfilment.unregister_automation(claims)


def test_item_claimed_by_an_automation_is_not_taken_by_hand(
    org, place_order, mailoutbox, django_capture_on_commit_callbacks, automation
):
    item = make_item(org.service_desk, kind=FulfilmentKind.AUTOMATED)
    with django_capture_on_commit_callbacks(execute=True):
        req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert req.state == S.APPROVED
    # Claimed: no mail to the fulfilling group (the requester's are the confirmation and the
    # approval), and nobody takes it by hand.
    assert addresses(mailoutbox) == mail_of(org.alice, org.bob, org.alice)
    probe = EventProbe(req)
    with pytest.raises(ActionConflict):
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
    probe.assert_none()
    manual = make_item(org.service_desk)
    manual_req = place_order(manual, org.alice.user, beneficiary=org.bob)
    assert fulfilment.needs_manual_fulfilment(manual_req)


# --- approvals ---------------------------------------------------------------------------


@pytest.fixture
def security(org):
    """A second approving group with one member."""
    group = Group.objects.create(name="IT-Sicherheit")
    member = EmployeeFactory(department=org.department, user__username="sec", user__groups=[group])
    return group, member


@pytest.fixture
def three_step_item(org, security):
    group, _member = security
    return make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER},
        {"approver_kind": ApproverKind.COST_CENTRE_OWNER},
        {"approver_kind": ApproverKind.GROUP, "group": group, "label": "IT-Sicherheit"},
    )


def test_multi_step_policy_runs_in_order(
    org, security, three_step_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    group, sec = security
    with django_capture_on_commit_callbacks(execute=True):
        req = place_order(three_step_item, org.alice.user, beneficiary=org.bob)
    steps = list(req.approvals.order_by("position"))
    assert [(a.position, a.status) for a in steps] == [
        (1, ApprovalStatus.PENDING),
        (2, ApprovalStatus.WAITING),
        (3, ApprovalStatus.WAITING),
    ]
    assert steps[0].approver_id == org.manager.user.pk
    assert steps[1].approver_id == org.head.user.pk  # owner of KS1000
    assert steps[2].group_id == group.pk and steps[2].approver_id is None
    assert steps[1].activated_at is None and steps[2].activated_at is None
    assert addresses(mailoutbox) == mail_of(
        org.manager, org.alice
    )  # and the requester's confirmation

    # Later approvers cannot jump the queue.
    for early in (org.head.user, sec.user):
        with pytest.raises(PermissionDenied):
            services.request_approve(request_id=req.pk, user=early)

    mailoutbox.clear()
    probe = EventProbe(req)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=req.pk, user=org.manager.user, comment="ok")
    probe.assert_one(
        EventKind.APPROVE,
        actor=org.manager.user,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.AWAITING_APPROVAL,
        comment="ok",
    )
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    assert req.approved_at is None
    steps = list(req.approvals.order_by("position"))
    assert [a.status for a in steps] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
        ApprovalStatus.WAITING,
    ]
    assert steps[0].decided_by_id == org.manager.user.pk
    assert steps[0].decided_at is not None
    assert steps[0].comment == "ok"
    assert steps[1].activated_at is not None
    assert addresses(mailoutbox) == mail_of(org.head)  # only the next approver

    # The first approver cannot decide again: their step is decided, the request moved on.
    with pytest.raises(ActionConflict):
        services.request_approve(request_id=req.pk, user=org.manager.user)
    with pytest.raises(ActionConflict):
        services.request_reject(request_id=req.pk, user=org.manager.user, comment="Doch nicht.")

    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=req.pk, user=org.head.user)
    assert addresses(mailoutbox) == mail_of(sec)

    mailoutbox.clear()
    probe = EventProbe(req)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=req.pk, user=sec.user)
    probe.assert_one(
        EventKind.APPROVE,
        actor=sec.user,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.APPROVED,
    )
    req.refresh_from_db()
    assert req.state == S.APPROVED
    assert req.approved_at is not None
    assert list(req.approvals.order_by("position").values_list("status", "decided_by_id")) == [
        (ApprovalStatus.APPROVED, org.manager.user.pk),
        (ApprovalStatus.APPROVED, org.head.user.pk),
        (ApprovalStatus.APPROVED, sec.user.pk),
    ]
    assert addresses(mailoutbox) == mail_of(org.fulfiller, org.alice, org.bob)
    kinds = list(req.events.order_by("id").values_list("kind", flat=True))
    assert kinds == ["create", "submit", "start_approval", "approve", "approve", "approve"]


@pytest.mark.parametrize("comment", ["", "   ", "\n\t"])
def test_rejection_needs_a_comment(
    org, manual_item, place_order, mailoutbox, comment, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    probe = EventProbe(req)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as exc:
        services.request_reject(request_id=req.pk, user=org.manager.user, comment=comment)
    assert "comment" in exc.value.message_dict
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    assert req.approvals.get().status == ApprovalStatus.PENDING
    probe.assert_none()
    assert mailoutbox == []


def test_rejection_ends_request_and_withdraws_later_steps(
    org, security, three_step_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    _group, sec = security
    req = place_order(three_step_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    probe = EventProbe(req)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_reject(request_id=req.pk, user=org.head.user, comment="  Kein Budget.  ")
    probe.assert_one(
        EventKind.REJECT,
        actor=org.head.user,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.REJECTED,
        comment="Kein Budget.",
    )
    req.refresh_from_db()
    assert req.state == S.REJECTED
    assert req.closed_at is not None
    steps = list(req.approvals.order_by("position"))
    assert [a.status for a in steps] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.REJECTED,
        ApprovalStatus.WITHDRAWN,
    ]
    assert steps[1].comment == "Kein Budget."
    assert steps[1].decided_by_id == org.head.user.pk
    assert steps[2].decided_by_id is None
    # The requester and the beneficiary learn of the decision.
    assert addresses(mailoutbox) == mail_of(org.alice, org.bob)
    # Nobody can act on the withdrawn step any more.
    with pytest.raises(ActionConflict):
        services.request_approve(request_id=req.pk, user=sec.user)
    assert req not in selectors.requests_awaiting_decision_by(sec.user)


def test_cancel_withdraws_open_steps_and_tells_people_concerned(
    org, three_step_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = place_order(three_step_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_cancel(request_id=req.pk, user=org.alice.user)
    req.refresh_from_db()
    assert req.state == S.CANCELLED
    assert list(req.approvals.order_by("position").values_list("status", flat=True)) == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.WITHDRAWN,
        ApprovalStatus.WITHDRAWN,
    ]
    assert addresses(mailoutbox) == mail_of(org.alice, org.bob)
    with pytest.raises(ActionConflict):
        services.request_approve(request_id=req.pk, user=org.head.user)
    assert req not in selectors.requests_awaiting_decision_by(org.head.user)


# --- what the user saw ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "role"),
    [
        ("approve", "approver"),
        ("reject", "approver"),
        ("cancel", "requester"),
        ("cancel", "it_admin"),
    ],
)
def test_action_on_a_request_that_moved_on_is_a_conflict(
    org, manual_item, place_order, action, role
):
    """The page said "awaiting approval"; meanwhile it was approved: no cancel of the new state."""
    req = bring_to(S.APPROVED, org, manual_item, place_order)
    probe = EventProbe(req)
    user = user_of(org, role)
    rid = req.pk
    seen = S.AWAITING_APPROVAL
    with pytest.raises(ActionConflict) as exc:
        if action == "approve":
            services.request_approve(request_id=rid, user=user, expected_state=seen)
        elif action == "reject":
            services.request_reject(request_id=rid, user=user, comment="x", expected_state=seen)
        else:
            services.request_cancel(request_id=rid, user=user, expected_state=seen)
    assert "Approved" in str(exc.value)
    req.refresh_from_db()
    assert req.state == S.APPROVED
    probe.assert_none()


@pytest.mark.parametrize(
    ("action", "start", "role"),
    [
        ("take", S.APPROVED, "fulfiller"),
        ("complete", S.IN_FULFILMENT, "fulfiller"),
        ("fail", S.IN_FULFILMENT, "fulfiller"),
        ("reopen", S.FAILED, "it_admin"),
        ("cancel", S.APPROVED, "requester"),
    ],
)
def test_expected_state_that_matches_lets_the_action_through(
    org, manual_item, place_order, action, start, role
):
    req = bring_to(start, org, manual_item, place_order)
    user = user_of(org, role)
    kwargs = {"request_id": req.pk, "user": user, "expected_state": start}
    if action == "take":
        services.request_take(**kwargs)
    elif action == "complete":
        services.request_complete(note="ok", **kwargs)
    elif action == "fail":
        services.request_fail(reason="kaputt", **kwargs)
    elif action == "reopen":
        services.request_reopen(**kwargs)
    else:
        services.request_cancel(**kwargs)
    req.refresh_from_db()
    assert (
        req.state
        == {
            "take": S.IN_FULFILMENT,
            "complete": S.FULFILLED,
            "fail": S.FAILED,
            "reopen": S.APPROVED,
            "cancel": S.CANCELLED,
        }[action]
    )
    # And a stale one does not (after reopen, a cancel would otherwise go through).
    with pytest.raises(ActionConflict):
        services.request_cancel(request_id=req.pk, user=org.alice.user, expected_state=start)


def test_expected_state_does_not_bypass_permissions(org, manual_item, place_order):
    req = bring_to(S.AWAITING_APPROVAL, org, manual_item, place_order)
    with pytest.raises(PermissionDenied):
        services.request_approve(
            request_id=req.pk, user=org.outsider.user, expected_state=S.AWAITING_APPROVAL
        )
    with pytest.raises(PermissionDenied):
        services.request_cancel(
            request_id=req.pk, user=org.bob.user, expected_state=S.AWAITING_APPROVAL
        )


# --- fulfilment ----------------------------------------------------------------------------


def test_take_complete(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = bring_to(S.APPROVED, org, manual_item, place_order)
    assert req in selectors.fulfilment_queue(org.fulfiller.user)
    assert req in selectors.fulfilment_queue(org.admin.user)
    assert req not in selectors.fulfilment_queue(org.outsider.user)

    with django_capture_on_commit_callbacks(execute=True):
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
    req.refresh_from_db()
    assert req.assignee_id == org.fulfiller.user.pk
    assert req.fulfilment_started_at is not None
    assert mailoutbox == []  # taking an order tells nobody

    # A second take by someone else is a conflict, the assignee stays.
    with pytest.raises(ActionConflict):
        services.request_take(request_id=req.pk, user=org.admin.user)
    req.refresh_from_db()
    assert req.assignee_id == org.fulfiller.user.pk

    probe = EventProbe(req)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_complete(
            request_id=req.pk, user=org.fulfiller.user, note=" Übergeben an Bob. "
        )
    probe.assert_one(
        EventKind.COMPLETE,
        actor=org.fulfiller.user,
        from_state=S.IN_FULFILMENT,
        to_state=S.FULFILLED,
        comment="Übergeben an Bob.",
    )
    req.refresh_from_db()
    assert req.state == S.FULFILLED
    assert req.resolution_note == "Übergeben an Bob."
    assert req.closed_at is not None
    assert addresses(mailoutbox) == mail_of(org.alice, org.bob)
    assert req not in selectors.fulfilment_queue(org.fulfiller.user)


@pytest.mark.parametrize("start", [S.APPROVED, S.IN_FULFILMENT])
def test_fail_needs_a_reason(
    org, manual_item, place_order, mailoutbox, start, django_capture_on_commit_callbacks
):
    req = bring_to(start, org, manual_item, place_order)
    probe = EventProbe(req)
    with pytest.raises(ValidationError):
        services.request_fail(request_id=req.pk, user=org.fulfiller.user, reason="  ")
    probe.assert_none()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_fail(request_id=req.pk, user=org.fulfiller.user, reason="Defekt.")
    probe.assert_one(
        EventKind.FAIL,
        actor=org.fulfiller.user,
        from_state=start,
        to_state=S.FAILED,
        comment="Defekt.",
    )
    req.refresh_from_db()
    assert req.state == S.FAILED
    assert req.resolution_note == "Defekt."
    assert req.closed_at is not None
    assert addresses(mailoutbox) == mail_of(org.alice, org.bob)


def test_reopen_puts_failed_request_back_in_the_queue(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = bring_to(S.FAILED, org, manual_item, place_order)
    assert req.assignee_id is not None
    with pytest.raises(PermissionDenied):
        services.request_reopen(request_id=req.pk, user=org.fulfiller.user)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_reopen(request_id=req.pk, user=org.admin.user, comment="Behoben.")
    req.refresh_from_db()
    assert req.state == S.APPROVED
    assert req.assignee_id is None
    assert req.closed_at is None
    assert req in selectors.fulfilment_queue(org.fulfiller.user)
    assert addresses(mailoutbox) == mail_of(org.fulfiller, org.alice, org.bob)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    req.refresh_from_db()
    assert req.state == S.IN_FULFILMENT


def test_superuser_counts_as_it_admin(org, manual_item, place_order):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    req = bring_to(S.FAILED, org, manual_item, place_order)
    services.request_reopen(request_id=req.pk, user=root)
    req.refresh_from_db()
    assert req.state == S.APPROVED


def test_unknown_request_is_a_conflict(org):
    with pytest.raises(ActionConflict):
        services.request_cancel(request_id=987654321, user=org.alice.user)


def test_full_path_audit_trail(org, manual_item, place_order):
    req = bring_to(S.FULFILLED, org, manual_item, place_order)
    trail = [
        (e.kind, e.from_state, e.to_state, e.actor.username) for e in req.events.order_by("id")
    ]
    assert trail == [
        ("create", "", S.DRAFT, "alice"),
        ("submit", S.DRAFT, S.SUBMITTED, "alice"),
        ("start_approval", S.SUBMITTED, S.AWAITING_APPROVAL, "alice"),
        ("approve", S.AWAITING_APPROVAL, S.APPROVED, "manager"),
        ("take", S.APPROVED, S.IN_FULFILMENT, "desk"),
        ("complete", S.IN_FULFILMENT, S.FULFILLED, "desk"),
    ]
    created = [e.created_at for e in req.events.order_by("id")]
    assert created == sorted(created)


def test_state_field_is_protected(org, manual_item, place_order):
    req = bring_to(S.AWAITING_APPROVAL, org, manual_item, place_order)
    with pytest.raises(AttributeError):
        req.state = S.APPROVED


# --- the audit trail is append-only ---------------------------------------------------------


@pytest.fixture
def event(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    return req.events.order_by("id").first()


def test_event_cannot_be_changed_through_the_orm(event):
    event.comment = "manipuliert"
    with pytest.raises(ImmutableError):
        event.save()
    with pytest.raises(ImmutableError):
        event.delete()
    with pytest.raises(ImmutableError):
        RequestEvent.objects.filter(pk=event.pk).update(comment="manipuliert")
    with pytest.raises(ImmutableError):
        RequestEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(ImmutableError):
        event.request.events.update(comment="manipuliert")
    # bulk_update runs in atomic(savepoint=False): contain it in a savepoint of our own.
    with pytest.raises(ImmutableError), transaction.atomic():
        RequestEvent.objects.bulk_update([event], ["comment"])
    fresh = RequestEvent.objects.get(pk=event.pk)
    assert fresh.comment == ""
    assert fresh.kind == EventKind.CREATE


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE requests_app_requestevent SET comment = 'manipuliert' WHERE id = %s",
        "UPDATE requests_app_requestevent SET actor_id = NULL WHERE id = %s",
        "DELETE FROM requests_app_requestevent WHERE id = %s",
    ],
)
def test_event_cannot_be_changed_through_sql(event, sql):
    assert connection.vendor == "postgresql"
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    # The savepoint rolled back; the test transaction is usable and the row unchanged.
    fresh = RequestEvent.objects.get(pk=event.pk)
    assert fresh.comment == ""
    assert fresh.actor_id == event.actor_id


def test_raw_sql_insert_still_works(event):
    """Only UPDATE and DELETE are refused: the trail can still grow."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO requests_app_requestevent "
            "(request_id, created_at, kind, from_state, to_state, comment) "
            "VALUES (%s, now(), 'remind', 'awaiting_approval', 'awaiting_approval', '')",
            [event.request_id],
        )
    assert RequestEvent.objects.filter(request_id=event.request_id).count() == 4


# --- the order keeps the item as ordered ----------------------------------------------------


def test_item_snapshot_and_version_are_kept(org, place_order):
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER, "label": "Vorgesetzte"},
        name="Diensthandy",
        price_once=Decimal("199.00"),
        price_monthly=Decimal("15.00"),
    )
    FormFieldFactory(item=item, key="modell", label="Modell", field_type=FieldType.TEXT)
    req = place_order(item, org.alice.user, beneficiary=org.bob, answers={"modell": "A54"})
    assert req.item_version == item.version == 1
    assert req.item_snapshot["version"] == 1
    assert req.item_snapshot["name"] == "Diensthandy"
    assert req.item_snapshot["price_once"] == "199.00"
    assert [f["key"] for f in req.item_snapshot["fields"]] == ["modell"]
    assert [s["approver_kind"] for s in req.item_snapshot["approval_policy"]] == [
        ApproverKind.LINE_MANAGER
    ]
    assert req.price_once == Decimal("199.00")
    snapshot_before = dict(req.item_snapshot)

    # IT admins change the item: new name, price, form and policy, new version.
    item.name = "Smartphone"
    item.price_once = Decimal("349.00")
    item.price_monthly = Decimal("25.00")
    item.fulfilment_kind = FulfilmentKind.AUTOMATED
    item.save()
    CatalogueItem.objects.filter(pk=item.pk).update(version=F("version") + 1)
    item.form_fields.all().delete()
    ApprovalPolicyStepFactory(item=item, position=9, approver_kind=ApproverKind.COST_CENTRE_OWNER)

    req = ServiceRequest.objects.get(pk=req.pk)
    assert req.item_version == 1
    assert req.item_snapshot == snapshot_before
    assert req.item_name == "Diensthandy"
    assert req.price_once == Decimal("199.00")
    assert req.price_monthly == Decimal("15.00")
    assert req.is_manual  # as ordered, even though the item is now automated
    assert req.approvals.count() == 1
    # The old order still runs on its own terms.
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    req.refresh_from_db()
    assert req.state == S.IN_FULFILMENT


def test_forged_item_version_saves_nothing(org, manual_item):
    count = ServiceRequest.objects.count()
    events = RequestEvent.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.request_create(
            requester=org.alice.user,
            item=manual_item,
            item_version=manual_item.version + 1,
            beneficiary=org.bob,
            cost_centre=org.cost_centre,
            answers={},
        )
    assert "item_version" in exc.value.message_dict
    assert ServiceRequest.objects.count() == count
    assert RequestEvent.objects.count() == events


def test_stale_item_version_after_change_saves_nothing(org, manual_item):
    version = manual_item.version
    CatalogueItem.objects.filter(pk=manual_item.pk).update(version=F("version") + 1)
    with pytest.raises(ValidationError):
        services.request_create(
            requester=org.alice.user,
            item=manual_item,  # stale instance still says the old version
            item_version=version,
            beneficiary=org.bob,
            cost_centre=org.cost_centre,
            answers={},
        )
    assert not ServiceRequest.objects.exists()


def test_item_not_orderable_by_requester(org):
    item = make_item(org.service_desk, audience=Audience.RESTRICTED)
    item.allowed_departments.add(org.outsider.department)
    with pytest.raises(PermissionDenied):
        services.request_create(
            requester=org.alice.user,
            item=item,
            item_version=item.version,
            beneficiary=org.alice,
            cost_centre=org.cost_centre,
            answers={},
        )
    assert not ServiceRequest.objects.exists()
    # The allowed department may order it.
    req = services.request_create(
        requester=org.outsider.user,
        item=item,
        item_version=item.version,
        beneficiary=org.outsider,
        cost_centre=org.outsider.effective_cost_centre,
        answers={},
    )
    assert req.state == S.APPROVED


def test_retired_item_cannot_be_ordered(org, manual_item, place_order):
    manual_item.is_active = False
    manual_item.save()
    with pytest.raises(PermissionDenied):
        place_order(manual_item, org.alice.user)
    assert not ServiceRequest.objects.exists()


def test_item_only_for_oneself(org, place_order):
    item = make_item(org.service_desk, orderable_for_others=False)
    with pytest.raises(ValidationError) as exc:
        place_order(item, org.alice.user, beneficiary=org.bob)
    assert "beneficiary" in exc.value.message_dict
    assert not ServiceRequest.objects.exists()
    assert place_order(item, org.alice.user).beneficiary == org.alice


def test_inactive_beneficiary_refused(org, manual_item, place_order):
    org.bob.is_active = False
    org.bob.save()
    with pytest.raises(ValidationError):
        place_order(manual_item, org.alice.user, beneficiary=org.bob)
    assert not ServiceRequest.objects.exists()


def test_user_without_employee_record_cannot_order(manual_item, org):
    stranger = UserFactory(username="stranger")
    with pytest.raises(PermissionDenied):
        services.request_create(
            requester=stranger,
            item=manual_item,
            item_version=manual_item.version,
            beneficiary=org.bob,
            cost_centre=org.cost_centre,
            answers={},
        )


# --- mail only after commit ---------------------------------------------------------------


def test_mail_is_sent_only_after_commit(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.request_approve(request_id=req.pk, user=org.manager.user)
        assert mailoutbox == []
    assert mailoutbox == []  # the transaction has not committed yet
    assert len(callbacks) == 1  # the mail (automations record their work inside the transaction)
    for callback in callbacks:
        callback()
    assert addresses(mailoutbox) == mail_of(org.fulfiller, org.alice, org.bob)
    message = next(m for m in mailoutbox if m.to == [org.alice.user.email])
    assert f"#{req.pk}" in message.subject
    assert "approved" in message.subject
    assert f"/{req.pk}/" in message.body


def test_no_mail_when_the_transaction_rolls_back(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)

    class Boom(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        services.request_approve(request_id=req.pk, user=org.manager.user)
        raise Boom
    assert callbacks == []
    assert mailoutbox == []
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    assert req.approvals.get().status == ApprovalStatus.PENDING


def test_users_without_address_or_inactive_get_no_mail(
    org, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    org.bob.user.email = ""
    org.bob.user.save()
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    org.alice.user.is_active = False
    org.alice.user.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_reject(request_id=req.pk, user=org.manager.user, comment="Nein.")
    assert mailoutbox == []


def test_notification_checks_its_event(org, manual_item, place_order, mailoutbox):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    with pytest.raises(ValueError, match="unknown notification event"):
        notifications.notify(req, "hacked")
    assert mailoutbox == []
