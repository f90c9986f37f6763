"""Bundles in the portal's catalogue editor: an IT admin who is not superuser puts items
together, changes and retires a bundle without the Django admin; employees get 403.

Through the real pages on PostgreSQL; the bundle's order page shows what was saved.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import Bundle, BundleItem
from tests.factories import CatalogueItemFactory

pytestmark = pytest.mark.django_db

LIST = "/katalog/verwaltung/pakete/"
NEW = "/katalog/verwaltung/pakete/neu/"


def edit_url(bundle):
    return f"/katalog/verwaltung/pakete/{bundle.pk}/"


@pytest.fixture
def items(org):
    desk = org.service_desk
    return {
        slug: CatalogueItemFactory(name=name, slug=slug, service_owner=desk)
        for slug, name in [
            ("konto", "Benutzerkonto"),
            ("postfach", "Postfach"),
            ("notebook", "Notebook"),
            ("vpn", "VPN"),
        ]
    }


@pytest.fixture
def admin_client(client, org):
    """The IT admin of the test organisation: not superuser, not staff."""
    user = org.admin.user
    assert not user.is_superuser and not user.is_staff
    client.force_login(user)
    return client


def post_data(rows, **bundle):
    data = {
        "name": "Neue Mitarbeiterin / neuer Mitarbeiter",
        "slug": "neu",
        "description": "Alles für den Start.",
        "position": "1",
        "is_active": "on",
        "entries-TOTAL_FORMS": str(len(rows)),
        "entries-INITIAL_FORMS": "0",
        "entries-MIN_NUM_FORMS": "0",
        "entries-MAX_NUM_FORMS": "50",
    }
    data.update(bundle)
    for index, row in enumerate(rows):
        data[f"entries-{index}-item"] = str(row["item"].pk) if row.get("item") else ""
        data[f"entries-{index}-position"] = str(row.get("position", ""))
        if row.get("selected", True):
            data[f"entries-{index}-selected"] = "on"
        if row.get("DELETE"):
            data[f"entries-{index}-DELETE"] = "on"
    return {k: v for k, v in data.items() if v is not None}


def entries_of(bundle):
    return list(
        BundleItem.objects.filter(bundle=bundle)
        .order_by("position", "id")
        .values_list("item__slug", "selected")
    )


def test_an_it_admin_builds_a_bundle_in_the_portal(admin_client, org, items):
    page = admin_client.get("/katalog/verwaltung/")
    assert LIST in page.content.decode()  # linked from the editor
    assert admin_client.get(LIST).status_code == 200
    assert admin_client.get(NEW).status_code == 200

    rows = [
        {"item": items["konto"]},
        {"item": items["postfach"]},
        {"item": items["vpn"], "selected": False},
        {"item": None},  # the empty row for a new item, untouched (as the browser sends it)
    ]
    response = admin_client.post(NEW, post_data(rows))
    assert response.status_code == 302, response.content.decode()[:3000]
    bundle = Bundle.objects.get(slug="neu")
    assert response["Location"] == edit_url(bundle)
    assert entries_of(bundle) == [("konto", True), ("postfach", True), ("vpn", False)]

    # The order page offers what was saved: chosen by default, or offered.
    admin_client.force_login(org.manager.user)
    order_page = admin_client.get("/paket/neu/bestellen/").content.decode()
    assert "Benutzerkonto" in order_page and "VPN" in order_page


def test_changing_reordering_and_removing_items_keeps_the_rest(admin_client, items):
    admin_client.post(
        NEW,
        post_data([{"item": items["konto"]}, {"item": items["postfach"]}, {"item": items["vpn"]}]),
    )
    bundle = Bundle.objects.get(slug="neu")
    kept = BundleItem.objects.get(bundle=bundle, item=items["konto"])
    page = admin_client.get(edit_url(bundle))
    assert page.status_code == 200 and "Postfach" in page.content.decode()

    rows = [
        {"item": items["konto"], "position": 3},
        {"item": items["postfach"], "DELETE": True},
        {"item": items["vpn"], "position": 1, "selected": False},
        {"item": items["notebook"], "position": 2},
    ]
    response = admin_client.post(edit_url(bundle), post_data(rows, name="Eintritt", is_active=None))
    assert response.status_code == 302, response.content.decode()[:3000]
    bundle.refresh_from_db()
    assert (bundle.name, bundle.is_active) == ("Eintritt", False)
    assert entries_of(bundle) == [("vpn", False), ("notebook", True), ("konto", True)]
    assert BundleItem.objects.get(bundle=bundle, item=items["konto"]).pk == kept.pk
    # Retired: no order page any more.
    assert admin_client.get("/paket/neu/bestellen/").status_code == 404


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([], {}, "A bundle needs at least one item."),
        (["konto", "konto"], {}, "Each item can be in a bundle only once."),
        (["konto"], {"name": ""}, "This field is required."),
        (["konto"], {"slug": "kein slug"}, "Enter a valid “slug”"),
        (["konto"], {"slug": "belegt"}, "already exists"),
    ],
)
def test_errors_are_shown_and_nothing_is_saved(admin_client, items, rows, extra, message):
    Bundle.objects.create(name="Belegt", slug="belegt")
    data = post_data([{"item": items[slug]} for slug in rows], **extra)
    response = admin_client.post(NEW, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Bundle.objects.exclude(slug="belegt").exists()
    assert not BundleItem.objects.exists()


def test_a_forged_item_id_is_an_error_not_a_crash(admin_client, items):
    data = post_data([{"item": items["konto"]}])
    data["entries-0-item"] = "999999"
    assert admin_client.post(NEW, data).status_code == 400
    data["entries-0-item"] = "x' or 1=1"
    assert admin_client.post(NEW, data).status_code == 400
    assert not Bundle.objects.exists()


def test_german(admin_client, items):
    page = admin_client.get(NEW, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Neues Paket" in page and "Leistungen des Pakets" in page
    response = admin_client.post(NEW, post_data([]), HTTP_ACCEPT_LANGUAGE="de")
    assert "Ein Paket braucht mindestens eine Leistung." in response.content.decode()


def test_employees_and_managers_get_403(client, org, items):
    bundle = Bundle.objects.create(name="Neu", slug="neu")
    for person in (org.alice, org.manager):
        client.force_login(person.user)
        for url in (LIST, NEW, edit_url(bundle)):
            assert client.get(url).status_code == 403, url
        for url in (NEW, edit_url(bundle)):
            assert client.post(url, post_data([{"item": items["konto"]}])).status_code == 403
    assert not BundleItem.objects.exists()


def test_unknown_bundle_is_404(admin_client):
    assert admin_client.get("/katalog/verwaltung/pakete/999999/").status_code == 404


def test_list_queries_do_not_grow_with_bundles(admin_client, items):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(LIST).status_code == 200
        return len(ctx.captured_queries)

    Bundle.objects.create(name="A", slug="a")
    few = count()
    for n in range(6):
        bundle = Bundle.objects.create(name=f"B{n}", slug=f"b{n}")
        BundleItem.objects.create(bundle=bundle, item=items["konto"])
    assert count() == few
