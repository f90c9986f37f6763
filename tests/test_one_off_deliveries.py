"""Entitlements mean lasting access: one-off deliveries stay orders, removal and cancelling
ask first, the order page warns about what one already has."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps

from provisioning.choices import ActionKind, EntitlementState
from provisioning.models import Entitlement, ProvisioningAction
from requests_app import services
from requests_app.choices import RequestState
from tests.factories import CatalogueItemFactory

pytestmark = pytest.mark.django_db


def fulfil(req, org):
    if req.state == RequestState.AWAITING_APPROVAL:
        services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    req.refresh_from_db()
    return req


@pytest.fixture
def fulfilled(org, manual_item, place_order):
    return fulfil(place_order(manual_item, org.alice.user, beneficiary=org.bob), org)


def test_a_one_off_delivery_leaves_no_entitlement(org, manual_item, place_order):
    manual_item.grants_access = False
    manual_item.save()
    req = fulfil(place_order(manual_item, org.alice.user, beneficiary=org.bob), org)
    assert req.state == RequestState.FULFILLED
    assert req.item_snapshot["grants_access"] is False
    assert not Entitlement.objects.filter(request=req).exists()


def test_the_item_as_ordered_decides(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    manual_item.grants_access = False  # changed after the order: the snapshot counts
    manual_item.save()
    fulfil(req, org)
    assert Entitlement.objects.filter(request=req).exists()


def test_data_migration_decides_by_what_an_item_does(org, manual_item, place_order):
    migration = importlib.import_module("provisioning.migrations.0006_one_off_deliveries")
    device = CatalogueItemFactory(
        price_once=Decimal("1149.00"), price_monthly=0, service_owner=org.service_desk
    )
    reset = CatalogueItemFactory(price_once=0, price_monthly=0)
    running = CatalogueItemFactory(price_once=0, price_monthly=Decimal("3.50"))
    pooled = CatalogueItemFactory(price_once=Decimal("189.00"), licence_pool_size=5)
    dated = CatalogueItemFactory(price_once=0, price_monthly=0, valid_until_field="bis")
    directory = CatalogueItemFactory(price_once=Decimal("42.00"), price_monthly=0)
    ProvisioningAction.objects.create(item=directory, kind=ActionKind.ADD_TO_GROUP, target="cn=x")
    # An entitlement written for a headset before the field existed goes away.
    headset_order = fulfil(place_order(device, org.alice.user, beneficiary=org.bob), org)
    assert Entitlement.objects.filter(request=headset_order).exists()
    migration.decide(apps, None)
    expected = {
        device: False,
        reset: False,
        running: True,
        pooled: True,
        dated: True,
        directory: True,
    }
    for item, grants in expected.items():
        item.refresh_from_db()
        assert item.grants_access is grants, item
    assert not Entitlement.objects.filter(request=headset_order).exists()


def test_entitlement_list_names_the_department_and_asks_before_removing(org, fulfilled, client):
    entitlement = Entitlement.objects.get(request=fulfilled)
    client.force_login(org.bob.user)
    content = client.get("/provisionierung/berechtigungen/").content.decode()
    assert org.bob.department.name in content
    url = f"/provisionierung/berechtigungen/{entitlement.pk}/entziehen/"
    assert f'href="{url}"' in content
    assert f'action="{url}"' not in content  # no button that acts at once
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.ACTIVE  # looking changes nothing
    client.post(url, {"reason": "Nicht mehr nötig"})
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.REVOKED


def test_removal_page_is_for_those_who_may_remove(org, fulfilled, client):
    entitlement = Entitlement.objects.get(request=fulfilled)
    url = f"/provisionierung/berechtigungen/{entitlement.pk}/entziehen/"
    client.force_login(org.outsider.user)
    assert client.get(url).status_code == 404
    client.force_login(org.manager.user)
    assert client.get(url).status_code == 200


def test_cancel_asks_on_a_page_of_its_own(org, manual_item, place_order, client):
    req = place_order(manual_item, org.alice.user)
    client.force_login(org.alice.user)
    detail = client.get(f"/antraege/{req.pk}/").content.decode()
    assert f'href="/antraege/{req.pk}/cancel/"' in detail
    assert f'action="/antraege/{req.pk}/cancel/"' not in detail
    page = client.get(f"/antraege/{req.pk}/cancel/")
    assert page.status_code == 200
    assert f'action="/antraege/{req.pk}/cancel/"' in page.content.decode()
    req.refresh_from_db()
    assert req.state == RequestState.AWAITING_APPROVAL
    client.post(f"/antraege/{req.pk}/cancel/", {"state": req.state, "text": "doch nicht"})
    req.refresh_from_db()
    assert req.state == RequestState.CANCELLED
    # Cancelled: the confirmation page sends back to the request with a message.
    response = client.get(f"/antraege/{req.pk}/cancel/")
    assert response.status_code == 302


@pytest.mark.parametrize(("action", "status"), [("approve", 405), ("take", 405), ("nonsense", 404)])
def test_only_confirmed_actions_have_a_page(org, manual_item, place_order, client, action, status):
    req = place_order(manual_item, org.alice.user)
    client.force_login(org.admin.user)
    assert client.get(f"/antraege/{req.pk}/{action}/").status_code == status


def test_order_page_warns_about_what_one_holds_or_has_ordered(
    org, manual_item, place_order, client
):
    client.force_login(org.bob.user)
    url = f"/leistung/{manual_item.slug}/bestellen/"
    assert "You may already have this" not in client.get(url).content.decode()
    fulfilled = fulfil(place_order(manual_item, org.bob.user), org)
    content = client.get(url).content.decode()
    assert "You hold this service since" in content
    assert f'href="/antraege/{fulfilled.pk}/"' in content
    pending = place_order(manual_item, org.bob.user)
    content = client.get(url).content.decode()
    assert f"Your request #{pending.pk} for this service is still open" in content


def test_order_page_does_not_warn_for_one_off_deliveries(org, manual_item, place_order, client):
    fulfil(place_order(manual_item, org.bob.user), org)
    manual_item.grants_access = False
    manual_item.save()
    client.force_login(org.bob.user)
    content = client.get(f"/leistung/{manual_item.slug}/bestellen/").content.decode()
    assert "You hold this service" not in content
