"""The catalogue editor in the portal: an IT admin who is not superuser builds and changes
items, their order forms (conditions, formats, rules) and approval steps, sees a live preview,
and checks provisioning actions with a dry run against the real slapd. Employees get 403."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import ApprovalPolicyStep, CatalogueItem, FormField, FormRule
from provisioning.models import ProvisioningAction
from tests.factories import CatalogueItemFactory, CategoryFactory, FormFieldFactory
from tests.provisioning_support import add_group, add_person, members

pytestmark = pytest.mark.django_db

FIELD_NAMES = [
    "position", "key", "label", "field_type", "required", "help_text", "choices",
    "answer_format", "pattern", "min_value", "max_value", "max_length", "directory_base",
    "condition_effect", "condition_field", "condition_operator", "condition_value",
]  # fmt: skip
RULE_NAMES = ["position", "kind", "first_field", "second_field", "more_fields", "message"]
STEP_NAMES = ["position", "approver_kind", "group", "person_field_key", "label"]


def formset(prefix, names, rows, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "100",
    }
    for index, row in enumerate(rows):
        for name in names:
            value = row.get(name, "")
            if value is True:
                value = "on"
            if value is False:
                continue
            data[f"{prefix}-{index}-{name}"] = value
        if row.get("DELETE"):
            data[f"{prefix}-{index}-DELETE"] = "on"
    return data


def errors(response) -> dict:
    """The editor's form errors from the response's context, for readable failures."""
    editor = response.context["editor"]
    found = {"item": dict(editor.form.errors)}
    for prefix, fs in editor.formsets.items():
        found[prefix] = [dict(f.errors) for f in fs.forms] + list(fs.non_form_errors())
    return found


def post_data(org, category, fields, rules=(), steps=(), **item):
    data = {
        "name": "Beamer-Ausleihe",
        "slug": "beamer-ausleihe",
        "category": str(category.pk),
        "summary": "Ein Beamer für Besprechungen.",
        "description": "",
        "keywords": "Projektor",
        "service_owner": str(org.service_desk.pk),
        "fulfilment_kind": "manual",
        "grants_access": "False",
        "price_once": "0",
        "price_monthly": "0",
        "sla_target_days": "3",
        "orderable_for_others": "on",
        "is_active": "on",
    }
    data.update(item)
    data.update(formset("fields", FIELD_NAMES, fields))
    data.update(formset("rules", RULE_NAMES, rules))
    data.update(formset("steps", STEP_NAMES, steps))
    return data


PLACE = {"key": "place", "label": "Wo?", "field_type": "choice", "required": True,
         "choices": "Büro\nSaal"}  # fmt: skip
ROOM = {
    "key": "room",
    "label": "Raum",
    "field_type": "text",
    "required": True,
    "answer_format": "room_number",
    "condition_effect": "show",
    "condition_field": "place",
    "condition_operator": "equals",
    "condition_value": "Saal",
}
START = {"key": "start", "label": "Von", "field_type": "date", "required": True}
END = {"key": "end", "label": "Bis", "field_type": "date", "required": True}
RULE = {"kind": "after", "first_field": "end", "second_field": "start"}
STEP = {"approver_kind": "line_manager"}


@pytest.fixture
def category(db):
    return CategoryFactory(name="Hardware", slug="hardware")


@pytest.fixture
def admin_client(client, org):
    user = org.admin.user
    assert not user.is_superuser and not user.is_staff
    client.force_login(user)
    return client


def test_employees_get_403_everywhere(client, org, category):
    item = CatalogueItemFactory(category=category)
    client.force_login(org.alice.user)
    for url in (
        "/katalog/verwaltung/",
        "/katalog/verwaltung/neu/",
        f"/katalog/verwaltung/{item.pk}/",
        f"/provisionierung/leistung/{item.pk}/aktionen/",
    ):
        assert client.get(url).status_code == 403, url
        if url != "/katalog/verwaltung/":
            assert client.post(url, {"name": "x"}).status_code == 403, url
    assert client.post("/katalog/verwaltung/vorschau/", {}).status_code == 403


def test_it_admin_builds_an_item_with_condition_format_rule_and_step(admin_client, org, category):
    page = admin_client.get("/katalog/verwaltung/neu/")
    assert page.status_code == 200
    assert "Neue Leistung" in page.content.decode() or "New item" in page.content.decode()
    data = post_data(
        org,
        category,
        [PLACE, ROOM, START, END],
        rules=[RULE],
        steps=[STEP],
    )
    response = admin_client.post("/katalog/verwaltung/neu/", data)
    assert response.status_code == 302, errors(response)
    item = CatalogueItem.objects.get(slug="beamer-ausleihe")
    assert response["Location"] == f"/katalog/verwaltung/{item.pk}/"
    assert item.sla_target_days == 3
    assert item.grants_access is False  # a one-off delivery
    assert list(item.form_fields.values_list("key", "position")) == [
        ("place", 1),
        ("room", 2),
        ("start", 3),
        ("end", 4),
    ]
    room = item.form_fields.get(key="room")
    assert (room.answer_format, room.condition_field, room.condition_value) == (
        "room_number",
        "place",
        "Saal",
    )
    assert item.form_rules.get().kind == "after"
    assert item.approval_steps.get().approver_kind == "line_manager"
    # Every row recorded with its author.
    assert item.history.get().history_user == org.admin.user
    assert {r.history_user for r in FormField.history.all()} == {org.admin.user}
    assert FormRule.history.get().history_user == org.admin.user
    assert ApprovalPolicyStep.history.get().history_user == org.admin.user

    # The order page follows: a room is required only for the hall.
    admin_client.force_login(org.alice.user)
    url = f"/leistung/{item.slug}/bestellen/"
    answers = {"item_version": str(item.version), "f_place": "Saal", "f_start": "2030-01-02",
               "f_end": "2030-01-03"}  # fmt: skip
    assert admin_client.post(url, answers).status_code == 400
    assert admin_client.post(url, {**answers, "f_place": "Büro"}).status_code == 302


@pytest.fixture
def item(org, category):
    item = CatalogueItemFactory(
        name="Beamer-Ausleihe", slug="beamer-ausleihe", category=category,
        service_owner=org.service_desk,
    )  # fmt: skip
    for position, row in enumerate([PLACE, ROOM, START, END], start=1):
        FormFieldFactory(item=item, position=position, **row)
    FormRule.objects.create(item=item, position=1, **RULE)
    return item


def current_rows(item):
    fields = [
        {name: getattr(f, name) if getattr(f, name) is not None else "" for name in FIELD_NAMES}
        for f in item.form_fields.all()
    ]
    rules = [{name: getattr(r, name) for name in RULE_NAMES} for r in item.form_rules.all()]
    return fields, rules


def test_reorder_remove_and_change_make_a_new_version(admin_client, org, category, item):
    page = admin_client.get(f"/katalog/verwaltung/{item.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="room_number" selected' in body  # the format chosen by name
    assert "Shown only when “Wo?” is „Saal“." in body  # the preview's note
    fields, rules = current_rows(item)
    fields[3]["position"] = 0  # "end" first
    fields[0]["DELETE"] = True  # "place" removed ...
    fields[1].update(
        condition_effect="", condition_field="", condition_operator="", condition_value=""
    )  # fmt: skip  ... so "room" no longer depends on it
    fields[2]["label"] = "Beginn"
    data = post_data(org, category, fields, rules=rules)
    response = admin_client.post(f"/katalog/verwaltung/{item.pk}/", data)
    assert response.status_code == 302, errors(response)
    item.refresh_from_db()
    assert list(item.form_fields.values_list("key", "label")) == [
        ("end", "Bis"),
        ("room", "Raum"),
        ("start", "Beginn"),
    ]
    assert item.version == 2
    assert FormField.history.filter(key="place", history_type="-").get().history_user == (
        org.admin.user
    )
    # The item's history page lists them: who removed "place", who renamed "start".
    page = admin_client.get(f"/katalog/leistung/{item.pk}/verlauf/").content.decode()
    assert "Form field „Wo? (place)“: removed" in page
    assert "Form field „Beginn (start)“: changed" in page
    assert "label: Von → Beginn" in page


def test_errors_come_back_on_the_row_and_nothing_is_saved(admin_client, org, category, item):
    fields, rules = current_rows(item)
    fields[1]["condition_field"] = "nirgends"
    rules[0]["second_field"] = "place"  # a choice field cannot be compared with a date
    data = post_data(org, category, fields, rules=rules, name="")
    response = admin_client.post(f"/katalog/verwaltung/{item.pk}/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required." in body  # the name
    # The cross-field problems need a valid item first; fix the name and look again.
    data["name"] = "Beamer-Ausleihe"
    response = admin_client.post(f"/katalog/verwaltung/{item.pk}/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "The order form has no field with the key “nirgends”." in body
    assert "This rule compares two fields of the same type: Date." in body
    assert 'id="id_fields-1-condition_field_error"' in body  # at the row's own field
    item.refresh_from_db()
    assert item.version == 1
    assert item.form_fields.get(key="room").condition_field == "place"


def test_preview_follows_unsaved_rows(admin_client, org, category, item):
    fields, rules = current_rows(item)
    fields.append({"key": "notes", "label": "Anmerkungen zur Lieferung", "field_type": "long_text"})
    fields.append({"key": "broken", "label": "", "field_type": "text"})  # invalid: left out
    data = post_data(org, category, fields, rules=rules)
    response = admin_client.post("/katalog/verwaltung/vorschau/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Anmerkungen zur Lieferung" in body
    assert 'data-form-field="f_room"' in body
    assert 'id="preview-logic"' in body
    assert "<html" not in body  # a partial for the script
    # Without JavaScript: the button renders the whole page with the preview, saving nothing.
    response = admin_client.post(f"/katalog/verwaltung/{item.pk}/", {**data, "preview": "1"})
    assert response.status_code == 200
    assert "Anmerkungen zur Lieferung" in response.content.decode()
    assert not item.form_fields.filter(key="notes").exists()


def test_list_page_queries_do_not_grow_with_items(admin_client, category):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/katalog/verwaltung/").status_code == 200
        return len(queries)

    CatalogueItemFactory(category=category)
    few = count()
    for _ in range(5):
        CatalogueItemFactory(category=CategoryFactory())
    assert count() == few


def action_rows(*rows):
    return formset("actions", ["position", "kind", "target", "attributes"], rows)


def test_dry_run_reads_the_directory_and_writes_nothing(
    admin_client, org, item, provisioning_directory
):
    group = add_group(provisioning_directory, "vpn-users")
    absent = add_group(provisioning_directory, "print-users")
    add_person(provisioning_directory, org.alice)
    add_person(provisioning_directory, org.bob)
    page = admin_client.get(f"/provisionierung/leistung/{item.pk}/aktionen/")
    assert page.status_code == 200

    rows = action_rows(
        {"kind": "add_to_group", "target": group},
        {"kind": "add_to_group", "target": "{{ answers.group }}"},
        {"kind": "set_attributes", "attributes": "title = {{ answers.title }}"},
        {"kind": "add_to_group", "target": "cn=nirgends,ou=groups," + group.split(",", 2)[2]},
    )
    data = {
        **rows,
        "person": org.alice.personnel_number,
        "answers": f"group = {absent}\ntitle = Sachbearbeitung",
        "dry_run": "1",
    }
    response = admin_client.post(f"/provisionierung/leistung/{item.pk}/aktionen/", data)
    assert response.status_code == 200
    body = response.content.decode()
    uid = org.alice.personnel_number
    assert f"would add {uid} to {group}" in body
    assert f"would add {uid} to {absent}" in body
    assert f"would set for {uid}: title = Sachbearbeitung" in body
    assert "The directory has no entry cn=nirgends,ou=groups," in body
    assert members(provisioning_directory, group) == {provisioning_directory.bind_dn.lower()}
    assert not ProvisioningAction.objects.filter(item=item).exists()  # nothing saved either

    # Saved, then a person already in the group: no change.
    response = admin_client.post(
        f"/provisionierung/leistung/{item.pk}/aktionen/",
        {**action_rows({"kind": "add_to_group", "target": group}), "person": ""},
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.version == 2
    action = ProvisioningAction.objects.get(item=item)
    assert action.history.get().history_user == org.admin.user


def test_dry_run_in_german(admin_client, org, item, provisioning_directory):
    group = add_group(provisioning_directory, "vpn-users")
    add_person(provisioning_directory, org.alice)
    data = {
        **action_rows({"kind": "add_to_group", "target": group}),
        "person": org.alice.personnel_number,
        "answers": "",
        "dry_run": "1",
    }
    response = admin_client.post(
        f"/provisionierung/leistung/{item.pk}/aktionen/", data, HTTP_ACCEPT_LANGUAGE="de"
    )
    assert f"würde {org.alice.personnel_number} zu {group} hinzufügen" in response.content.decode()
