"""Change history of catalogue items: who changed which field, old versions, restoring."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import CatalogueItem
from tests.api_support import token_client

pytestmark = pytest.mark.django_db


def history_url(item):
    return f"/katalog/leistung/{item.pk}/verlauf/"


def change_by_api(org, item, **data):
    response = token_client(org.admin.user).patch(
        f"/api/v1/items/{item.slug}/", data, format="json"
    )
    assert response.status_code == 200, response.content
    return response


def test_a_change_shows_who_changed_which_field(client, org, manual_item):
    org.admin.user.first_name, org.admin.user.last_name = "Ida", "Admin"
    org.admin.user.save()
    change_by_api(org, manual_item, price_once="999.00", summary="Mit Dockingstation")

    client.force_login(org.admin.user)
    page = client.get(history_url(manual_item))
    assert page.status_code == 200
    newest = page.context["entries"][0]
    assert newest.record.history_user == org.admin.user
    changed = {c.label: (c.old, c.new) for c in newest.changes}
    assert changed == {
        "one-off price (EUR)": (str(manual_item.price_once), "999.00"),
        "summary": (manual_item.summary or "—", "Mit Dockingstation"),
    }
    content = page.content.decode()
    assert "Ida Admin" in content and "999.00" in content
    german = client.get(history_url(manual_item), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Änderungsverlauf" in german and "Einmalpreis" in german
    # Linked from the item's page for IT admins.
    assert history_url(manual_item) in client.get(f"/leistung/{manual_item.slug}/").content.decode()


def test_restore_brings_back_the_old_values_and_is_recorded(client, org, manual_item):
    first = manual_item.history.earliest("history_date")
    old_name, old_price = manual_item.name, manual_item.price_once
    change_by_api(org, manual_item, name="Notebook Pro", price_once="1500.00")
    version = CatalogueItem.objects.get(pk=manual_item.pk).version

    client.force_login(org.admin.user)
    url = f"{history_url(manual_item)}{first.history_id}/"
    shown = client.get(url)
    assert shown.status_code == 200 and "Notebook" in shown.content.decode()
    response = client.post(url)
    assert response.status_code == 302

    item = CatalogueItem.objects.get(pk=manual_item.pk)
    assert (item.name, item.price_once) == (old_name, old_price)
    assert item.version == version + 1  # orders in progress on the restored-away values go stale
    newest = client.get(history_url(item)).context["entries"][0]
    assert newest.record.history_user == org.admin.user
    assert newest.restored_from.history_id == first.history_id
    assert {c.label for c in newest.changes} == {"name", "one-off price (EUR)"}


def test_a_restore_the_item_no_longer_allows_is_refused_with_a_message(client, org, manual_item):
    first = manual_item.history.earliest("history_date")
    change_by_api(org, manual_item, slug="notebook-alt")
    CatalogueItem.objects.filter(pk=manual_item.pk).update(slug="notebook-alt")
    taker = CatalogueItem.objects.get(pk=manual_item.pk)
    taker.pk = None
    taker.slug = "notebook"  # another item took the old slug meanwhile
    taker.save()
    client.force_login(org.admin.user)
    response = client.post(f"{history_url(manual_item)}{first.history_id}/")
    assert response.status_code == 400
    assert response.context["errors"]
    assert CatalogueItem.objects.get(pk=manual_item.pk).slug == "notebook-alt"


def test_employees_get_403(client, org, manual_item):
    first = manual_item.history.earliest("history_date")
    client.force_login(org.alice.user)
    assert client.get(history_url(manual_item)).status_code == 403
    version_url = f"{history_url(manual_item)}{first.history_id}/"
    assert client.get(version_url).status_code == 403
    assert client.post(version_url).status_code == 403
    assert (
        f'href="{history_url(manual_item)}"'
        not in client.get(f"/leistung/{manual_item.slug}/").content.decode()
    )


def test_unknown_version_is_404(client, org, manual_item):
    client.force_login(org.admin.user)
    assert client.post(f"{history_url(manual_item)}999999/").status_code == 404


def test_the_admins_history_button_opens_the_history(client, org, manual_item):
    org.admin.user.is_staff = True
    org.admin.user.save()
    client.force_login(org.admin.user)
    response = client.get(f"/admin/catalogue/catalogueitem/{manual_item.pk}/history/")
    assert response.status_code == 302 and response["Location"] == history_url(manual_item)


def test_history_page_queries_do_not_grow(client, org, manual_item):
    client.force_login(org.admin.user)

    def count():
        client.get(history_url(manual_item))
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(history_url(manual_item)).status_code == 200
        return len(ctx.captured_queries)

    change_by_api(org, manual_item, price_once="1.00")
    few = count()
    for n in range(2, 8):
        change_by_api(org, manual_item, price_once=str(Decimal(n)))
    assert len(client.get(history_url(manual_item)).context["entries"]) == 8
    assert count() == few
