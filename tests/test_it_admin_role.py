"""The IT-admin role, walked as a non-superuser member of the group "IT-Administration":
every capability the README (and docs/api.md) promises IT admins, in the portal and in the
Django admin. A capability the role lacks fails here, not in a demo.

Promised (README "Roles", "Defining a catalogue item", "The directory", login protection,
webhooks, mail, long runs, catalogue exchange and history; docs/controlling.md, docs/api.md):
fulfil from every queue, manage the catalogue (portal editor and admin, provisioning actions
inline, bundles in the admin), change history and restore, provisioning jobs (retry / done
by hand), entitlements, memberships given by hand (admin), sync runs and drift findings,
lock-outs, webhooks, the mail outbox, long runs, catalogue exchange, controlling pages,
everybody's API tokens.
"""

import pytest
from django.contrib.auth.models import Permission

from catalogue.models import Bundle, CatalogueItem
from itportal import roles
from provisioning.choices import ActionKind
from provisioning.models import DriftFinding, ManualMembership, ProvisioningAction, SyncRun
from requests_app import services
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import CatalogueItemFactory, CategoryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def it_admin(org):
    user = org.admin.user
    # As a directory or single-sign-on login with the role gets it (accounts/identity.py).
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    assert not user.is_superuser
    assert set(user.groups.values_list("name", flat=True)) == {roles.IT_ADMIN}
    return user


@pytest.fixture
def admin_client(client, it_admin):
    client.force_login(it_admin)
    return client


def test_the_role_holds_exactly_its_listed_permissions(it_admin):
    granted = set(
        Permission.objects.filter(group__name=roles.IT_ADMIN).values_list(
            "content_type__app_label", "codename"
        )
    )
    listed = {(app, code) for app, codes in roles.IT_ADMIN_PERMISSIONS.items() for code in codes}
    assert granted == listed


PORTAL_PAGES = [
    "/",
    "/antraege/bearbeitung/",
    "/provisionierung/auftraege/",
    "/provisionierung/berechtigungen/",
    "/katalog/verwaltung/",
    "/katalog/verwaltung/neu/",
    "/katalog/verwaltung/pakete/",
    "/katalog/verwaltung/pakete/neu/",
    "/katalog/austausch/",
    "/postausgang/",
    "/laeufe/",
    "/webhooks/",
    "/controlling/",
    "/controlling/lizenzpools/",
    "/konto/anmeldesperren/",
    "/konto/tokens/",
]


def test_portal_pages(admin_client, manual_item):
    for path in [
        *PORTAL_PAGES,
        f"/katalog/verwaltung/{manual_item.pk}/",
        f"/katalog/leistung/{manual_item.pk}/verlauf/",
        f"/provisionierung/leistung/{manual_item.pk}/aktionen/",
    ]:
        assert admin_client.get(path).status_code == 200, path


def test_fulfils_from_a_queue_of_another_group(admin_client, org, manual_item, place_order):
    request = place_order(manual_item, org.alice.user)
    services.request_approve(request_id=request.pk, user=org.manager.user, comment="")
    assert ServiceRequest.objects.get(pk=request.pk).state == RequestState.APPROVED
    assert (
        request.pk
        in [r.pk for r in admin_client.get("/antraege/bearbeitung/").context["table"].data]
        or str(request.pk) in admin_client.get("/antraege/bearbeitung/").content.decode()
    )
    admin_client.post(f"/antraege/{request.pk}/take/", {"state": RequestState.APPROVED})
    admin_client.post(f"/antraege/{request.pk}/complete/", {"text": "Geliefert."})
    assert ServiceRequest.objects.get(pk=request.pk).state == RequestState.FULFILLED


def test_edits_the_catalogue_and_restores_from_the_history(admin_client, manual_item):
    from catalogue.services import item_save

    first = manual_item.history.latest()
    item_save(item=manual_item, data={"name": "Notebook (neu)"})
    response = admin_client.post(f"/katalog/leistung/{manual_item.pk}/verlauf/{first.history_id}/")
    assert response.status_code == 302
    assert CatalogueItem.objects.get(pk=manual_item.pk).name == "Notebook"


ADMIN_PAGES = [
    "/admin/",
    "/admin/catalogue/catalogueitem/",
    "/admin/catalogue/catalogueitem/add/",
    "/admin/catalogue/category/",
    "/admin/catalogue/bundle/",
    "/admin/catalogue/bundle/add/",
    "/admin/catalogue/costcentre/",
    "/admin/catalogue/department/",
    "/admin/catalogue/employee/",
    "/admin/provisioning/provisioningjob/",
    "/admin/provisioning/entitlement/",
    "/admin/provisioning/syncrun/",
    "/admin/provisioning/manualmembership/",
    "/admin/api/apitoken/",
]


def test_admin_pages(admin_client, org, manual_item):
    CategoryFactory()
    ProvisioningAction.objects.create(
        item=manual_item, position=1, kind=ActionKind.ADD_TO_GROUP, target="cn=vpn,dc=example"
    )
    run = SyncRun.objects.create(kind=SyncRun.Kind.RECONCILE)
    DriftFinding.objects.create(
        run=run, kind=DriftFinding.Kind.MISSING, member="uid=x", group_dn="cn=y"
    )
    membership = ManualMembership.objects.create(group_dn="cn=y,dc=example", member_dn="uid=x")
    for path in ADMIN_PAGES:
        assert admin_client.get(path).status_code == 200, path
    change = admin_client.get(f"/admin/catalogue/catalogueitem/{manual_item.pk}/change/")
    assert change.status_code == 200
    assert "provisioning_actions-0-target" in change.content.decode()  # the inline
    assert admin_client.get(f"/admin/provisioning/syncrun/{run.pk}/change/").status_code == 200
    delete = f"/admin/provisioning/manualmembership/{membership.pk}/delete/"
    assert admin_client.get(delete).status_code == 200
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not ManualMembership.objects.exists()


def test_defines_a_bundle_in_the_portal(admin_client, manual_item):
    """The catalogue editor's bundle page, without the Django admin."""
    other = CatalogueItemFactory(name="VPN", slug="vpn")
    response = admin_client.post(
        "/katalog/verwaltung/pakete/neu/",
        {
            "name": "Neue Mitarbeiterin / neuer Mitarbeiter",
            "slug": "neu",
            "description": "",
            "is_active": "on",
            "position": "0",
            "entries-TOTAL_FORMS": "2",
            "entries-INITIAL_FORMS": "0",
            "entries-0-item": str(manual_item.pk),
            "entries-0-selected": "on",
            "entries-1-item": str(other.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    bundle = Bundle.objects.get(slug="neu")
    assert [(e.item, e.selected) for e in bundle.entries.order_by("position")] == [
        (manual_item, True),
        (other, False),
    ]


def test_defines_a_bundle_in_the_admin(admin_client, manual_item):
    other = CatalogueItemFactory(name="VPN", slug="vpn")
    response = admin_client.post(
        "/admin/catalogue/bundle/add/",
        {
            "name": "Neue Mitarbeiterin / neuer Mitarbeiter",
            "slug": "neu",
            "description": "Alles für den Start.",
            "is_active": "on",
            "position": "0",
            "entries-TOTAL_FORMS": "2",
            "entries-INITIAL_FORMS": "0",
            "entries-0-position": "1",
            "entries-0-item": str(manual_item.pk),
            "entries-0-selected": "on",
            "entries-1-position": "2",
            "entries-1-item": str(other.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    bundle = Bundle.objects.get(slug="neu")
    assert [(e.item, e.selected) for e in bundle.entries.order_by("position")] == [
        (manual_item, True),
        (other, False),
    ]


def test_an_employee_gets_none_of_it(client, org, manual_item):
    client.force_login(org.alice.user)
    for path in PORTAL_PAGES[2:]:
        if path in ("/konto/tokens/", "/provisionierung/berechtigungen/"):
            continue  # every employee has these for their own tokens and entitlements
        assert client.get(path).status_code in (302, 403), path
    assert client.get(f"/katalog/verwaltung/{manual_item.pk}/").status_code == 403
