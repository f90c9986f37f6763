import pytest

from requests_app.choices import RequestState

pytestmark = pytest.mark.django_db


def test_manual_order_full_path(org, manual_item, place_order, client):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    assert req.state == RequestState.AWAITING_APPROVAL
    client.force_login(org.manager.user)
    resp = client.get("/antraege/genehmigungen/")
    assert resp.status_code == 200
    assert f">{req.pk}<" in resp.content.decode()
    resp = client.post(f"/antraege/{req.pk}/approve/", {"text": "ok"})
    assert resp.status_code == 302
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    client.force_login(org.fulfiller.user)
    assert client.post(f"/antraege/{req.pk}/take/").status_code == 302
    assert client.post(f"/antraege/{req.pk}/complete/", {"text": "done"}).status_code == 302
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    resp = client.get(f"/antraege/{req.pk}/")
    assert resp.status_code == 200
    kinds = list(req.events.values_list("kind", flat=True))
    assert kinds == ["create", "submit", "start_approval", "approve", "take", "complete"]
