"""The state and step a user saw travel with their action, so a stale click never acts twice."""

import pytest

from catalogue.choices import ApproverKind
from itportal.exceptions import ActionConflict
from requests_app import services
from requests_app.choices import ApprovalStatus, RequestState
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_steps_same_person(org):
    """Line manager, then cost-centre owner: the manager owns the cost centre too."""
    org.cost_centre.owner = org.manager
    org.cost_centre.save()
    return make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER},
        {"approver_kind": ApproverKind.COST_CENTRE_OWNER},
    )


def test_double_click_decides_only_the_step_that_was_shown(org, place_order, two_steps_same_person):
    req = place_order(two_steps_same_person, org.alice.user, beneficiary=org.bob)
    shown = req.approvals.get(status=ApprovalStatus.PENDING)
    services.request_approve(request_id=req.pk, user=org.manager.user, expected_approval=shown.pk)
    with pytest.raises(ActionConflict):
        services.request_approve(
            request_id=req.pk, user=org.manager.user, expected_approval=shown.pk
        )
    req.refresh_from_db()
    assert req.state == RequestState.AWAITING_APPROVAL
    assert list(req.approvals.values_list("status", flat=True)) == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
    ]


def test_detail_page_forms_carry_state_and_step(org, place_order, two_steps_same_person, client):
    req = place_order(two_steps_same_person, org.alice.user, beneficiary=org.bob)
    pending = req.approvals.get(status=ApprovalStatus.PENDING)
    client.force_login(org.manager.user)
    page = client.get(f"/antraege/{req.pk}/").content.decode()
    assert 'name="state" value="awaiting_approval"' in page
    assert f'name="approval" value="{pending.pk}"' in page
    # Posting what the page showed twice: the second post is refused with a message.
    data = {"state": "awaiting_approval", "approval": str(pending.pk), "text": ""}
    client.post(f"/antraege/{req.pk}/approve/", data)
    response = client.post(f"/antraege/{req.pk}/approve/", data, follow=True)
    assert response.status_code == 200
    assert "already been decided" in response.content.decode()
    req.refresh_from_db()
    assert req.approvals.filter(status=ApprovalStatus.APPROVED).count() == 1


def test_cancel_after_approval_with_stale_state_is_a_conflict(org, place_order, manual_item):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    with pytest.raises(ActionConflict):
        services.request_cancel(
            request_id=req.pk, user=org.alice.user, expected_state=RequestState.AWAITING_APPROVAL
        )
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_forged_step_number_is_harmless(org, place_order, manual_item, client):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    client.force_login(org.manager.user)
    for forged in ["abc", "-1", "9" * 40, "\x00"]:
        response = client.post(f"/antraege/{req.pk}/approve/", {"approval": forged}, follow=True)
        assert response.status_code == 200
