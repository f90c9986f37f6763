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


# --- order form, rules, approval steps and provisioning actions ------------------------------

VPN = "cn=vpn-users,ou=groups,dc=musterstadt,dc=example"
PRINT = "cn=print-users,ou=groups,dc=musterstadt,dc=example"
ACTION_NAMES = ["position", "kind", "target", "attributes"]


def post_actions(client, item, *rows):
    data = {
        "actions-TOTAL_FORMS": str(len(rows)),
        "actions-INITIAL_FORMS": "0",
        "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "50",
        "person": "",
    }
    for index, row in enumerate(rows):
        for name in ACTION_NAMES:
            data[f"actions-{index}-{name}"] = row.get(name, "")
    response = client.post(f"/provisionierung/leistung/{item.pk}/aktionen/", data)
    assert response.status_code == 302, response.content.decode()[:3000]


def test_provisioning_action_changes_show_who_changed_which_field(client, org, manual_item):
    from provisioning.models import ProvisioningAction

    org.admin.user.first_name, org.admin.user.last_name = "Ida", "Admin"
    org.admin.user.save()
    client.force_login(org.admin.user)
    post_actions(client, manual_item, {"kind": "add_to_group", "target": VPN})
    action = ProvisioningAction.objects.get(item=manual_item)
    # Saving the same actions again changes nothing and records nothing.
    post_actions(client, manual_item, {"kind": "add_to_group", "target": VPN})
    post_actions(client, manual_item, {"kind": "add_to_group", "target": PRINT})
    # The action was changed in place, not removed and added again.
    assert ProvisioningAction.objects.get(item=manual_item).pk == action.pk
    assert CatalogueItem.objects.get(pk=manual_item.pk).version == manual_item.version + 2

    page = client.get(history_url(manual_item))
    actions = [e for e in page.context["form_entries"] if e.part == "provisioning action"]
    assert [e.record.history_type for e in actions] == ["~", "+"]
    changed, added = actions
    assert changed.record.history_user == org.admin.user
    assert [(c.label, c.old, c.new) for c in changed.changes] == [("group", VPN, PRINT)]
    assert ("group", "", VPN) in [(c.label, c.old, c.new) for c in added.changes]
    # Each change of the actions is a version of the item of its own, by its author.
    entries = page.context["entries"]
    assert [e.actions_changed for e in entries[:2]] == [True, True]
    assert entries[0].record.history_user == org.admin.user
    content = page.content.decode()
    assert "Ida Admin" in content and PRINT in content
    german = client.get(history_url(manual_item), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Provisionierungsaktion" in german and "Provisionierungsaktionen geändert" in german


def test_an_old_version_shows_and_restores_form_rules_steps_and_actions(client, org, manual_item):
    from catalogue import services
    from provisioning.models import ProvisioningAction
    from provisioning.services import item_actions_save

    place = {"key": "place", "label": "Wo?", "field_type": "choice", "choices": "Büro\nSaal"}
    room = {
        "key": "room",
        "label": "Raum",
        "field_type": "text",
        "answer_format": "room_number",
        "condition_effect": "show",
        "condition_field": "place",
        "condition_operator": "equals",
        "condition_value": "Saal",
    }
    start = {"key": "start", "label": "Von", "field_type": "date"}
    end = {"key": "end", "label": "Bis", "field_type": "date"}
    rule = {"position": 1, "kind": "after", "first_field": "end", "second_field": "start"}
    line_manager = {"position": 1, "approver_kind": "line_manager"}
    services.item_save(
        item=manual_item,
        data={},
        form_fields=[place, room, start, end],
        form_rules=[rule],
        approval_steps=[line_manager],
    )
    item_actions_save(item=manual_item, actions=[{"kind": "add_to_group", "target": VPN}])
    old = manual_item.history.latest("history_date", "history_id")

    # Then everything changes: a field goes, a label changes, a rule and a step are replaced,
    # the actions change.
    services.item_save(
        item=CatalogueItem.objects.get(pk=manual_item.pk),
        data={"name": "Notebook neu"},
        form_fields=[
            {**place, "label": "Ort"},
            {"key": "note", "label": "Notiz", "field_type": "text"},
        ],
        form_rules=[],
        approval_steps=[{"position": 1, "approver_kind": "group", "group_id": org.service_desk.pk}],
    )
    item_actions_save(
        item=manual_item,
        actions=[
            {"kind": "add_to_group", "target": PRINT},
            {"kind": "set_attributes", "attributes": "title = {{ answers.note }}"},
        ],
    )

    client.force_login(org.admin.user)
    url = f"{history_url(manual_item)}{old.history_id}/"
    shown = client.get(url)
    assert shown.status_code == 200
    parts = {part.label: [name for name, _values in part.rows] for part in shown.context["parts"]}
    assert parts == {
        "Order form": ["Wo? (place)", "Raum (room)", "Von (start)", "Bis (end)"],
        "Rules across fields": ["date A is after date B"],
        "Approval steps": ["Line manager of the beneficiary"],
        "Provisioning actions": [f"Add to group {VPN}"],
    }
    content = shown.content.decode()
    assert "Raum (room)" in content and VPN in content and "Saal" in content
    assert "Notiz" not in content and PRINT not in content
    german = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Provisionierungsaktionen" in german and "Bestellformular" in german

    assert client.post(url).status_code == 302
    item = CatalogueItem.objects.get(pk=manual_item.pk)
    assert item.name == "Notebook"
    fields = list(item.form_fields.values_list("key", "label"))
    assert fields == [("place", "Wo?"), ("room", "Raum"), ("start", "Von"), ("end", "Bis")]
    restored_room = item.form_fields.get(key="room")
    assert (restored_room.answer_format, restored_room.condition_field) == ("room_number", "place")
    assert list(item.form_rules.values_list("kind", "first_field", "second_field")) == [
        ("after", "end", "start")
    ]
    assert list(item.approval_steps.values_list("approver_kind", "group")) == [
        ("line_manager", None)
    ]
    assert list(
        ProvisioningAction.objects.filter(item=item).values_list("kind", "target", "attributes")
    ) == [("add_to_group", VPN, "")]

    # The restore is one recorded change by the admin, naming the version it brought back;
    # the rows it wrote are the admin's too.
    page = client.get(history_url(item))
    newest = page.context["entries"][0]
    assert newest.restored_from.history_id == old.history_id
    assert newest.record.history_user == org.admin.user
    assert not page.context["entries"][1].restored_from  # one row for the restore, not two
    restored_rows = [
        e
        for e in page.context["form_entries"]
        if e.record.history_date > newest.record.history_date
    ]
    assert restored_rows and {e.record.history_user for e in restored_rows} == {org.admin.user}
    # Restoring the version again changes nothing more.
    version = item.version
    assert client.post(url).status_code == 302
    assert CatalogueItem.objects.get(pk=item.pk).version == version


def test_restoring_rows_that_no_longer_fit_is_refused_and_changes_nothing(client, org, manual_item):
    from catalogue import services

    person = {"key": "owner", "label": "Verantwortlich", "field_type": "person"}
    services.item_save(
        item=manual_item,
        data={},
        form_fields=[person],
        approval_steps=[
            {"position": 1, "approver_kind": "person_field", "person_field_key": "owner"}
        ],
    )
    old = manual_item.history.latest("history_date", "history_id")
    services.item_save(
        item=CatalogueItem.objects.get(pk=manual_item.pk),
        data={},
        form_fields=[],
        approval_steps=[{"position": 1, "approver_kind": "line_manager"}],
    )
    # The old step's group is gone meanwhile? Not possible (PROTECT); instead the restore
    # meets a slug another item took since, so the whole restore is refused.
    CatalogueItem.objects.filter(pk=manual_item.pk).update(slug="notebook-alt")
    taker = CatalogueItem.objects.get(pk=manual_item.pk)
    taker.pk, taker.slug = None, "notebook"
    taker.save()
    client.force_login(org.admin.user)
    response = client.post(f"{history_url(manual_item)}{old.history_id}/")
    assert response.status_code == 400 and response.context["errors"]
    item = CatalogueItem.objects.get(pk=manual_item.pk)
    assert not item.form_fields.exists()
    assert list(item.approval_steps.values_list("approver_kind", flat=True)) == ["line_manager"]


def test_version_page_queries_do_not_grow_with_rows(client, org, manual_item):
    from catalogue import services

    client.force_login(org.admin.user)

    def count(n):
        services.item_save(
            item=CatalogueItem.objects.get(pk=manual_item.pk),
            data={"summary": f"{n} Felder"},
            form_fields=[
                {"key": f"f{i}", "label": f"Feld {i}", "field_type": "text"} for i in range(n)
            ],
        )
        record = manual_item.history.latest("history_date", "history_id")
        url = f"{history_url(manual_item)}{record.history_id}/"
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    assert count(2) == count(12)
