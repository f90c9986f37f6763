"""Who decides: four-eyes routing, group and person steps, inactive managers, substitutes.

The ``org`` fixture: head → manager → alice, bob; head owns cost centre KS1000 of the department.
"""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalogue.choices import ApproverKind, FieldType
from itportal import roles
from itportal.exceptions import ActionConflict
from requests_app import notifications, permissions, selectors, services
from requests_app.choices import ApprovalStatus, EventKind, RequestState
from requests_app.models import Substitution
from tests.factories import CostCentreFactory, EmployeeFactory, FormFieldFactory, UserFactory
from tests.workflow_support import EventProbe, addresses, awaiting_ids, mail_of, make_item

pytestmark = pytest.mark.django_db

S = RequestState
LINE_MANAGER = {"approver_kind": ApproverKind.LINE_MANAGER}
COST_CENTRE_OWNER = {"approver_kind": ApproverKind.COST_CENTRE_OWNER}


def it_admins():
    return Group.objects.get(name=roles.IT_ADMIN)


def only_step(service_request):
    approvals = list(service_request.approvals.all())
    assert len(approvals) == 1
    return approvals[0]


def assert_cannot_decide(service_request, *users):
    for user in users:
        assert permissions.deciding_principal(service_request, user) is None
        assert not permissions.can_decide(service_request, user)
        assert service_request.pk not in awaiting_ids(user)
        with pytest.raises(PermissionDenied):
            services.request_approve(request_id=service_request.pk, user=user)
        with pytest.raises(PermissionDenied):
            services.request_reject(request_id=service_request.pk, user=user, comment="Nein.")
    service_request.refresh_from_db()
    assert service_request.state == S.AWAITING_APPROVAL


def assert_decides(service_request, user, *, on_behalf_of=None):
    assert service_request.pk in awaiting_ids(user)
    assert service_request in selectors.requests_visible_to(user)
    probe = EventProbe(service_request)
    services.request_approve(request_id=service_request.pk, user=user, comment="Einverstanden.")
    service_request.refresh_from_db()
    assert service_request.state == S.APPROVED
    probe.assert_one(
        EventKind.APPROVE,
        actor=user,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.APPROVED,
        comment="Einverstanden.",
        on_behalf_of=on_behalf_of,
    )
    approval = service_request.approvals.order_by("-position").first()
    assert approval.decided_by_id == user.pk
    assert approval.on_behalf_of_id == (on_behalf_of.pk if on_behalf_of else None)


@pytest.fixture
def director(org):
    """A head of administration above the department head."""
    director = EmployeeFactory(department=org.department, user__username="director")
    org.head.manager = director
    org.head.save()
    return director


# --- four-eyes ------------------------------------------------------------------------------


def test_requester_is_never_the_approver_step_goes_up(org, director, place_order):
    """The manager orders for their own report: the manager's manager decides."""
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.manager.user, beneficiary=org.alice)
    step = only_step(req)
    assert step.status == ApprovalStatus.PENDING
    assert step.approver_id == org.head.user.pk
    assert step.group_id is None
    assert "four-eyes" in step.routing_note
    assert org.manager.display_name in step.routing_note
    assert_cannot_decide(req, org.manager.user, org.alice.user, director.user)
    assert_decides(req, org.head.user)


def test_beneficiary_is_never_the_approver(org, director, place_order):
    """Bob orders for his own line manager: the line manager does not decide for himself."""
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.bob.user, beneficiary=org.manager)
    step = only_step(req)
    assert step.approver_id == org.head.user.pk  # the beneficiary's own line manager
    assert step.routing_note == ""
    assert_cannot_decide(req, org.manager.user, org.bob.user)
    assert_decides(req, org.head.user)


def test_cost_centre_owner_who_is_beneficiary_goes_up(org, director, place_order):
    item = make_item(org.service_desk, COST_CENTRE_OWNER)
    req = place_order(item, org.alice.user, beneficiary=org.head)  # head owns KS1000
    step = only_step(req)
    assert step.approver_id == director.user.pk
    assert "four-eyes" in step.routing_note
    assert org.head.display_name in step.routing_note
    assert_cannot_decide(req, org.head.user, org.alice.user)
    assert_decides(req, director.user)


def test_requester_and_beneficiary_both_skipped_up_the_chain(org, director, place_order):
    """The head orders for the manager: neither the manager nor the head decides."""
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.head.user, beneficiary=org.manager)
    step = only_step(req)
    assert step.approver_id == director.user.pk
    assert org.head.display_name in step.routing_note
    assert_cannot_decide(req, org.head.user, org.manager.user)
    assert_decides(req, director.user)


def test_no_eligible_person_in_chain_falls_back_to_it_admins(org, place_order):
    """The head (no manager above) is the beneficiary's manager and the requester."""
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.head.user, beneficiary=org.manager)
    step = only_step(req)
    assert step.approver_id is None
    assert step.group_id == it_admins().pk
    assert "four-eyes" in step.routing_note
    assert "IT administration" in step.routing_note
    assert_cannot_decide(req, org.head.user, org.manager.user, org.fulfiller.user)
    assert_decides(req, org.admin.user)


def test_every_policy_step_becomes_an_approval_even_when_rerouted(org, director, place_order):
    """The head orders for alice: step 1 (manager) stays, step 2 (owner = head) goes up."""
    item = make_item(org.service_desk, LINE_MANAGER, COST_CENTRE_OWNER)
    req = place_order(item, org.head.user, beneficiary=org.alice)
    steps = list(req.approvals.order_by("position"))
    assert [(a.position, a.approver_id) for a in steps] == [
        (1, org.manager.user.pk),
        (2, director.user.pk),
    ]
    assert steps[0].routing_note == ""
    assert "four-eyes" in steps[1].routing_note
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert_cannot_decide(req, org.head.user)
    # The manager's own step is decided: deciding again is a conflict, not a second vote.
    with pytest.raises(ActionConflict):
        services.request_approve(request_id=req.pk, user=org.manager.user)
    assert_decides(req, director.user)


def test_same_person_on_two_steps_second_goes_up(org, place_order):
    """Line manager and cost-centre owner are the same person: both steps stay, but one
    person never decides two steps of a request, so the second goes up the chain."""
    org.cost_centre.owner = org.manager
    org.cost_centre.save()
    item = make_item(org.service_desk, LINE_MANAGER, COST_CENTRE_OWNER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    steps = list(req.approvals.order_by("position"))
    assert [a.approver_id for a in steps] == [org.manager.user.pk, org.head.user.pk]
    assert "four-eyes" in steps[1].routing_note
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.state == S.AWAITING_APPROVAL
    assert_decides(req, org.head.user)


# --- group steps ----------------------------------------------------------------------------


@pytest.fixture
def licences(org):
    return Group.objects.create(name="Lizenzverwaltung")


def test_group_step_any_member_but_requester_decides(org, licences, place_order):
    carol = EmployeeFactory(department=org.department, user__username="carol")
    org.alice.user.groups.add(licences)
    carol.user.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    step = only_step(req)
    assert step.group_id == licences.pk
    assert step.approver_id is None
    assert step.routing_note == ""
    assert_cannot_decide(req, org.alice.user, org.manager.user, org.admin.user)
    assert_decides(req, carol.user)


def test_group_step_whose_only_member_is_requester_falls_back_to_it_admins(
    org, licences, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    org.alice.user.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    with django_capture_on_commit_callbacks(execute=True):
        req = place_order(item, org.alice.user, beneficiary=org.bob)
    step = only_step(req)
    assert step.group_id == it_admins().pk
    assert "Lizenzverwaltung" in step.routing_note
    assert "IT administration" in step.routing_note
    assert addresses(mailoutbox) == mail_of(
        org.admin, org.alice
    )  # and the requester's confirmation
    assert_cannot_decide(req, org.alice.user)
    assert_decides(req, org.admin.user)


def test_group_step_whose_only_member_is_beneficiary_falls_back(org, licences, place_order):
    org.bob.user.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert only_step(req).group_id == it_admins().pk
    assert_cannot_decide(req, org.bob.user)
    assert_decides(req, org.admin.user)


def test_group_step_with_only_inactive_members_falls_back(org, licences, place_order):
    org.outsider.user.groups.add(licences)
    org.outsider.user.is_active = False
    org.outsider.user.save()
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert only_step(req).group_id == it_admins().pk


def test_it_admin_requester_never_decides_the_fallback(org, licences, place_order):
    """An IT admin orders; the fallback to IT admins still excludes them."""
    second_admin = EmployeeFactory(
        department=org.department, user__username="admin2", user__groups=[it_admins()]
    )
    org.admin.user.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.admin.user, beneficiary=org.admin)
    assert only_step(req).group_id == it_admins().pk
    assert_cannot_decide(req, org.admin.user)
    assert_decides(req, second_admin.user)


# --- cost centre and person-field steps ----------------------------------------------------------


def test_cost_centre_owner_of_the_chosen_cost_centre(org, place_order):
    owner = EmployeeFactory(department=org.department, user__username="kaemmerer")
    other_cc = CostCentreFactory(code="KS2000", owner=owner)
    item = make_item(org.service_desk, COST_CENTRE_OWNER)
    default = place_order(item, org.alice.user, beneficiary=org.bob)
    assert default.cost_centre == org.cost_centre
    assert only_step(default).approver_id == org.head.user.pk
    charged = place_order(item, org.alice.user, beneficiary=org.bob, cost_centre=other_cc)
    assert only_step(charged).approver_id == owner.user.pk
    assert only_step(charged).routing_note == ""
    assert_cannot_decide(charged, org.head.user)
    assert_decides(charged, owner.user)


def test_cost_centre_without_owner_falls_back_to_it_admins(org, place_order):
    orphan = CostCentreFactory(code="KS3000")
    item = make_item(org.service_desk, COST_CENTRE_OWNER)
    req = place_order(item, org.alice.user, beneficiary=org.bob, cost_centre=orphan)
    step = only_step(req)
    assert step.group_id == it_admins().pk
    assert "no owner" in step.routing_note


@pytest.fixture
def data_owner_item(org):
    item = make_item(
        org.service_desk,
        {
            "approver_kind": ApproverKind.PERSON_FIELD,
            "person_field_key": "data_owner",
            "label": "Dateneigentümer",
        },
    )
    FormFieldFactory(item=item, key="data_owner", label="Dateneigentümer", field_type="person")
    return item


def person(employee):
    return {"uid": employee.personnel_number, "name": employee.display_name}


def test_person_field_step_resolves_to_chosen_person(org, data_owner_item, place_order):
    assert data_owner_item.form_fields.get().field_type == FieldType.PERSON
    req = place_order(
        data_owner_item,
        org.alice.user,
        beneficiary=org.bob,
        answers={"data_owner": person(org.outsider)},
    )
    step = only_step(req)
    assert step.approver_id == org.outsider.user.pk
    assert step.label == "Dateneigentümer"
    assert step.approver_kind == ApproverKind.PERSON_FIELD
    assert_cannot_decide(req, org.manager.user)
    assert_decides(req, org.outsider.user)


def test_person_field_naming_the_requester_goes_up_their_chain(org, data_owner_item, place_order):
    req = place_order(
        data_owner_item,
        org.alice.user,
        beneficiary=org.bob,
        answers={"data_owner": person(org.alice)},
    )
    step = only_step(req)
    assert step.approver_id == org.manager.user.pk
    assert "four-eyes" in step.routing_note
    assert_cannot_decide(req, org.alice.user)
    assert_decides(req, org.manager.user)


@pytest.mark.parametrize("answers", [{}, {"data_owner": {"uid": "nobody"}}, {"data_owner": "x"}])
def test_person_field_without_person_falls_back_to_it_admins(
    org, data_owner_item, place_order, answers
):
    req = place_order(data_owner_item, org.alice.user, beneficiary=org.bob, answers=answers)
    step = only_step(req)
    assert step.group_id == it_admins().pk
    assert "No person was chosen" in step.routing_note


# --- inactive managers ---------------------------------------------------------------------------


def test_inactive_employee_record_is_skipped_upwards(org, place_order):
    org.manager.is_active = False
    org.manager.save()
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    step = only_step(req)
    assert step.approver_id == org.head.user.pk
    assert "inactive" in step.routing_note
    assert org.manager.display_name in step.routing_note
    assert_decides(req, org.head.user)


def test_inactive_user_account_is_skipped_upwards(org, place_order):
    org.manager.user.is_active = False
    org.manager.user.save()
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert only_step(req).approver_id == org.head.user.pk


def test_whole_chain_inactive_falls_back_to_it_admins(org, place_order):
    for employee in (org.manager, org.head):
        employee.is_active = False
        employee.save()
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    step = only_step(req)
    assert step.group_id == it_admins().pk
    assert step.routing_note.count("inactive") == 2


def test_inactive_and_four_eyes_together(org, director, place_order):
    """Manager inactive, head is the requester: the director decides."""
    org.manager.is_active = False
    org.manager.save()
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.head.user, beneficiary=org.alice)
    step = only_step(req)
    assert step.approver_id == director.user.pk
    assert "inactive" in step.routing_note
    assert "four-eyes" in step.routing_note


def test_no_line_manager_on_record_falls_back(org, place_order):
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.alice.user, beneficiary=org.head)  # head has no manager
    step = only_step(req)
    assert step.group_id == it_admins().pk
    assert "no line manager" in step.routing_note


def test_manager_cycle_does_not_loop(org, place_order):
    org.head.manager = org.manager
    org.head.save()
    item = make_item(org.service_desk, LINE_MANAGER)
    # manager → head → manager → …; both are excluded or inactive.
    org.head.is_active = False
    org.head.save()
    req = place_order(item, org.manager.user, beneficiary=org.alice)
    assert only_step(req).group_id == it_admins().pk


# --- substitutes ------------------------------------------------------------------------------


@pytest.fixture
def carol(org):
    """A colleague who stands in for the manager."""
    return EmployeeFactory(department=org.department, manager=org.manager, user__username="carol")


@pytest.fixture
def pending(org, manual_item, place_order):
    """alice orders for bob; the manager decides."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    assert only_step(req).approver_id == org.manager.user.pk
    return req


def substitute(principal, sub, starts_on, ends_on):
    return services.substitution_create(
        principal=principal.user, substitute=sub.user, starts_on=starts_on, ends_on=ends_on
    )


def days(n):
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.mark.parametrize(
    ("starts", "ends"),
    [(0, 0), (0, 3), (-3, 0), (-10, 10)],
    ids=["today-only", "first-day", "last-day", "middle"],
)
def test_substitute_sees_and_decides_on_behalf(org, carol, pending, starts, ends):
    substitute(org.manager, carol, days(starts), days(ends))
    assert permissions.deciding_principal(pending, carol.user) == org.manager.user
    assert pending in selectors.requests_visible_to(carol.user)
    assert_decides(pending, carol.user, on_behalf_of=org.manager.user)
    approval = only_step(pending)
    assert approval.decided_by_id == carol.user.pk
    assert approval.on_behalf_of_id == org.manager.user.pk
    # Having decided, the substitute still sees the request after the substitution.
    Substitution.objects.all().delete()
    assert pending in selectors.requests_visible_to(carol.user)


@pytest.mark.parametrize(
    ("starts", "ends"), [(1, 5), (-5, -1)], ids=["starts-tomorrow", "ended-yesterday"]
)
def test_substitute_outside_the_range_cannot(org, carol, pending, starts, ends):
    substitute(org.manager, carol, days(starts), days(ends))
    assert pending not in selectors.requests_visible_to(carol.user)
    assert_cannot_decide(pending, carol.user)


def test_principal_still_decides_during_the_substitution(org, carol, pending):
    substitute(org.manager, carol, days(-1), days(1))
    assert permissions.deciding_principal(pending, org.manager.user) == org.manager.user
    assert_decides(pending, org.manager.user, on_behalf_of=None)


class FakeToday:
    """Stands in for ``django.utils.timezone`` in modules that only ask for today's date."""

    def __init__(self, day):
        self.day = day

    def localdate(self, value=None):
        return self.day if value is None else timezone.localdate(value)


@pytest.mark.parametrize(
    ("today", "allowed"),
    [
        (datetime.date(2026, 3, 1), False),  # the day before the start
        (datetime.date(2026, 3, 2), True),  # the first day
        (datetime.date(2026, 3, 4), True),
        (datetime.date(2026, 3, 6), True),  # the last day
        (datetime.date(2026, 3, 7), False),  # the day after the end
    ],
)
def test_substitution_date_edges(org, carol, pending, monkeypatch, today, allowed):
    substitute(org.manager, carol, datetime.date(2026, 3, 2), datetime.date(2026, 3, 6))
    fake = FakeToday(today)
    for module in (permissions, selectors, notifications):
        monkeypatch.setattr(module, "timezone", fake)
    assert (permissions.deciding_principal(pending, carol.user) is not None) is allowed
    assert (
        permissions.deciding_principal(pending, carol.user, on_date=today) is not None
    ) is allowed
    assert (pending.pk in awaiting_ids(carol.user)) is allowed
    assert (pending in selectors.requests_visible_to(carol.user)) is allowed
    recipients = {u.pk for u in notifications.recipients_for(pending, notifications.REMINDER)}
    assert (carol.user.pk in recipients) is allowed
    assert org.manager.user.pk in recipients
    if allowed:
        assert_decides(pending, carol.user, on_behalf_of=org.manager.user)
    else:
        assert_cannot_decide(pending, carol.user)


def test_substitute_who_is_the_requester_cannot_approve(org, carol, manual_item, place_order):
    substitute(org.manager, carol, days(-1), days(1))
    req = place_order(manual_item, carol.user, beneficiary=org.bob)
    assert only_step(req).approver_id == org.manager.user.pk
    assert_cannot_decide(req, carol.user)
    assert_decides(req, org.manager.user)


def test_substitute_who_is_the_beneficiary_cannot_approve(org, carol, manual_item, place_order):
    substitute(org.manager, carol, days(-1), days(1))
    req = place_order(manual_item, org.alice.user, beneficiary=carol)
    assert only_step(req).approver_id == org.manager.user.pk
    assert_cannot_decide(req, carol.user)


def test_substitute_of_a_group_member_decides_on_behalf(org, carol, place_order):
    licences = Group.objects.create(name="Lizenzverwaltung")
    org.outsider.user.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    substitute(org.outsider, carol, days(0), days(0))
    assert_decides(req, carol.user, on_behalf_of=org.outsider.user)


def test_group_member_without_an_employee_record_decides(org, place_order):
    """An account with no employee record (a service or admin account) in the deciding
    group: nobody's beneficiary, it decides (the approvals statement compares the
    beneficiary with the user's record, which it does not have)."""
    account = UserFactory(username="it-service")
    account.groups.add(it_admins())
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.head.user, beneficiary=org.manager)
    assert only_step(req).group_id == it_admins().pk
    assert_decides(req, account)


def test_substitute_of_a_group_member_without_an_employee_record(org, carol, place_order):
    licences = Group.objects.create(name="Lizenzverwaltung")
    account = UserFactory(username="licence-desk")
    account.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.substitution_create(
        principal=account, substitute=carol.user, starts_on=days(0), ends_on=days(0)
    )
    assert_decides(req, carol.user, on_behalf_of=account)


def test_substitute_of_a_rerouted_approver(org, carol, director, place_order):
    """The step went up to the head (four-eyes); the head's substitute decides for the head."""
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.manager.user, beneficiary=org.alice)
    substitute(org.head, carol, days(0), days(2))
    assert_decides(req, carol.user, on_behalf_of=org.head.user)


def test_substitute_of_someone_else_cannot(org, carol, pending):
    substitute(org.head, carol, days(-1), days(1))
    assert pending not in selectors.requests_visible_to(carol.user)
    assert_cannot_decide(pending, carol.user)


def test_substitute_is_told_when_approval_is_needed(
    org, carol, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    substitute(org.manager, carol, days(0), days(3))
    with django_capture_on_commit_callbacks(execute=True):
        place_order(manual_item, org.alice.user, beneficiary=org.bob)
    assert addresses(mailoutbox) == mail_of(
        org.manager, carol, org.alice
    )  # and the requester's confirmation


def test_substitute_of_the_future_is_not_told(
    org, carol, manual_item, place_order, mailoutbox, django_capture_on_commit_callbacks
):
    substitute(org.manager, carol, days(1), days(3))
    with django_capture_on_commit_callbacks(execute=True):
        place_order(manual_item, org.alice.user, beneficiary=org.bob)
    assert addresses(mailoutbox) == mail_of(
        org.manager, org.alice
    )  # and the requester's confirmation


def test_substitute_decision_in_the_second_step(org, carol, place_order):
    item = make_item(org.service_desk, LINE_MANAGER, COST_CENTRE_OWNER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    substitute(org.head, carol, days(0), days(0))
    # Step 1 is the manager's: the head's substitute cannot decide it.
    assert_cannot_decide(req, carol.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert_decides(req, carol.user, on_behalf_of=org.head.user)


def test_substitute_rejects_on_behalf(org, carol, pending):
    substitute(org.manager, carol, days(0), days(0))
    probe = EventProbe(pending)
    services.request_reject(request_id=pending.pk, user=carol.user, comment="Zu teuer.")
    probe.assert_one(
        EventKind.REJECT,
        actor=carol.user,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.REJECTED,
        comment="Zu teuer.",
        on_behalf_of=org.manager.user,
    )
    approval = only_step(pending)
    assert (approval.status, approval.decided_by_id, approval.on_behalf_of_id) == (
        ApprovalStatus.REJECTED,
        carol.user.pk,
        org.manager.user.pk,
    )


def test_substitute_of_the_requester_is_not_asked_to_decide(org, carol, place_order):
    licences = Group.objects.create(name="Lizenzverwaltung")
    org.alice.user.groups.add(licences)
    org.outsider.user.groups.add(licences)
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    substitute(org.alice, carol, days(0), days(0))
    # The services refuse (alice may not decide, so neither may her substitute) ...
    assert permissions.deciding_principal(req, carol.user) is None
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=req.pk, user=carol.user)
    # ... and "Approvals for me" should not offer the request either.
    assert req.pk not in awaiting_ids(carol.user)


# --- managing substitutions --------------------------------------------------------------------


def test_substitution_validation(org, carol):
    with pytest.raises(ValidationError) as exc:
        substitute(org.manager, org.manager, days(0), days(1))
    assert "substitute" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        substitute(org.manager, carol, days(2), days(1))
    assert "ends_on" in exc.value.message_dict
    carol.user.is_active = False
    carol.user.save()
    with pytest.raises(ValidationError):
        substitute(org.manager, carol, days(0), days(1))
    assert not Substitution.objects.exists()


def test_substitution_constraints_in_the_database(org, carol):
    with pytest.raises(IntegrityError), transaction.atomic():
        Substitution.objects.create(
            principal=org.manager.user, substitute=carol.user, starts_on=days(2), ends_on=days(1)
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Substitution.objects.create(
            principal=org.manager.user,
            substitute=org.manager.user,
            starts_on=days(0),
            ends_on=days(1),
        )
    assert not Substitution.objects.exists()


def test_only_the_principal_removes_a_substitution(org, carol):
    sub = substitute(org.manager, carol, days(0), days(1))
    for user in (carol.user, org.alice.user, org.admin.user):
        with pytest.raises(PermissionDenied):
            services.substitution_delete(substitution_id=sub.pk, user=user)
    assert Substitution.objects.filter(pk=sub.pk).exists()
    services.substitution_delete(substitution_id=sub.pk, user=org.manager.user)
    assert not Substitution.objects.filter(pk=sub.pk).exists()


# --- visibility of the people with a part ------------------------------------------------------


def test_visibility_of_a_pending_request(org, pending):
    for employee in (org.alice, org.bob, org.manager, org.fulfiller, org.admin):
        assert pending in selectors.requests_visible_to(employee.user), employee
    for employee in (org.outsider, org.head):
        assert pending not in selectors.requests_visible_to(employee.user), employee
    assert list(selectors.requests_awaiting_decision_by(org.manager.user)) == [pending]
    assert awaiting_ids(org.manager.user) == {pending.pk}
    for employee in (org.alice, org.bob, org.head, org.admin, org.fulfiller, org.outsider):
        assert pending.pk not in awaiting_ids(employee.user)


def test_the_approvals_list_reads_the_requests_to_decide(org, pending, place_order):
    """The list's plain rows (requests_to_decide_rows) are the requests of the pending
    decisions that still await approval, as requests_to_decide's model rows."""
    manager = org.manager.user
    other = place_order(make_item(org.service_desk, LINE_MANAGER), org.alice.user)
    steps = selectors.pending_decisions_of(manager)
    assert {p.request_id for p in steps} == {pending.pk, other.pk}
    services.request_approve(request_id=other.pk, user=manager)  # after the steps were read
    rows = selectors.requests_to_decide_rows(manager, steps)
    assert list(rows) == list(selectors.requests_to_decide(manager, steps)) == [pending]
    assert not rows.query.select_related and not rows.query.annotations
    assert not selectors.requests_to_decide_rows(org.alice.user).exists()
