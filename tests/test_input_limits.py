"""The concrete hostile inputs of issue 9, each answered with a clear 4xx and nothing saved.

tests/test_hostile_input.py feeds such values into every form and API write; this file
pins the cases that crashed once, with their messages.
"""

import json

import pytest
from django.core.exceptions import ValidationError

from api.models import ApiToken
from catalogue import patterns
from catalogue.choices import FieldType
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem, FormField
from requests_app.models import ServiceRequest, Substitution
from tests.api_support import token_client
from tests.factories import CatalogueItemFactory, FormFieldFactory

pytestmark = pytest.mark.django_db

DATE_MESSAGE = "Please enter a date between 1900-01-01 and 2999-12-31."
DEEP_MESSAGE = "The JSON body is nested too deeply (at most 32 levels)."


@pytest.fixture
def api(world):
    client = token_client(world.org.admin.user)
    client.raise_request_exception = False
    return client


def post_json(client, url, text):
    return client.post(url, text, content_type="application/json")


# --- page sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize("per_page", ["-1", "0", "99999999999999999999", "abc", "1e9", ""])
def test_per_page_is_bounded_on_list_pages(client, world, per_page):
    client.force_login(world.org.alice.user)
    response = client.get("/antraege/", {"per_page": per_page, "page": "-3"})
    assert response.status_code == 200
    page = response.context["table"].page
    assert 1 <= page.paginator.per_page <= 100
    assert f'href="/antraege/{world.pending.pk}/"' in response.content.decode()


@pytest.mark.parametrize(
    "query", ["limit=-1", "offset=-1", "limit=99999999999999999999", "offset=1" + "0" * 30]
)
def test_limit_and_offset_are_bounded_in_the_api(api, query):
    response = api.get(f"/api/v1/requests/?{query}")
    assert response.status_code == 200
    assert len(response.json()["results"]) <= 200


# --- JSON bodies ----------------------------------------------------------------------------


SURROGATE = "Surrogate characters are not allowed: U+{}."
DEEP = {"detail": DEEP_MESSAGE}


@pytest.mark.parametrize(
    ("url", "body", "answer"),
    [
        ("/api/v1/tokens/", '{"name": "x\\ud800y"}', {"name": [SURROGATE.format("D800")]}),
        ("/api/v1/tokens/", '{"n\\udfff": "x"}', {"non_field_errors": [SURROGATE.format("DFFF")]}),
        (
            "/api/v1/requests/",
            '{"item": "monitor", "item_version": 1, "answers": {"room": ["A", "\\udc00"]}}',
            {"answers.room[1]": [SURROGATE.format("DC00")]},
        ),
        (
            "/api/v1/items/",
            '{"name": "x", "category": "hard\\u0000ware"}',
            {"category": ["Null characters are not allowed."]},
        ),
        ("/api/v1/requests/", '{"answers": ' + "[" * 100_000 + "]" * 100_000 + "}", DEEP),
        ("/api/v1/tokens/", '{"name": ' + '{"a": ' * 5000 + "1" + "}" * 5001, DEEP),
        ("/api/v1/requests/", '{"answers": {"room": ' + "[" * 40 + "]" * 40 + "}}", DEEP),
    ],
)
def test_unstorable_json_bodies_are_refused(api, world, url, body, answer):
    before = (
        ServiceRequest.objects.count(),
        ApiToken.objects.count(),
        CatalogueItem.objects.count(),
    )
    response = post_json(api, url, body)
    assert response.status_code == 400
    assert response.json() == answer
    after = (
        ServiceRequest.objects.count(),
        ApiToken.objects.count(),
        CatalogueItem.objects.count(),
    )
    assert after == before


def test_nul_characters_are_refused_by_the_field(api, world):
    body = '{"item": "monitor", "item_version": 1, "answers": {"room": "A\\u0000"}}'
    response = post_json(api, "/api/v1/requests/", body)
    assert response.status_code == 400
    assert response.json() == {"answers.room": ["Null characters are not allowed."]}
    assert ServiceRequest.objects.count() == 3


def test_item_fields_with_surrogates_are_refused(api, world):
    body = json.dumps({"name": "Drucker", "slug": "drucker"})[:-1] + ', "description": "\\ud800"}'
    response = post_json(api, "/api/v1/items/", body)
    assert response.status_code == 400
    assert not CatalogueItem.objects.filter(slug="drucker").exists()


def test_nesting_within_the_limit_is_read(api, world):
    response = post_json(
        api,
        "/api/v1/requests/",
        json.dumps({"item": "monitor", "item_version": 1, "answers": {"room": [[["A"]]]}}),
    )
    assert response.status_code == 400
    assert "answers.room" in response.json()


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1899-12-31", "3000-01-01"])
def test_token_expiry_out_of_range_is_a_form_error(client, world, day):
    client.force_login(world.org.alice.user)
    before = ApiToken.objects.count()
    response = client.post("/konto/tokens/", {"name": "Intranet", "expires_on": day})
    assert response.status_code == 400
    assert DATE_MESSAGE in response.content.decode()
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00Z", "3000-01-02T00:00:00Z"],
)
def test_token_expiry_out_of_range_in_the_api(api, moment):
    before = ApiToken.objects.count()
    response = post_json(api, "/api/v1/tokens/", json.dumps({"name": "x", "expires_at": moment}))
    assert response.status_code == 400
    assert response.json()["expires_at"] == [DATE_MESSAGE]
    assert ApiToken.objects.count() == before


def test_token_expiry_late_but_in_range_works(client, world):
    client.force_login(world.org.alice.user)
    response = client.post("/konto/tokens/", {"name": "Intranet", "expires_on": "2999-12-31"})
    assert response.status_code == 201
    assert ApiToken.objects.filter(name="Intranet").exists()


def test_substitution_dates_are_bounded(client, world):
    client.force_login(world.org.alice.user)
    response = client.post(
        "/antraege/vertretungen/",
        {"substitute": "bob", "starts_on": "0001-01-01", "ends_on": "9999-12-31"},
    )
    assert response.status_code == 200
    assert DATE_MESSAGE in response.content.decode()
    assert not Substitution.objects.exists()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_date_filters_and_months_are_bounded(client, world, day):
    client.force_login(world.org.alice.user)
    response = client.get("/antraege/", {"created_after": day, "created_before": day})
    assert response.status_code == 200
    assert DATE_MESSAGE in response.content.decode()
    world.org.controlling.user_set.add(world.org.alice.user)
    response = client.get("/controlling/", {"period_from": day[:7], "period_to": day[:7]})
    assert response.status_code == 200
    assert DATE_MESSAGE in response.content.decode()


def test_date_answers_are_bounded(world):
    item = CatalogueItemFactory(slug="umzug")
    FormFieldFactory(item=item, key="day", field_type=FieldType.DATE)
    form = OrderForm(
        data={"item_version": item.version, "f_day": "9999-12-31"},
        item=item,
        requester_employee=world.org.alice,
    )
    assert not form.is_valid()
    assert form.errors["f_day"] == [DATE_MESSAGE]


# --- answer patterns ------------------------------------------------------------------------


def order_form(item, world, answer):
    return OrderForm(
        data={"item_version": item.version, "f_code": answer},
        item=item,
        requester_employee=world.org.alice,
    )


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        ("(?i)abc", "ABC", "abd"),
        ("(?x) a b  # letters", "ab", "a b"),
        (r"[A-Z]-\d{3}", "B-123", "B-1234"),
        ("a|b", "b", "ab"),  # the whole answer matches, not a part of it
    ],
)
def test_patterns_with_inline_flags_work_at_order_time(world, pattern, good, bad):
    item = CatalogueItemFactory(slug="muster")
    field = FormFieldFactory(item=item, key="code", field_type=FieldType.TEXT, pattern=pattern)
    field.full_clean()
    assert order_form(item, world, good).is_valid()
    form = order_form(item, world, bad)
    assert not form.is_valid()
    assert form.errors["f_code"] == ["The answer does not have the required format."]


@pytest.mark.parametrize("pattern", ["[", "(?P<x", "a{2,1}", "(?<=a+)b" * 0 + "(?"])
def test_broken_patterns_are_refused_when_saved(world, pattern):
    field = FormField(
        item=CatalogueItemFactory(), key="code", label="Code", field_type=FieldType.TEXT,
        pattern=pattern,
    )  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        field.full_clean()
    assert exc.value.message_dict["pattern"][0].startswith("Not a valid regular expression")


def test_broken_pattern_through_the_api_is_a_field_error(api, world):
    body = {
        "name": "Muster", "slug": "muster", "category": "hardware", "service_owner": "Service Desk",
        "form_fields": [{"key": "code", "label": "Code", "field_type": "text", "pattern": "("}],
    }  # fmt: skip
    response = post_json(api, "/api/v1/items/", json.dumps(body))
    assert response.status_code == 400
    assert "Not a valid regular expression" in json.dumps(response.json())
    assert not CatalogueItem.objects.filter(slug="muster").exists()


def test_catastrophic_backtracking_is_cut_off(world, monkeypatch):
    monkeypatch.setattr(patterns, "PATTERN_TIMEOUT", 0.01)
    item = CatalogueItemFactory(slug="langsam")
    FormFieldFactory(
        item=item, key="code", field_type=FieldType.TEXT, pattern="(a|aa)+b", max_length=500
    )
    form = order_form(item, world, "a" * 200)
    assert not form.is_valid()
    assert form.errors["f_code"] == [
        "The answer could not be checked against the required format in time."
    ]


# --- admin ----------------------------------------------------------------------------------


@pytest.fixture
def superuser(world):
    user = world.org.admin.user
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.mark.parametrize("selected", ["abc", "1; DROP TABLE x", "", "9" * 30])
def test_admin_action_with_garbage_ids_is_a_400(client, superuser, world, selected):
    client.force_login(superuser)
    client.raise_request_exception = False
    before = CatalogueItem.objects.count()
    response = client.post(
        "/admin/catalogue/catalogueitem/",
        {"action": "delete_selected", "_selected_action": [selected, str(world.item.pk)]},
    )
    assert response.status_code in (200, 302, 400)
    if response.status_code == 400:
        assert "value of the wrong kind" in response.content.decode()
    assert CatalogueItem.objects.count() == before


def test_admin_change_page_with_garbage_id_is_no_error(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/catalogue/catalogueitem/abc/change/")
    assert response.status_code == 302  # Django: "does not exist", back to the list


def test_every_admin_inline_bounds_its_formset():
    from django.contrib import admin

    import itportal.urls  # noqa: F401 - bounds the inlines of every registered admin
    from itportal.admin import BoundedInlineMixin

    inlines = [i for model_admin in admin.site._registry.values() for i in model_admin.inlines]
    assert inlines
    assert [i for i in inlines if not issubclass(i, BoundedInlineMixin)] == []


def test_a_forged_form_count_builds_no_more_forms_than_allowed(client, superuser, world):
    client.force_login(superuser)
    response = client.post(
        f"/admin/catalogue/catalogueitem/{world.item.pk}/change/",
        {"name": "Monitor", "form_fields-TOTAL_FORMS": "9" * 26, "form_fields-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 200
    formsets = {f.formset.prefix: f.formset for f in response.context["inline_admin_formsets"]}
    assert formsets["form_fields"].forms == []  # none built for a forged count
    assert "Please submit at most 100 forms." in response.content.decode()
