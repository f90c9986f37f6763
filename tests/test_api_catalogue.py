"""Catalogue over the API: visibility as on the pages, writes with the admin's validation."""

import pytest

from catalogue.choices import Audience
from catalogue.models import CatalogueItem, Category
from tests.factories import CatalogueItemFactory

pytestmark = pytest.mark.django_db


def item_body(world, **overrides):
    body = {
        "slug": "vpn",
        "name": "VPN-Zugang",
        "category": world.category.slug,
        "service_owner": world.org.service_desk.name,
        "price_once": "0.00",
        "price_monthly": "4.50",
        "form_fields": [
            {"key": "reason", "label": "Grund", "field_type": "text", "max_length": 100},
            {"key": "deputy", "label": "Vertretung", "field_type": "person", "required": False},
        ],
        "approval_policy": [
            {"position": 1, "approver_kind": "line_manager"},
            {"position": 2, "approver_kind": "person_field", "person_field_key": "deputy"},
        ],
    }
    body.update(overrides)
    return body


def test_employees_see_what_they_may_order(world, api_as):
    retired = CatalogueItemFactory(slug="alt", is_active=False, category=world.category)
    alice = api_as(world.org.alice)
    slugs = [i["slug"] for i in alice.get("/api/v1/items/").json()["results"]]
    assert slugs == ["maus", "monitor"]
    assert [c["slug"] for c in alice.get("/api/v1/categories/").json()["results"]] == ["hardware"]
    detail = alice.get("/api/v1/items/monitor/").json()
    assert [f["key"] for f in detail["form_fields"]] == ["room", "size"]
    assert detail["form_fields"][1]["choices"] == ["24", "27"]
    assert detail["approval_policy"] == [
        {"position": 1, "approver_kind": "line_manager", "group": None,
         "person_field_key": "", "label": ""},
    ]  # fmt: skip
    assert alice.get(f"/api/v1/items/{retired.slug}/").status_code == 404
    refused = alice.get(f"/api/v1/items/{world.restricted.slug}/")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This service is not available to you."}
    assert alice.get("/api/v1/items/", {"q": "moni"}).json()["count"] == 1
    assert (
        alice.get("/api/v1/items/", {"ordering": "-price_once"}).json()["results"][0]["slug"]
        == "maus"
    )
    admin = api_as(world.org.admin)
    assert admin.get("/api/v1/items/").json()["count"] == 4
    assert admin.get(f"/api/v1/items/{world.restricted.slug}/").status_code == 200


def test_department_audience_opens_the_item(world, api_as):
    world.restricted.allowed_departments.add(world.org.department)
    assert world.restricted.audience == Audience.RESTRICTED
    alice = api_as(world.org.alice)
    assert alice.get(f"/api/v1/items/{world.restricted.slug}/").status_code == 200
    assert (
        api_as(world.org.outsider).get(f"/api/v1/items/{world.restricted.slug}/").status_code == 403
    )


def test_admin_creates_an_item_with_form_and_policy(world, api_as):
    admin = api_as(world.org.admin)
    response = admin.post("/api/v1/items/", item_body(world), format="json")
    assert response.status_code == 201, response.json()
    item = CatalogueItem.objects.get(slug="vpn")
    assert item.version == 1
    assert [f.key for f in item.form_fields.all()] == ["reason", "deputy"]
    assert [s.approver_kind for s in item.approval_steps.all()] == ["line_manager", "person_field"]
    assert response.json()["price_monthly"] == "4.50"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"form_fields": [{"key": "x", "label": "X", "field_type": "choice"}],
          "approval_policy": []},
         "form_fields[0].choices", "Choice fields need at least one option."),
        ({"form_fields": [{"key": "x", "label": "X", "field_type": "text", "pattern": "("}],
          "approval_policy": []},
         "form_fields[0].pattern", "Not a valid regular expression"),
        ({"form_fields": [{"key": "x", "label": "X", "field_type": "text"},
                          {"key": "x", "label": "Y", "field_type": "text"}],
          "approval_policy": []},
         "form_fields[1]", "Each field of an item needs its own key."),
        ({"form_fields": [{"key": "Bad Key", "label": "X", "field_type": "text"}],
          "approval_policy": []},
         "form_fields[0].key", "Use lower-case letters"),
        ({"approval_policy": [{"position": 1, "approver_kind": "person_field",
                               "person_field_key": "reason"}]},
         "approval_policy[0].person_field_key", "no field of this kind"),
        ({"approval_policy": [{"position": 1, "approver_kind": "group"}]},
         "approval_policy[0].group", "Group steps need a group."),
        ({"price_once": "-1.00"}, "price_once", "greater than or equal to 0"),
        ({"slug": "monitor"}, "slug", "already exists"),
        ({"service_owner": "Nobody"}, "service_owner", "does not exist"),
        ({"category": "nope"}, "category", "does not exist"),
        ({"name": "x" * 201}, "name", "no more than 200 characters"),
        ({"is_active": "vielleicht"}, "is_active", "valid boolean"),
        ({"version": 7, "colour": "red"}, "colour", "Unknown field."),
    ],
)  # fmt: skip
def test_item_validation_equals_the_admins(world, api_as, overrides, field, message):
    admin = api_as(world.org.admin)
    response = admin.post("/api/v1/items/", item_body(world, **overrides), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert message in " ".join(map(str, errors[field]))
    assert not CatalogueItem.objects.filter(name="VPN-Zugang").exists()  # all or nothing


def test_changes_raise_the_version_and_stale_orders_are_refused(world, api_as):
    admin, alice = api_as(world.org.admin), api_as(world.org.alice)
    same = admin.patch("/api/v1/items/monitor/", {"price_once": "10.00"}, format="json")
    assert same.status_code == 200
    assert same.json()["version"] == 1  # nothing changed: no new version
    changed = admin.patch(
        "/api/v1/items/monitor/",
        {"form_fields": [{"key": "room", "label": "Raum", "field_type": "text"}]},
        format="json",
    )
    assert changed.json()["version"] == 2
    assert [f["key"] for f in changed.json()["form_fields"]] == ["room"]
    assert changed.json()["approval_policy"][0]["approver_kind"] == "line_manager"  # kept
    stale = alice.post(
        "/api/v1/requests/",
        {"item": "monitor", "item_version": 1, "answers": {"room": "B 2"}},
        format="json",
    )
    assert stale.status_code == 400
    assert "item_version" in stale.json()


def test_categories_write_and_delete(world, api_as):
    admin = api_as(world.org.admin)
    created = admin.post("/api/v1/categories/", {"slug": "software", "name": "Software"},
                         format="json")  # fmt: skip
    assert created.status_code == 201
    duplicate = admin.post("/api/v1/categories/", {"slug": "software", "name": "Noch mal"},
                           format="json")  # fmt: skip
    assert duplicate.status_code == 400
    assert "slug" in duplicate.json()
    in_use = admin.delete(f"/api/v1/categories/{world.category.slug}/")
    assert in_use.status_code == 409
    assert admin.delete("/api/v1/categories/software/").status_code == 204
    assert not Category.objects.filter(slug="software").exists()


def test_removing_a_field_that_a_kept_step_names_is_refused(world, api_as):
    admin = api_as(world.org.admin)
    assert admin.post("/api/v1/items/", item_body(world), format="json").status_code == 201
    response = admin.patch(
        "/api/v1/items/vpn/",
        {"form_fields": [{"key": "reason", "label": "Grund", "field_type": "text"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "approval_policy[1].person_field_key" in response.json()
    item = CatalogueItem.objects.get(slug="vpn")
    assert [f.key for f in item.form_fields.all()] == ["reason", "deputy"]  # unchanged
    assert item.version == 1


def test_collect_on_leaving_travels_through_the_item_api(world, api_as):
    """Written, read back and written again unchanged (GET body → PUT) in the item API."""
    admin = api_as(world.org.admin)
    body = item_body(world, slug="notebook", name="Notebook", collect_on_leaving=True)
    created = admin.post("/api/v1/items/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["collect_on_leaving"] is True
    assert CatalogueItem.objects.get(slug="notebook").collect_on_leaving is True
    read = admin.get("/api/v1/items/notebook/").json()
    assert read["collect_on_leaving"] is True
    for key in ("id", "version", "created_at", "updated_at"):
        read.pop(key)
    again = admin.put("/api/v1/items/notebook/", read, format="json")
    assert again.status_code == 200, again.json()
    assert again.json()["collect_on_leaving"] is True
    off = admin.patch("/api/v1/items/notebook/", {"collect_on_leaving": False}, format="json")
    assert off.json()["collect_on_leaving"] is False
    assert CatalogueItem.objects.get(slug="notebook").collect_on_leaving is False


def test_item_list_rows_read_as_values_have_the_serializers_body(world, api_as):
    """The item list builds its bodies from values (CatalogueItemSerializer.rows): each is
    what the serializer makes of the item, forms, rules, policies with and without groups,
    departments and groups included, for employees and IT admins, first and deeper pages."""
    from decimal import Decimal

    from django.contrib.auth.models import Group

    from api.serializers import CatalogueItemSerializer
    from catalogue.models import ApprovalPolicyStep, Department, FormField, FormRule
    from tests.factories import DepartmentFactory

    admin = api_as(world.org.admin)
    created = admin.post("/api/v1/items/", item_body(world), format="json")
    assert created.status_code == 201, created.json()
    vpn = CatalogueItem.objects.get(slug="vpn")
    FormField.objects.filter(item=vpn, key="reason").update(
        min_value=Decimal("1.50"), max_value=Decimal("10"), choices=" a \n\n b ",
        help_text="<b>Warum?</b>", earliest_days=2,
    )  # fmt: skip
    FormRule.objects.create(item=vpn, position=1, kind="at_least_one", first_field="reason",
                            second_field="deputy", message="Eins von beiden")  # fmt: skip
    ApprovalPolicyStep.objects.create(item=vpn, position=3, approver_kind="group",
                                      group=world.org.service_desk, label="IT")  # fmt: skip
    second, alpha = DepartmentFactory(), Group.objects.create(name="Alpha")
    for item in (vpn, world.restricted):
        item.allowed_departments.add(second, world.org.department)
        item.allowed_groups.add(world.org.service_desk, alpha)
    lists = [
        (admin, {}),
        (admin, {"offset": 2, "limit": 2}),
        (admin, {"q": "vpn"}),
        (api_as(world.org.alice), {"ordering": "-price_once"}),
    ]
    seen = set()
    for client, params in lists:
        for row in client.get("/api/v1/items/", params).json()["results"]:
            item = CatalogueItem.objects.get(pk=row["id"])
            expected = CatalogueItemSerializer(item).data
            # Sorted in the list; in no particular order from the model's relations.
            for name in ("allowed_departments", "allowed_groups"):
                expected[name] = sorted(expected[name])
            assert row == expected
            assert list(row) == list(expected)
            seen.add(row["slug"])
    assert {"vpn", "maus", "monitor", world.restricted.slug} <= seen
    assert Department.objects.count() >= 2


def test_value_bodies_pass_plain_values_through_as_the_fields_would():
    """ValuesBodies formats booleans, texts and integers of their own type by passing
    them through (DRF's BooleanField looks each up in its spellings); other values still
    go to the field, so the body is what ``to_representation`` gives."""
    from decimal import Decimal

    from rest_framework import serializers

    from api.serializers import ValuesBodies, _NotPassed, _passed_type

    cases = [
        (serializers.BooleanField(), [True, False, "true", "0", 1, None]),
        (serializers.CharField(), ["Text", "", 5, Decimal("1.50")]),
        (serializers.SlugField(), ["a-slug"]),
        (serializers.IntegerField(), [3, 0, Decimal("7"), "12", True]),
    ]
    for field, values in cases:
        kind = _passed_type(field)
        assert kind is not _NotPassed
        passed = [value for value in values if type(value) is kind]
        assert passed
        for value in passed:
            expected = field.to_representation(value)
            assert value == expected and type(value) is type(expected), value

        class One(serializers.Serializer):
            value = field

        bodies = ValuesBodies(One)([{"value": value} for value in values])
        for body, value in zip(bodies, values, strict=True):
            expected = None if value is None else field.to_representation(value)
            assert body["value"] == expected and type(body["value"]) is type(expected), value
    texts = serializers.ChoiceField(choices=[("a", "A"), ("b", "B")])
    assert _passed_type(texts) is str
    assert [texts.to_representation(value) for value in ("a", "b", "c", "")] == ["a", "b", "c", ""]
    numbers = serializers.ChoiceField(choices=[(1, "one")])
    assert _passed_type(numbers) is _NotPassed  # "1" becomes 1: its own mapping


@pytest.mark.parametrize(
    "order",
    [
        ("category__position", "name", "-pk"),
        ("-price_once", "-pk"),
        ("slug",),
        ("-updated_at", "name", "-pk"),
    ],
)
def test_an_item_page_read_by_its_kept_statement_is_the_orms(world, order):
    """item_page_values reads the rows of a page by a statement compiled once per columns
    and order: the same dicts, in the same order, as item_list_values sliced,
    for an employee's items (made distinct by their departments and groups) and all items,
    filtered or not, on the first page and deeper ones."""
    from api.serializers import CatalogueItemSerializer
    from catalogue import selectors

    columns = CatalogueItemSerializer.ROW_COLUMNS
    for index in range(6):
        CatalogueItemFactory(slug=f"extra{index}", category=world.category)
    world.restricted.allowed_departments.add(world.org.department)
    lists = [
        selectors.items_orderable_by(world.org.alice).select_related("service_owner"),
        CatalogueItem.objects.select_related("category", "service_owner"),
        CatalogueItem.objects.filter(category__slug=world.category.slug, is_active=True),
    ]
    for items in lists:
        items = items.order_by(*order)
        total = items.count()
        assert total >= 6
        for start, stop in ((0, 3), (2, 5), (total - 2, total + 3), (total, total + 2)):
            expected = list(selectors.item_list_values(items, columns)[start:stop])
            # As the paginator chooses them: by the ids of the rows start … stop, ordered.
            ids = items.values("pk")[start:stop]
            chosen = CatalogueItem._base_manager.filter(pk__in=ids).order_by(*order)
            assert selectors.item_page_values(chosen, columns) == expected


def test_item_parts_read_by_kept_statements_are_the_orms(world):
    """item_list_parts reads forms, rules and policies by statements compiled once: the
    rows the ORM reads, in each model's order, by item; none and no query for no items."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api.serializers import CatalogueItemSerializer as Items
    from catalogue import selectors
    from catalogue.models import ApprovalPolicyStep, FormField, FormRule

    ids = list(CatalogueItem.objects.values_list("pk", flat=True))
    parts = selectors.item_list_parts(
        ids,
        form_fields=Items.FORM_FIELD_COLUMNS,
        form_rules=Items.FORM_RULE_COLUMNS,
        approval_steps=Items.STEP_COLUMNS,
    )
    reads = (
        ("form_fields", FormField, Items.FORM_FIELD_COLUMNS),
        ("form_rules", FormRule, Items.FORM_RULE_COLUMNS),
        ("approval_steps", ApprovalPolicyStep, Items.STEP_COLUMNS),
    )
    for name, model, columns in reads:
        expected = {}
        for row in model.objects.filter(item_id__in=ids).values("item_id", *columns):
            expected.setdefault(row["item_id"], []).append(row)
        assert parts[name] == expected
    assert parts["form_fields"]  # the world's items have forms
    with CaptureQueriesContext(connection) as queries:
        empty = selectors.item_list_parts(
            [], form_fields=("key",), form_rules=("kind",), approval_steps=("label",)
        )
    assert empty == {"form_fields": {}, "form_rules": {}, "approval_steps": {}}
    assert not queries.captured_queries


def test_kept_item_bodies_follow_every_change_of_their_parts(world, api_as):
    """The list keeps each item's body under its row and its parts' stamp: a change of a
    form field, a form rule or an approval step's group, made without raising the item's
    version, shows at once; an unchanged list reads no parts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api.serializers import CatalogueItemSerializer
    from catalogue.models import ApprovalPolicyStep, FormField, FormRule

    item = world.item
    FormRule.objects.create(item=item, position=1, kind="at_least_one", first_field="room",
                            second_field="room", message="Eins")  # fmt: skip
    step = ApprovalPolicyStep.objects.create(
        item=item, position=5, approver_kind="group", group=world.org.service_desk, label="IT"
    )
    client = api_as(world.org.alice)

    def body():
        with CaptureQueriesContext(connection) as queries:
            rows = client.get("/api/v1/items/", {"limit": 200}).json()["results"]
        (row,) = [row for row in rows if row["id"] == item.pk]
        expected = CatalogueItemSerializer(CatalogueItem.objects.get(pk=item.pk)).data
        assert row == expected
        return row, len(queries)

    body()  # the token's first use is recorded once (last_used_at)
    changes = [
        lambda: FormField.objects.filter(item=item).update(help_text="Neu"),
        lambda: FormRule.objects.filter(item=item).update(message="Anders"),
        lambda: type(world.org.service_desk).objects.filter(pk=step.group_id).update(name="SD"),
        lambda: ApprovalPolicyStep.objects.filter(pk=step.pk).delete(),
    ]
    seen = []
    for change in changes:
        change()
        row, changed = body()
        seen.append(row)
        _, warm = body()
        assert changed == warm + 3  # the changed item's parts read again, once
    assert seen[0]["form_fields"][0]["help_text"] == "Neu"
    assert seen[1]["form_rules"][0]["message"] == "Anders"
    assert seen[2]["approval_policy"][-1]["group"] == "SD"
    assert len(seen[3]["approval_policy"]) == len(seen[2]["approval_policy"]) - 1


def test_item_list_json_is_drfs_with_kept_bodies(world, api_as):
    """The item list's kept bodies are put into the page's JSON as their kept texts: the
    bytes DRF's renderer writes of the whole page, characters it escapes included, and
    indented as DRF indents when asked."""
    from rest_framework.renderers import JSONRenderer

    from catalogue.models import FormField

    FormField.objects.filter(item=world.item).update(help_text='Zeile\u2028neu „ä“ \\ "x"')
    client = api_as(world.org.alice)
    for params in ({}, {"limit": 1}, {"limit": 1, "offset": 1}, {"is_active": "false"}):
        for _ in range(2):  # made, then kept
            response = client.get("/api/v1/items/", params)
            assert response.content == JSONRenderer().render(response.data)
    assert b"\\u2028" in client.get("/api/v1/items/").content
    indented = client.get("/api/v1/items/", HTTP_ACCEPT="application/json; indent=2")
    assert indented.content == JSONRenderer().render(indented.data, "application/json; indent=2")
    assert b'\n  "count"' in indented.content
