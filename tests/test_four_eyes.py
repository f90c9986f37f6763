"""Four-eyes across the steps of one request: one person never decides two of them.

Not in person, not as a substitute, not as a group member, not through the API; the
admin shows approvals read-only; escalation and reminders skip who decided already.
The ``org`` fixture: head → manager → alice, bob; head owns cost centre KS1000.
"""

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from catalogue.choices import ApproverKind
from itportal import roles
from itportal.exceptions import ActionConflict
from requests_app import notifications, permissions, services
from requests_app.choices import ApprovalStatus, RequestState
from requests_app.models import Approval
from tests.factories import EmployeeFactory
from tests.workflow_support import awaiting_ids, make_item

pytestmark = pytest.mark.django_db

LINE_MANAGER = {"approver_kind": ApproverKind.LINE_MANAGER}
COST_CENTRE_OWNER = {"approver_kind": ApproverKind.COST_CENTRE_OWNER}


def today(offset=0):
    return timezone.localdate() + datetime.timedelta(days=offset)


def stand_in(principal, substitute):
    services.substitution_create(
        principal=principal.user, substitute=substitute.user, starts_on=today(-1), ends_on=today(1)
    )


def pending_step(service_request):
    return Approval.objects.get(request=service_request, status=ApprovalStatus.PENDING)


def assert_barred(service_request, user):
    """``user`` may not decide the pending step, is told why, and does not see it listed."""
    service_request.refresh_from_db()
    assert permissions.deciding_principal(service_request, user) is None
    assert service_request.pk not in awaiting_ids(user)
    for decide in (services.request_approve, services.request_reject):
        with pytest.raises(PermissionDenied, match="four-eyes"):
            decide(request_id=service_request.pk, user=user, comment="Noch einmal.")
    service_request.refresh_from_db()
    assert service_request.state == RequestState.AWAITING_APPROVAL


def assert_cannot_decide(service_request, user):
    """As ``assert_barred``, for a step that moved on to someone else: refused either way
    (a conflict: the step the user decided has moved on)."""
    service_request.refresh_from_db()
    assert permissions.deciding_principal(service_request, user) is None
    assert service_request.pk not in awaiting_ids(user)
    with pytest.raises((PermissionDenied, ActionConflict)):
        services.request_approve(request_id=service_request.pk, user=user)
    service_request.refresh_from_db()
    assert service_request.state == RequestState.AWAITING_APPROVAL


@pytest.fixture
def becker(org):
    """Thomas Becker, a colleague who stands in for both the manager and the head."""
    becker = EmployeeFactory(department=org.department, manager=org.head, user__username="becker")
    stand_in(org.manager, becker)
    stand_in(org.head, becker)
    return becker


@pytest.fixture
def two_step(org, place_order):
    """alice orders for bob: step 1 the manager, step 2 the cost-centre owner (head)."""
    item = make_item(org.service_desk, LINE_MANAGER, COST_CENTRE_OWNER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert list(req.approvals.order_by("position").values_list("approver_id", flat=True)) == [
        org.manager.user.pk,
        org.head.user.pk,
    ]
    return req


def test_substitute_of_both_approvers_decides_only_one_step(org, becker, two_step):
    """The case seen on the demo: Becker approved both steps of one notebook order."""
    services.request_approve(request_id=two_step.pk, user=becker.user, comment="Für Herrn M.")
    step = two_step.approvals.get(position=1)
    assert (step.decided_by_id, step.on_behalf_of_id) == (becker.user.pk, org.manager.user.pk)
    assert_barred(two_step, becker.user)
    # The head decides in person; the request moves on.
    services.request_approve(request_id=two_step.pk, user=org.head.user)
    two_step.refresh_from_db()
    assert two_step.state == RequestState.APPROVED


def test_principal_whose_substitute_decided_does_not_decide_the_next_step(org, place_order):
    """carol decided step 1 for the manager; the manager, member of the step-2 group, is out."""
    carol = EmployeeFactory(department=org.department, manager=org.manager, user__username="c")
    stand_in(org.manager, carol)
    security = Group.objects.create(name="IT-Sicherheit")
    org.manager.user.groups.add(security)
    org.fulfiller.user.groups.add(security)
    item = make_item(
        org.service_desk, LINE_MANAGER, {"approver_kind": ApproverKind.GROUP, "group": security}
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=carol.user)
    assert_barred(req, org.manager.user)
    assert org.manager.user.pk not in {
        u.pk for u in notifications.recipients_for(req, notifications.APPROVAL_NEEDED)
    }
    services.request_approve(request_id=req.pk, user=org.fulfiller.user)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_group_member_decides_only_one_of_two_group_steps(org, place_order):
    security = Group.objects.create(name="IT-Sicherheit")
    for person in (org.outsider, org.fulfiller):
        person.user.groups.add(security)
    group_step = {"approver_kind": ApproverKind.GROUP, "group": security}
    item = make_item(org.service_desk, group_step, group_step)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.outsider.user)
    assert_barred(req, org.outsider.user)
    assert req.pk in awaiting_ids(org.fulfiller.user)
    services.request_approve(request_id=req.pk, user=org.fulfiller.user)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert {a.decided_by_id for a in req.approvals.all()} == {
        org.outsider.user.pk,
        org.fulfiller.user.pk,
    }


def test_group_step_whose_only_member_decides_step_one_falls_back(org, place_order):
    """The manager is the only member of the step-2 group and decides step 1: routing
    hands step 2 to IT administration at once, with the reason on the step."""
    security = Group.objects.create(name="IT-Sicherheit")
    org.manager.user.groups.add(security)
    item = make_item(
        org.service_desk, LINE_MANAGER, {"approver_kind": ApproverKind.GROUP, "group": security}
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    second = req.approvals.get(position=2)
    assert second.group.name == roles.IT_ADMIN
    assert "IT-Sicherheit" in second.routing_note
    services.request_approve(request_id=req.pk, user=org.manager.user)
    assert req.pk not in awaiting_ids(org.manager.user)
    services.request_approve(request_id=req.pk, user=org.admin.user)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_rejecting_after_approving_an_earlier_step_is_refused_too(org, two_step):
    """Deciding step 2 the other way round is no loophole."""
    org.cost_centre.owner = org.manager
    org.cost_centre.save()
    services.request_approve(request_id=two_step.pk, user=org.manager.user)
    Approval.objects.filter(request=two_step, position=2).update(approver=org.manager.user)
    assert_barred(two_step, org.manager.user)


def test_api_refuses_the_second_decision(org, becker, two_step, api_as):
    client = api_as(becker)
    first = client.post(f"/api/v1/requests/{two_step.pk}/approve/", {}, format="json")
    assert first.status_code == 200, first.json()
    assert first.json()["state"] == RequestState.AWAITING_APPROVAL
    assert [r["id"] for r in client.get("/api/v1/approvals/").json()["results"]] == []
    second = client.post(f"/api/v1/requests/{two_step.pk}/approve/", {}, format="json")
    assert second.status_code == 403
    assert "four-eyes" in str(second.json())
    assert pending_step(two_step).position == 2


def test_page_refuses_the_second_decision_with_a_message(org, becker, two_step, client):
    services.request_approve(request_id=two_step.pk, user=becker.user)
    approve_url = f'action="/antraege/{two_step.pk}/approve/"'.encode()
    client.force_login(org.head.user)
    assert approve_url in client.get(f"/antraege/{two_step.pk}/").content  # the head may
    client.force_login(becker.user)
    page = client.get(f"/antraege/{two_step.pk}/")
    assert page.status_code == 200
    assert approve_url not in page.content
    refused = client.post(f"/antraege/{two_step.pk}/approve/", {"text": ""})
    assert refused.status_code == 403
    assert "(four-eyes principle)" in refused.content.decode()
    two_step.refresh_from_db()
    assert two_step.approvals.get(position=2).status == ApprovalStatus.PENDING
    assert two_step.pk not in awaiting_ids(becker.user)


def test_escalation_skips_who_decided_an_earlier_step(org, place_order, settings):
    """Step 2 belongs to carol (cost-centre owner); escalating it passes over the manager,
    who decided step 1, to the head."""
    carol = EmployeeFactory(department=org.department, manager=org.manager, user__username="c")
    org.cost_centre.owner = carol
    org.cost_centre.save()
    item = make_item(org.service_desk, LINE_MANAGER, COST_CENTRE_OWNER)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    settings.PORTAL_REMINDER_WORKING_DAYS = 1
    settings.PORTAL_ESCALATION_WORKING_DAYS = 2
    Approval.objects.filter(pk=pending_step(req).pk).update(
        activated_at=timezone.now() - datetime.timedelta(days=30)
    )
    services.approvals_remind_and_escalate(now=timezone.now())
    step = pending_step(req)
    assert step.approver_id == org.head.user.pk
    assert step.escalation_level == 1


def test_admin_cannot_change_approvals(org, two_step, client):
    """The admin shows a request's approvals read-only: no way around the rule there."""
    org.admin.user.is_staff = org.admin.user.is_superuser = True
    org.admin.user.save()
    client.force_login(org.admin.user)
    page = client.get(f"/admin/requests_app/servicerequest/{two_step.pk}/change/")
    assert page.status_code == 200
    assert b'name="approvals-0-status"' not in page.content
    assert b'name="approvals-0-decided_by"' not in page.content
    assert Approval not in admin.site._registry


# --- segregation of duties in fulfilment ------------------------------------------------------


@pytest.fixture
def independent_item(org):
    item = make_item(org.service_desk, LINE_MANAGER, independent_fulfilment=True)
    assert item.snapshot()["independent_fulfilment"] is True
    return item


def test_involved_people_never_fulfil_an_independent_item(org, independent_item, place_order):
    """The desk member orders for bob, the manager (also in the desk) approves: neither may
    take it; another desk member does."""
    org.manager.user.groups.add(org.service_desk)
    colleague = EmployeeFactory(department=org.department, user__username="desk2")
    colleague.user.groups.add(org.service_desk)
    req = place_order(independent_item, org.fulfiller.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    for involved in (org.fulfiller.user, org.manager.user):
        assert not permissions.can_fulfil(req, involved)
        with pytest.raises(PermissionDenied, match="not involved"):
            services.request_take(request_id=req.pk, user=involved)
        with pytest.raises(PermissionDenied, match="not involved"):
            services.request_fail(request_id=req.pk, user=involved, reason="Kein Gerät.")
    services.request_take(request_id=req.pk, user=colleague.user)
    with pytest.raises(PermissionDenied, match="not involved"):
        services.request_complete(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=colleague.user, note="Übergeben.")
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED


def test_an_it_admin_who_approved_does_not_fulfil_either(org, place_order):
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.GROUP, "group": org.it_admins},
        independent_fulfilment=True,
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.admin.user)
    req.refresh_from_db()
    assert not permissions.can_fulfil(req, org.admin.user)
    assert permissions.can_fulfil(req, org.fulfiller.user)


def test_without_the_flag_the_approver_may_fulfil(org, manual_item, place_order):
    org.manager.user.groups.add(org.service_desk)
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.manager.user)


def test_the_flag_is_kept_with_the_order(org, independent_item, place_order):
    """Changing the item later does not change what the order promised."""
    req = place_order(independent_item, org.fulfiller.user, beneficiary=org.bob)
    independent_item.independent_fulfilment = False
    independent_item.save()
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert not permissions.can_fulfil(req, org.fulfiller.user)


def test_api_refuses_an_involved_fulfiller(org, independent_item, place_order, api_as):
    req = place_order(independent_item, org.fulfiller.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    response = api_as(org.fulfiller).post(f"/api/v1/requests/{req.pk}/take/", {}, format="json")
    assert response.status_code == 403
    assert "not involved" in str(response.json())


# --- every path: routing, escalation, joint decisions, substitutes (ORP.1.A4) -----------------


def test_escalation_never_hands_a_step_to_the_approver_of_another_step(org, two_step, settings):
    """Step 1 (manager) is overdue; above the manager is the head, who owns step 2. Handing
    step 1 to the head would leave step 2 to nobody: it goes past the head instead."""
    settings.PORTAL_REMINDER_WORKING_DAYS = 1
    settings.PORTAL_ESCALATION_WORKING_DAYS = 2
    Approval.objects.filter(pk=pending_step(two_step).pk).update(
        activated_at=timezone.now() - datetime.timedelta(days=30)
    )
    services.approvals_remind_and_escalate(now=timezone.now())
    step = pending_step(two_step)
    assert step.position == 1 and step.escalation_level == 1
    assert step.approver_id is None and step.group.name == roles.IT_ADMIN
    services.request_approve(request_id=two_step.pk, user=org.admin.user)
    services.request_approve(request_id=two_step.pk, user=org.head.user)
    two_step.refresh_from_db()
    assert two_step.state == RequestState.APPROVED


def test_the_approver_a_step_was_escalated_from_decides_it_no_more(
    org, place_order, settings, api_as
):
    item = make_item(org.service_desk, LINE_MANAGER)
    req = place_order(item, org.alice.user)
    settings.PORTAL_ESCALATION_WORKING_DAYS = 2
    Approval.objects.filter(pk=pending_step(req).pk).update(
        activated_at=timezone.now() - datetime.timedelta(days=30)
    )
    services.approvals_remind_and_escalate(now=timezone.now())
    assert pending_step(req).approver_id == org.head.user.pk
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=req.pk, user=org.manager.user)
    response = api_as(org.manager).post(f"/api/v1/requests/{req.pk}/approve/", {}, format="json")
    assert response.status_code == 403


def test_a_step_whose_approver_decided_an_earlier_one_as_group_member_is_passed_on(
    org, place_order
):
    """Step 1: the security group, of which the manager is a member; step 2: the line
    manager. Routing at submission cannot know who of the group will decide step 1; when
    the manager does, step 2 goes up to the head at once, with the reason."""
    security = Group.objects.create(name="IT-Sicherheit")
    org.manager.user.groups.add(security)
    item = make_item(
        org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": security}, LINE_MANAGER
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert req.approvals.get(position=2).approver_id == org.manager.user.pk
    services.request_approve(request_id=req.pk, user=org.manager.user)
    step = pending_step(req)
    assert step.position == 2 and step.approver_id == org.head.user.pk
    assert "four-eyes" in step.routing_note
    assert_cannot_decide(req, org.manager.user)
    services.request_approve(request_id=req.pk, user=org.head.user)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_a_group_step_whose_only_member_decided_the_step_before_goes_to_it_admins(org, place_order):
    first, second = Group.objects.create(name="G1"), Group.objects.create(name="G2")
    for group in (first, second):
        org.outsider.user.groups.add(group)
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.GROUP, "group": first},
        {"approver_kind": ApproverKind.GROUP, "group": second},
    )
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.outsider.user)
    step = pending_step(req)
    assert step.group.name == roles.IT_ADMIN and "G2" in step.routing_note
    assert_cannot_decide(req, org.outsider.user)


def test_the_requester_standing_in_for_the_approver_does_not_decide(org, place_order):
    """ORP.1.A4: substitutes too. alice stands in for her manager: not for her own order,
    nor for one placed for her."""
    stand_in(org.manager, org.alice)
    item = make_item(org.service_desk, LINE_MANAGER)
    own = place_order(item, org.alice.user)
    for_her = place_order(item, org.bob.user, beneficiary=org.alice)
    for req in (own, for_her):
        assert permissions.deciding_principal(req, org.alice.user) is None
        with pytest.raises(PermissionDenied):
            services.request_approve(request_id=req.pk, user=org.alice.user)
    # For bob's own order she may decide as the manager's substitute.
    bobs = place_order(item, org.bob.user)
    services.request_approve(request_id=bobs.pk, user=org.alice.user)


def test_deciding_a_joint_order_together_keeps_four_eyes(org, becker, two_step, client):
    """The approvals page's "decide together": one person, two steps of one request, no."""
    services.requests_decide_together(
        user=becker.user, steps=[(two_step.pk, pending_step(two_step).pk)], approve=True
    )
    with pytest.raises(PermissionDenied, match="Nothing was decided"):
        services.requests_decide_together(
            user=becker.user, steps=[(two_step.pk, pending_step(two_step).pk)], approve=True
        )
    client.force_login(becker.user)
    page = client.post(
        "/antraege/genehmigungen/gemeinsam/",
        {"decision": "approve", "request": [two_step.pk],
         f"approval_{two_step.pk}": pending_step(two_step).pk},
    )  # fmt: skip
    assert page.status_code == 403
    assert pending_step(two_step).position == 2


def test_who_decided_as_substitute_does_not_fulfil_an_independent_item(org, becker, place_order):
    """Becker decided step 1 for the manager: neither he nor the manager fulfils."""
    item = make_item(org.service_desk, LINE_MANAGER, independent_fulfilment=True)
    for person in (becker, org.manager):
        person.user.groups.add(org.service_desk)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=becker.user)
    req.refresh_from_db()
    for person in (becker, org.manager):
        assert not permissions.can_fulfil(req, person.user)
        with pytest.raises(PermissionDenied, match="not involved"):
            services.request_take(request_id=req.pk, user=person.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)


def test_the_admin_offers_no_way_to_decide_exceptions_or_approvals(org, client):
    """Approvals are not in the admin; exceptions are read-only there (decided in the
    portal, where nobody decides their own)."""
    from governance.models import SodException

    org.admin.user.is_staff = org.admin.user.is_superuser = True
    org.admin.user.save()
    client.force_login(org.admin.user)
    assert Approval not in admin.site._registry
    model_admin = admin.site._registry[SodException]
    request = type("R", (), {"user": org.admin.user})()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert client.get("/admin/governance/sodexception/add/").status_code == 403
