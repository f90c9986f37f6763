"""Two people acting on the same request at the same moment, on the real PostgreSQL database.

Each action runs in its own thread with its own database connection and its own transaction.
``race`` starts both at once through a barrier; ``overlap`` makes the interleaving certain:
the first action keeps its transaction open until the second is seen waiting for the row lock.
Exactly one wins; the other gets ActionConflict and never another exception.
"""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from catalogue.choices import ApproverKind
from itportal.exceptions import ActionConflict
from requests_app import services
from requests_app.choices import ApprovalStatus, EventKind, RequestState
from requests_app.models import Approval, RequestEvent
from tests.factories import EmployeeFactory
from tests.workflow_support import addresses, mail_of, make_item

pytestmark = pytest.mark.django_db(transaction=True)

S = RequestState
ROUNDS = 4
TIMEOUT = 30


class Outcome:
    def __init__(self, name):
        self.name = name
        self.result = None
        self.error: BaseException | None = None

    @property
    def won(self) -> bool:
        return self.error is None

    def __repr__(self):
        return f"<{self.name}: {'won' if self.won else repr(self.error)}>"


def _worker(outcome, action, before=None, after=None):
    try:
        if before is not None:
            before()
        outcome.result = action()
    except BaseException as exc:  # the test inspects every exception
        outcome.error = exc
    finally:
        if after is not None:
            after()
        connection.close()


def race(**actions) -> dict[str, Outcome]:
    """Run the actions in parallel threads, released together by a barrier."""
    barrier = threading.Barrier(len(actions))
    outcomes = {name: Outcome(name) for name in actions}
    threads = [
        threading.Thread(
            target=_worker,
            args=(outcomes[name], action),
            kwargs={"before": lambda: barrier.wait(timeout=TIMEOUT)},
        )
        for name, action in actions.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
        assert not thread.is_alive(), "an action hung"
    return outcomes


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def overlap(first_name, first, second_name, second, *, expect_wait=True) -> dict[str, Outcome]:
    """``first`` holds its transaction open until ``second`` waits for its lock, then commits.

    With ``expect_wait=False`` the second action is expected not to wait (it skips locked
    rows); ``first`` commits once it has finished.
    """
    first_done = threading.Event()
    release = threading.Event()
    outcomes = {first_name: Outcome(first_name), second_name: Outcome(second_name)}

    def hold_open():
        with transaction.atomic():
            result = first()
            first_done.set()
            assert release.wait(timeout=TIMEOUT)
        return result

    thread_1 = threading.Thread(
        target=_worker, args=(outcomes[first_name], hold_open), kwargs={"after": first_done.set}
    )
    thread_1.start()
    assert first_done.wait(timeout=TIMEOUT)
    thread_2 = threading.Thread(target=_worker, args=(outcomes[second_name], second))
    thread_2.start()
    deadline = time.monotonic() + TIMEOUT
    waited = False
    while time.monotonic() < deadline and thread_2.is_alive():
        if _lock_waiters() >= 1:
            waited = True
            break
        time.sleep(0.01)
    release.set()
    for thread in (thread_1, thread_2):
        thread.join(timeout=TIMEOUT)
        assert not thread.is_alive(), "an action hung"
    assert outcomes[first_name].won, outcomes
    if expect_wait:
        assert waited, f"{second_name} never waited for {first_name}'s lock: {outcomes}"
    else:
        assert not waited, f"{second_name} waited for {first_name}'s lock: {outcomes}"
    return outcomes


def one_winner(outcomes: dict[str, Outcome]) -> tuple[Outcome, Outcome]:
    winners = [o for o in outcomes.values() if o.won]
    losers = [o for o in outcomes.values() if not o.won]
    assert len(winners) == 1, outcomes
    (loser,) = losers
    assert type(loser.error) is ActionConflict, outcomes
    assert str(loser.error)
    return winners[0], loser


def events_of(service_request, *kinds):
    qs = RequestEvent.objects.filter(request=service_request).order_by("id")
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return list(qs)


def decisions(service_request):
    return list(
        Approval.objects.filter(request=service_request)
        .order_by("position")
        .values_list("status", "decided_by_id")
    )


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def board(org):
    """A group step decided by any of two members: two people who may decide at once."""
    group = Group.objects.create(name="Beschaffungsstelle")
    carol = EmployeeFactory(department=org.department, user__username="carol")
    dave = EmployeeFactory(department=org.department, user__username="dave")
    for employee in (carol, dave):
        employee.user.groups.add(group)
    return group, carol.user, dave.user


@pytest.fixture
def board_item(org, board):
    group, _carol, _dave = board
    return make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": group})


def approve(service_request, user, **kwargs):
    return lambda: services.request_approve(
        request_id=service_request.pk, user=user, comment="Ja.", **kwargs
    )


def reject(service_request, user, **kwargs):
    return lambda: services.request_reject(
        request_id=service_request.pk, user=user, comment="Nein.", **kwargs
    )


def cancel(service_request, user, **kwargs):
    return lambda: services.request_cancel(
        request_id=service_request.pk, user=user, comment="Zurückgezogen.", **kwargs
    )


def take(service_request, user, **kwargs):
    return lambda: services.request_take(request_id=service_request.pk, user=user, **kwargs)


# --- approve vs reject ---------------------------------------------------------------------------


def check_decided(req, org, winner, loser, carol, dave, mailbox):
    req.refresh_from_db()
    assert req.state in (S.APPROVED, S.REJECTED)
    decided = events_of(req, EventKind.APPROVE, EventKind.REJECT)
    assert len(decided) == 1
    (event,) = decided
    if req.state == S.APPROVED:
        assert winner.name == "approve"
        assert (event.kind, event.actor_id) == (EventKind.APPROVE, carol.pk)
        assert decisions(req) == [(ApprovalStatus.APPROVED, carol.pk)]
        assert addresses(mailbox) == mail_of(org.fulfiller, org.alice, org.bob)
        assert req.approved_at is not None and req.closed_at is None
    else:
        assert winner.name == "reject"
        assert (event.kind, event.actor_id, event.comment) == (EventKind.REJECT, dave.pk, "Nein.")
        assert decisions(req) == [(ApprovalStatus.REJECTED, dave.pk)]
        assert addresses(mailbox) == mail_of(org.alice, org.bob)
        assert req.closed_at is not None and req.approved_at is None
    assert (event.from_state, event.to_state) == (S.AWAITING_APPROVAL, req.state)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_approve_vs_reject_race(org, board, board_item, place_order, round_):
    _group, carol, dave = board
    req = place_order(board_item, org.alice.user, beneficiary=org.bob)
    mail.outbox.clear()
    outcomes = race(approve=approve(req, carol), reject=reject(req, dave))
    winner, loser = one_winner(outcomes)
    check_decided(req, org, winner, loser, carol, dave, mail.outbox)


@pytest.mark.parametrize("order", ["approve-first", "reject-first"])
def test_approve_vs_reject_overlapping(org, board, board_item, place_order, order):
    _group, carol, dave = board
    req = place_order(board_item, org.alice.user, beneficiary=org.bob)
    mail.outbox.clear()
    if order == "approve-first":
        outcomes = overlap("approve", approve(req, carol), "reject", reject(req, dave))
    else:
        outcomes = overlap("reject", reject(req, dave), "approve", approve(req, carol))
    winner, loser = one_winner(outcomes)
    assert winner.name == order.split("-")[0]
    check_decided(req, org, winner, loser, carol, dave, mail.outbox)


def test_same_step_approved_twice_at_once(org, board, board_item, place_order):
    _group, carol, dave = board
    req = place_order(board_item, org.alice.user, beneficiary=org.bob)
    outcomes = overlap("carol", approve(req, carol), "dave", approve(req, dave))
    winner, _loser = one_winner(outcomes)
    assert winner.name == "carol"
    req.refresh_from_db()
    assert req.state == S.APPROVED
    assert len(events_of(req, EventKind.APPROVE)) == 1
    assert decisions(req) == [(ApprovalStatus.APPROVED, carol.pk)]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_approve_vs_reject_race_on_first_of_two_steps(org, board, place_order, round_):
    """The first step's deciders race; the step after theirs is not theirs to decide."""
    group, carol, dave = board
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.GROUP, "group": group},
        {"approver_kind": ApproverKind.LINE_MANAGER},
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    outcomes = race(approve=approve(req, carol), reject=reject(req, dave))
    winner, _loser = one_winner(outcomes)
    req.refresh_from_db()
    if winner.name == "approve":
        assert req.state == S.AWAITING_APPROVAL
        assert decisions(req) == [
            (ApprovalStatus.APPROVED, carol.pk),
            (ApprovalStatus.PENDING, None),
        ]
        assert [e.kind for e in events_of(req, EventKind.APPROVE, EventKind.REJECT)] == [
            EventKind.APPROVE
        ]
    else:
        assert req.state == S.REJECTED
        assert decisions(req) == [
            (ApprovalStatus.REJECTED, dave.pk),
            (ApprovalStatus.WITHDRAWN, None),
        ]
        assert [e.kind for e in events_of(req, EventKind.APPROVE, EventKind.REJECT)] == [
            EventKind.REJECT
        ]


def test_reject_arriving_after_first_of_two_steps_approved(org, board, place_order):
    group, carol, dave = board
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.GROUP, "group": group},
        {"approver_kind": ApproverKind.LINE_MANAGER},
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    outcomes = overlap("approve", approve(req, carol), "reject", reject(req, dave))
    one_winner(outcomes)
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    assert decisions(req) == [(ApprovalStatus.APPROVED, carol.pk), (ApprovalStatus.PENDING, None)]


# --- approve vs cancel ---------------------------------------------------------------------------


def check_approve_vs_cancel(req, org, winner, mailbox):
    req.refresh_from_db()
    kinds = [e.kind for e in events_of(req, EventKind.APPROVE, EventKind.CANCEL)]
    if winner.name == "approve":
        assert req.state == S.APPROVED
        assert kinds == [EventKind.APPROVE]
        assert decisions(req) == [(ApprovalStatus.APPROVED, org.manager.user.pk)]
        assert addresses(mailbox) == mail_of(org.fulfiller, org.alice, org.bob)
    else:
        assert req.state == S.CANCELLED
        assert kinds == [EventKind.CANCEL]
        assert decisions(req) == [(ApprovalStatus.WITHDRAWN, None)]
        assert addresses(mailbox) == mail_of(org.alice, org.bob)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_approve_vs_cancel_race(org, manual_item, place_order, round_):
    """Both acted on the request they saw awaiting approval: only one of them gets through."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    mail.outbox.clear()
    seen = S.AWAITING_APPROVAL
    outcomes = race(
        approve=approve(req, org.manager.user, expected_state=seen),
        cancel=cancel(req, org.alice.user, expected_state=seen),
    )
    winner, _loser = one_winner(outcomes)
    check_approve_vs_cancel(req, org, winner, mail.outbox)


@pytest.mark.parametrize("order", ["approve-first", "cancel-first"])
def test_approve_vs_cancel_overlapping(org, manual_item, place_order, order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    mail.outbox.clear()
    seen = S.AWAITING_APPROVAL
    do_approve = approve(req, org.manager.user, expected_state=seen)
    do_cancel = cancel(req, org.alice.user, expected_state=seen)
    if order == "approve-first":
        outcomes = overlap("approve", do_approve, "cancel", do_cancel)
    else:
        outcomes = overlap("cancel", do_cancel, "approve", do_approve)
    winner, _loser = one_winner(outcomes)
    assert winner.name == order.split("-")[0]
    check_approve_vs_cancel(req, org, winner, mail.outbox)


def test_cancel_without_expected_state_applies_to_the_new_state(org, manual_item, place_order):
    """A cancel that does not say what it saw is a cancel of the request as it is now."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    outcomes = overlap(
        "approve", approve(req, org.manager.user), "cancel", cancel(req, org.alice.user)
    )
    assert all(o.won for o in outcomes.values()), outcomes
    req.refresh_from_db()
    assert req.state == S.CANCELLED
    assert [(e.kind, e.from_state, e.to_state) for e in events_of(req)][-2:] == [
        (EventKind.APPROVE, S.AWAITING_APPROVAL, S.APPROVED),
        (EventKind.CANCEL, S.APPROVED, S.CANCELLED),
    ]


# --- take vs take --------------------------------------------------------------------------------


@pytest.fixture
def approved(org, manual_item, place_order):
    second = EmployeeFactory(
        department=org.department, user__username="desk2", user__groups=[org.service_desk]
    )
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.state == S.APPROVED
    return req, org.fulfiller.user, second.user


def check_taken(req, winner_user):
    req.refresh_from_db()
    assert req.state == S.IN_FULFILMENT
    assert req.assignee_id == winner_user.pk
    takes = events_of(req, EventKind.TAKE)
    assert [(e.actor_id, e.from_state, e.to_state) for e in takes] == [
        (winner_user.pk, S.APPROVED, S.IN_FULFILMENT)
    ]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_take_vs_take_race(approved, round_):
    req, desk, desk2 = approved
    outcomes = race(desk=take(req, desk), desk2=take(req, desk2))
    winner, _loser = one_winner(outcomes)
    check_taken(req, desk if winner.name == "desk" else desk2)


def test_take_vs_take_overlapping(approved):
    req, desk, desk2 = approved
    outcomes = overlap("desk2", take(req, desk2), "desk", take(req, desk))
    winner, _loser = one_winner(outcomes)
    assert winner.name == "desk2"
    check_taken(req, desk2)


def test_take_vs_cancel_overlapping(org, approved):
    req, desk, _desk2 = approved
    outcomes = overlap(
        "take", take(req, desk), "cancel", cancel(req, org.alice.user, expected_state=S.APPROVED)
    )
    one_winner(outcomes)
    check_taken(req, desk)
    assert not events_of(req, EventKind.CANCEL)


def test_cancel_vs_take_overlapping(org, approved):
    req, desk, _desk2 = approved
    outcomes = overlap("cancel", cancel(req, org.alice.user), "take", take(req, desk))
    one_winner(outcomes)
    req.refresh_from_db()
    assert req.state == S.CANCELLED
    assert req.assignee_id is None
    assert not events_of(req, EventKind.TAKE)


# --- the reminder job does not fight with a decision ---------------------------------------


@pytest.fixture
def overdue(org, manual_item, place_order, settings):
    """A request whose step is long overdue: the job escalates it from the manager to the head."""
    settings.PORTAL_REMINDER_WORKING_DAYS = 1
    settings.PORTAL_ESCALATION_WORKING_DAYS = 2
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    Approval.objects.filter(request=req).update(
        activated_at=timezone.now() - datetime.timedelta(days=30)
    )
    return req


def run_job():
    return services.approvals_remind_and_escalate()


def test_reminder_job_skips_a_request_being_decided(org, overdue):
    req = overdue
    outcomes = overlap("approve", approve(req, org.manager.user), "job", run_job, expect_wait=False)
    assert outcomes["job"].won, outcomes
    assert outcomes["job"].result == {"reminded": 0, "escalated": 0}
    req.refresh_from_db()
    assert req.state == S.APPROVED
    approval = Approval.objects.get(request=req)
    assert (approval.approver_id, approval.decided_by_id, approval.escalation_level) == (
        org.manager.user.pk,
        org.manager.user.pk,
        0,
    )
    assert not events_of(req, EventKind.ESCALATE, EventKind.REMIND)


def test_decision_waits_for_a_running_escalation(org, overdue):
    """The job escalates to the head while the manager approves: the escalation is not lost."""
    req = overdue
    outcomes = overlap("job", run_job, "approve", approve(req, org.manager.user))
    assert outcomes["job"].result == {"reminded": 0, "escalated": 1}
    # The step is the head's now; the manager's late approval does not go through.
    # The manager cannot tell the escalation from having never been asked: the step is
    # simply no longer theirs (the request's state did not change, so no conflict).
    assert not outcomes["approve"].won
    assert type(outcomes["approve"].error) is PermissionDenied
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    approval = Approval.objects.get(request=req)
    assert (approval.status, approval.approver_id, approval.escalation_level) == (
        ApprovalStatus.PENDING,
        org.head.user.pk,
        1,
    )
    assert approval.decided_by_id is None
    assert [e.kind for e in events_of(req, EventKind.ESCALATE, EventKind.APPROVE)] == [
        EventKind.ESCALATE
    ]
    services.request_approve(request_id=req.pk, user=org.head.user)
    req.refresh_from_db()
    assert req.state == S.APPROVED
