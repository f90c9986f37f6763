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
from requests_app import notifications, permissions, selectors, services
from requests_app.choices import ApprovalStatus, RequestState
from requests_app.models import Approval
from tests.factories import EmployeeFactory
from tests.workflow_support import make_item

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
    assert service_request not in selectors.requests_awaiting_decision_by(user)
    for decide in (services.request_approve, services.request_reject):
        with pytest.raises(PermissionDenied, match="four-eyes"):
            decide(request_id=service_request.pk, user=user, comment="Noch einmal.")
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
    assert req in selectors.requests_awaiting_decision_by(org.fulfiller.user)
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
    assert req not in selectors.requests_awaiting_decision_by(org.manager.user)
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
    assert two_step.pk not in [r.pk for r in selectors.requests_awaiting_decision_by(becker.user)]


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
