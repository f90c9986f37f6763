"""Named formats, conditional fields and rules across answers: on the order page, through the
API order endpoint, in the API's item writes and in the catalogue exchange, on PostgreSQL.
(The browser's half, static/js/form-conditions.js, is in test_form_conditions_browser.py.)"""

from decimal import Decimal

import pytest
import regex
from django.utils import translation

from catalogue import conditions
from catalogue.choices import ConditionEffect, ConditionOperator, FieldType, RuleKind
from catalogue.exchange import services as exchange
from catalogue.exchange.validation import ExchangeError
from catalogue.formats import FORMATS
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem, FormField, FormRule
from requests_app.models import ServiceRequest
from tests.factories import CatalogueItemFactory, FormFieldFactory

pytestmark = pytest.mark.django_db

# Each named format: answers it must accept and answers it must refuse.
FORMAT_EXAMPLES = {
    "room_number": (["B 2.014", "A-1.01", "VH3.120"], ["2.014", "B 2", "B 2.0141", "b 2.014"]),
    "phone_number": (["0211 899-1234", "+49 211 8991234", "0211/899 12"], ["1234", "0211-abc"]),
    "personnel_number": (["m10042"], ["M10042", "m1004", "m100421", "10042"]),
    "email": (["anna.schmidt@musterstadt.de"], ["anna", "a@b", "a b@c.de", "<a>@c.de"]),
    "postcode": (["40213", "01067"], ["4021", "402133", "D-40213"]),
    "iban": (["DE89 3704 0044 0532 0130 00", "DE89370400440532013000"], ["DE89 3704", "AT61"]),
    "ipv4_address": (["10.20.30.40", "255.255.255.0"], ["256.1.1.1", "10.20.30", "1.2.3.4.5"]),
    "hostname": (["pc-ba-0142", "SRV01"], ["-pc", "pc_01", "a" * 64]),
    "licence_plate": (["D-MS 1234", "K-AB 12E"], ["DMS1234", "D-1234"]),
}


def test_every_format_has_examples_and_they_hold():
    assert set(FORMAT_EXAMPLES) == set(FORMATS)
    for name, (good, bad) in FORMAT_EXAMPLES.items():
        compiled = regex.compile(FORMATS[name].regex)
        for answer in good:
            assert compiled.fullmatch(answer), (name, answer)
        for answer in bad:
            assert not compiled.fullmatch(answer), (name, answer)


@pytest.fixture
def item(org):
    """A loan form: a device choice, a room only for "Beamer", a reason required for a long
    loan, an end date after the start date, at least one contact."""
    item = CatalogueItemFactory(name="Leihgerät", slug="leihgeraet", service_owner=org.service_desk)
    fields = [
        ("device", FieldType.CHOICE, {"choices": "Notebook\nBeamer\nHeadset"}),
        (
            "room",
            FieldType.TEXT,
            {
                "answer_format": "room_number",
                "condition_effect": ConditionEffect.SHOW,
                "condition_field": "device",
                "condition_operator": ConditionOperator.EQUALS,
                "condition_value": "Beamer",
            },
        ),
        (
            "cable",
            FieldType.YES_NO,
            {
                "required": False,
                "condition_effect": ConditionEffect.SHOW,
                "condition_field": "room",
                "condition_operator": ConditionOperator.IS_SET,
            },
        ),
        ("start", FieldType.DATE, {}),
        ("end", FieldType.DATE, {}),
        ("weeks", FieldType.NUMBER, {"required": False}),
        (
            "reason",
            FieldType.TEXT,
            {
                "required": False,
                "condition_effect": ConditionEffect.REQUIRE,
                "condition_field": "weeks",
                "condition_operator": ConditionOperator.ONE_OF,
                "condition_value": "4\n5\n6",
            },
        ),
        ("phone", FieldType.TEXT, {"required": False, "answer_format": "phone_number"}),
        ("mail", FieldType.TEXT, {"required": False, "answer_format": "email"}),
    ]
    for position, (key, kind, extra) in enumerate(fields, start=1):
        FormFieldFactory(
            item=item, key=key, label=key.capitalize(), field_type=kind, position=position, **extra
        )
    FormRule.objects.create(
        item=item, position=1, kind=RuleKind.AFTER, first_field="end", second_field="start"
    )
    FormRule.objects.create(
        item=item, position=2, kind=RuleKind.AT_LEAST_ONE, first_field="phone", second_field="mail"
    )
    return item


def data(item, **answers):
    base = {
        "item_version": str(item.version),
        "f_device": "Notebook",
        "f_start": "2030-05-02",
        "f_end": "2030-05-09",
        "f_phone": "0211 899-1234",
    }
    base.update({f"f_{k}": v for k, v in answers.items()})
    return {k: v for k, v in base.items() if v is not None}


def form(item, org, **answers):
    result = OrderForm(data(item, **answers), item=item, requester_employee=org.alice)
    result.is_valid()
    return result


def test_a_hidden_field_is_not_required_and_its_answer_is_discarded(org, item):
    # "room" is shown only for a projector: its (even badly formed) answer is dropped.
    result = form(item, org, room="nonsense", cable="on")
    assert result.errors == {}
    assert result.answers["room"] is None
    assert result.answers["cable"] is None  # depends on the hidden room: hidden too


def test_a_shown_field_is_required_and_checked_against_its_format(org, item):
    result = form(item, org, device="Beamer")
    assert result.errors["f_room"] == ["This field is required."]
    result = form(item, org, device="Beamer", room="Raum 5")
    assert result.errors["f_room"] == [
        "Expected format: room number, building letter, floor and room, e.g. B 2.014."
    ]
    result = form(item, org, device="Beamer", room="B 2.014", cable="on")
    assert result.errors == {}
    assert result.answers["room"] == "B 2.014"
    assert result.answers["cable"] is True


def test_required_only_when_another_answer_is_one_of(org, item):
    assert form(item, org, weeks="2").errors == {}
    assert form(item, org, weeks="5").errors["f_reason"] == ["This field is required."]
    assert form(item, org, weeks="5.00", reason="Projekt").errors == {}


def test_rules_across_fields(org, item):
    result = form(item, org, end="2030-05-01")
    assert result.errors["f_end"] == ["“End” must be after “Start”."]
    result = form(item, org, phone="", mail="")
    assert result.errors["__all__"] == ["Please answer at least one of: „Phone“, „Mail“."]
    assert form(item, org, phone="", mail="anna.schmidt@musterstadt.de").errors == {}


def test_messages_in_german(org, item):
    with translation.override("de"):
        result = form(item, org, device="Beamer", room="5", end="2030-05-01", phone="")
        assert result.errors["f_room"] == [
            "Erwartetes Format: Raumnummer, Gebäudebuchstabe, Etage und Raum, z. B. B 2.014."
        ]
        assert result.errors["f_end"] == ["„End“ muss nach „Start“ liegen."]
        assert result.errors["__all__"] == [
            "Bitte beantworten Sie mindestens eines davon: „Phone“, „Mail“."
        ]
        assert "Format: Telefonnummer, Ziffern mit Vorwahl" in str(result["f_phone"].help_text)


def test_order_page_posts_through_the_same_rules(org, item, client):
    client.force_login(org.alice.user)
    url = f"/leistung/{item.slug}/bestellen/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'id="form-logic" type="application/json"' in page.content
    assert b'data-form-field="f_room"' in page.content
    assert b"js/form-conditions" in page.content
    response = client.post(url, data(item, device="Beamer"))
    assert response.status_code == 400
    assert ServiceRequest.objects.count() == 0
    response = client.post(url, data(item, room="egal"))
    assert response.status_code == 302
    request = ServiceRequest.objects.get()
    assert request.answers["room"] is None
    assert request.answers["device"] == "Notebook"


def test_api_order_endpoint_judges_alike(org, item, api_as):
    alice = api_as(org.alice)

    def body(**answers):
        base = {"device": "Notebook", "start": "2030-05-02", "end": "2030-05-09"}
        base.update(answers)
        return {"item": item.slug, "item_version": item.version, "answers": base}

    response = alice.post(
        "/api/v1/requests/", body(device="Beamer", end="2030-01-01"), format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert errors["answers.room"] == ["This field is required."]
    assert errors["answers.end"] == ["“End” must be after “Start”."]
    assert errors["non_field_errors"] == ["Please answer at least one of: „Phone“, „Mail“."]
    response = alice.post(
        "/api/v1/requests/", body(room="B 2.014", mail="a.b@musterstadt.de"), format="json"
    )
    assert response.status_code == 201, response.json()
    assert ServiceRequest.objects.get().answers["room"] is None


def test_the_browser_gets_the_same_definitions(org, item):
    logic = OrderForm(item=item, requester_employee=org.alice).logic
    room = next(f for f in logic["fields"] if f["key"] == "room")
    assert room == {
        "name": "f_room",
        "key": "room",
        "type": "text",
        "required": True,
        "condition": {
            "effect": "show",
            "field": "device",
            "operator": "equals",
            "values": ["Beamer"],
        },
    }
    # Unbound: the conditionally required field is not marked required yet.
    unbound = OrderForm(item=item, requester_employee=org.alice)
    assert unbound.fields["f_reason"].required is False
    assert unbound.fields["f_device"].required is True


def test_chained_and_circular_conditions_are_judged_without_recursion(org, item):
    definitions = list(item.form_fields.all())
    states = conditions.field_states(definitions, {"device": "Beamer", "room": "B 2.014"})
    assert states["cable"].visible
    assert not conditions.field_states(definitions, {"device": "Headset", "room": "B 2.014"})[
        "cable"
    ].visible
    a = FormField(key="a", field_type=FieldType.TEXT, condition_effect="show", condition_field="b")
    b = FormField(key="b", field_type=FieldType.TEXT, condition_effect="show", condition_field="a")
    a.condition_operator = b.condition_operator = ConditionOperator.IS_SET
    states = conditions.field_states([a, b], {"a": "x", "b": "y"})
    assert not states["a"].visible and not states["b"].visible


def test_definitions_are_checked_when_saved(org, item, api_as):
    admin = api_as(org.admin)
    current = admin.get(f"/api/v1/items/{item.slug}/").json()
    assert current["form_rules"][0]["kind"] == "after"
    fields = current["form_fields"]
    by_key = {f["key"]: f for f in fields}
    by_key["room"]["condition_field"] = "nowhere"
    by_key["cable"]["condition_value"] = ""
    by_key["device"].update(
        condition_effect="show", condition_field="cable", condition_operator="is_set"
    )
    by_key["phone"]["pattern"] = "[0-9]+"
    rules = [
        {"position": 1, "kind": "after", "first_field": "end", "second_field": "weeks"},
        {"position": 2, "kind": "at_least_one", "first_field": "phone"},
    ]
    response = admin.patch(
        f"/api/v1/items/{item.slug}/",
        {"form_fields": fields, "form_rules": rules},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    keys = [f["key"] for f in fields]
    assert errors[f"form_fields[{keys.index('phone')}].pattern"] == [
        "Choose a format or enter a pattern, not both."
    ]
    # Field-level errors stop before cross-references are checked; fix them and look again.
    by_key["phone"]["pattern"] = ""
    response = admin.patch(
        f"/api/v1/items/{item.slug}/",
        {"form_fields": fields, "form_rules": rules},
        format="json",
    )
    errors = response.json()
    room = keys.index("room")
    assert errors[f"form_fields[{room}].condition_field"] == [
        "The order form has no field with the key “nowhere”."
    ]
    assert errors["form_rules[0]"] == [
        "This rule compares two fields of the same type: Date.",
    ]
    assert errors["form_rules[1]"] == ["Name at least two fields."]
    assert CatalogueItem.objects.get(pk=item.pk).form_fields.get(key="room").condition_field == (
        "device"
    )


def test_cycles_and_unknown_options_are_refused():
    device = FormField(key="device", label="Gerät", field_type=FieldType.CHOICE, choices="A\nB")
    x = FormField(
        key="x",
        field_type=FieldType.TEXT,
        condition_effect="show",
        condition_field="device",
        condition_operator="one_of",
        condition_value="A\nC",
    )
    y = FormField(
        key="y",
        field_type=FieldType.TEXT,
        condition_effect="show",
        condition_field="z",
        condition_operator="is_set",
    )
    z = FormField(
        key="z",
        field_type=FieldType.TEXT,
        condition_effect="require",
        condition_field="y",
        condition_operator="is_set",
    )
    me = FormField(
        key="me",
        field_type=FieldType.TEXT,
        condition_effect="show",
        condition_field="me",
        condition_operator="is_set",
    )
    problems = conditions.definition_problems([device, x, y, z, me], [])
    assert problems == {
        "form_fields[1].condition_value": ["“Gerät” has no option „C“."],
        "form_fields[2].condition_field": [
            "The conditions of these fields depend on each other in a circle."
        ],
        "form_fields[3].condition_field": [
            "The conditions of these fields depend on each other in a circle."
        ],
        "form_fields[4].condition_field": ["A field cannot depend on itself."],
    }


def test_exchange_carries_conditions_formats_and_rules(org, item):
    document = exchange.catalogue_export(item_slugs=[item.slug])
    exported = document["items"][0]
    room = next(f for f in exported["form_fields"] if f["key"] == "room")
    assert room["answer_format"] == "room_number"
    assert room["condition_field"] == "device"
    assert [r["kind"] for r in exported["form_rules"]] == ["after", "at_least_one"]

    mapping = dict.fromkeys(document["placeholders"], "Service Desk")
    report = exchange.catalogue_import(document=document, mapping=mapping, on_conflict="rename")
    copy = CatalogueItem.objects.get(slug=report.items_renamed[0][1])
    assert copy.form_fields.get(key="room").condition_value == "Beamer"
    assert copy.form_rules.count() == 2

    room["condition_field"] = "gone"
    room["answer_format"] = "shoe_size"
    exported["form_rules"][0]["second_field"] = "weeks"
    with pytest.raises(ExchangeError) as caught:
        exchange.catalogue_import(document=document, mapping=mapping, on_conflict="rename")
    problems = {p.path: p.message for p in caught.value.problems}
    index = [f["key"] for f in exported["form_fields"]].index("room")
    assert problems[f"$.items[0].form_fields[{index}].condition_field"] == (
        "The order form has no field with the key “gone”."
    )
    assert problems[f"$.items[0].form_fields[{index}].answer_format"].startswith(
        "unknown format “shoe_size”"
    )
    assert problems["$.items[0].form_rules[0]"] == (
        "This rule compares two fields of the same type: Date."
    )


def test_form_fields_and_rules_keep_a_history_with_the_author(org, item, api_as):
    admin = api_as(org.admin)
    current = admin.get(f"/api/v1/items/{item.slug}/").json()
    current["form_fields"][0]["label"] = "Welches Gerät?"
    response = admin.patch(
        f"/api/v1/items/{item.slug}/",
        {"form_fields": current["form_fields"], "form_rules": current["form_rules"][:1]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    # Changed in place: one "changed" record, none for the fields left as they were.
    changed = FormField.history.filter(key="device", label="Welches Gerät?").get()
    assert changed.history_type == "~" and changed.history_user == org.admin.user
    assert not FormField.history.filter(key="room", history_type__in=["~", "-"]).exists()
    deleted = FormRule.history.filter(kind=RuleKind.AT_LEAST_ONE, history_type="-").get()
    assert deleted.history_user == org.admin.user
    assert CatalogueItem.objects.get(pk=item.pk).version == item.version + 1


def test_number_conditions_compare_as_numbers():
    weeks = FormField(key="weeks", field_type=FieldType.NUMBER)
    reason = FormField(
        key="reason",
        field_type=FieldType.TEXT,
        required=True,
        condition_effect="show",
        condition_field="weeks",
        condition_operator="equals",
        condition_value="4",
    )
    assert conditions.field_states([weeks, reason], {"weeks": str(Decimal("4.00"))})[
        "reason"
    ].required
    assert not conditions.field_states([weeks, reason], {"weeks": "4.5"})["reason"].visible
