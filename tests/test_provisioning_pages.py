"""Entitlement and job pages: who sees what, and revocation of a manually fulfilled item."""

import pytest

from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def fulfilled(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    return req


def test_fulfilment_leaves_an_entitlement(org, fulfilled):
    entitlement = Entitlement.objects.get(request=fulfilled)
    assert entitlement.holder == org.bob
    assert entitlement.item == fulfilled.item
    assert entitlement.state == EntitlementState.ACTIVE


@pytest.mark.parametrize(
    ("who", "sees"),
    [("bob", True), ("manager", True), ("admin", True), ("alice", False), ("outsider", False)],
)
def test_entitlement_list_shows_own_and_staff(org, fulfilled, client, who, sees):
    client.force_login(getattr(org, who).user)
    response = client.get("/provisionierung/berechtigungen/")
    assert response.status_code == 200
    assert (fulfilled.item.name in response.content.decode()) is sees


def test_holder_revokes_a_manual_entitlement(org, fulfilled, client):
    entitlement = Entitlement.objects.get(request=fulfilled)
    client.force_login(org.outsider.user)
    url = f"/provisionierung/berechtigungen/{entitlement.pk}/entziehen/"
    assert client.post(url, {"reason": "x"}).status_code == 404
    client.force_login(org.bob.user)
    response = client.post(url, {"reason": "Nicht mehr nötig"}, follow=True)
    assert response.status_code == 200
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.REVOKED
    assert entitlement.revoked_by == org.bob.user
    assert entitlement.revoke_reason == "Nicht mehr nötig"
    # A second removal is a clear message, not an error page.
    response = client.post(url, {"reason": ""}, follow=True)
    assert "already" in response.content.decode()


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("fulfiller", 403), ("alice", 403)])
def test_job_list_is_for_it_admins(org, client, who, status):
    client.force_login(getattr(org, who).user)
    assert client.get("/provisionierung/auftraege/").status_code == status
