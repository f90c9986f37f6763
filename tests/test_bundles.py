"""Bundles: a manager orders several items for a new colleague on one page, in one submission.

Through the real page on PostgreSQL: one request per chosen item with that item's answers,
one joint order with the bundle, one confirmation; deselected items are left out; a bad
answer, a tampered choice or an item closed to the orderer stops everything.
"""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalogue.choices import Audience, FieldType
from catalogue.exchange import services as exchange
from catalogue.exchange.validation import ExchangeError, check_document, used_placeholders
from catalogue.models import Bundle, BundleItem, CatalogueItem
from notifications.models import OutgoingMail
from requests_app.models import ServiceRequest, Submission
from tests.api_support import token_client
from tests.factories import CatalogueItemFactory, EmployeeFactory, FormFieldFactory

pytestmark = pytest.mark.django_db


def mapping_of(document) -> dict[str, str]:
    """Every placeholder mapped to the value it had where it was exported."""
    return {n: document["placeholders"][n]["example"] for n in used_placeholders(document)}


class Joiner:
    """The "Neue Mitarbeiterin / neuer Mitarbeiter" bundle and a new colleague."""

    def __init__(self, org, manual_item):
        desk = org.service_desk
        self.account = CatalogueItemFactory(name="Benutzerkonto", slug="konto", service_owner=desk)
        self.mailbox = CatalogueItemFactory(name="Postfach", slug="postfach", service_owner=desk)
        FormFieldFactory(
            item=self.mailbox, key="size", label="Größe", field_type=FieldType.CHOICE,
            choices="S\nM\nL",
        )  # fmt: skip
        self.notebook = manual_item
        self.vpn = CatalogueItemFactory(name="VPN", slug="vpn", service_owner=desk)
        FormFieldFactory(item=self.vpn, key="reason", label="Begründung", field_type=FieldType.TEXT)
        self.phone = CatalogueItemFactory(
            name="Diensthandy", slug="handy", service_owner=desk, audience=Audience.RESTRICTED
        )
        self.bundle = Bundle.objects.create(
            name="Neue Mitarbeiterin / neuer Mitarbeiter",
            slug="neu",
            description="Alles für den Start.",
        )
        self.entries = {}
        for position, (item, selected) in enumerate(
            [(self.account, True), (self.mailbox, True), (self.notebook, True),
             (self.vpn, False), (self.phone, True)]
        ):  # fmt: skip
            self.entries[item.slug] = BundleItem.objects.create(
                bundle=self.bundle, item=item, position=position, selected=selected
            )
        self.newcomer = EmployeeFactory(department=org.department, manager=org.manager)
        self.url = reverse("ordering:bundle", kwargs={"slug": "neu"})

    def post(self, client, chosen, answers=None, beneficiary=None, **extra):
        data = {"chosen": [self.entries[slug].pk for slug in chosen], **extra}
        if beneficiary is not None:
            data["beneficiary"] = beneficiary.personnel_number
        for slug, item_answers in (answers or {}).items():
            entry = self.entries[slug]
            data[f"e{entry.pk}-item_version"] = entry.item.version
            for key, value in item_answers.items():
                data[f"e{entry.pk}-f_{key}"] = value
        for slug in chosen:
            entry = self.entries[slug]
            data.setdefault(f"e{entry.pk}-item_version", entry.item.version)
        return client.post(self.url, data)


@pytest.fixture
def joiner(org, manual_item):
    return Joiner(org, manual_item)


def test_the_page_shows_every_item_with_its_form_and_default_choice(client, org, joiner):
    client.force_login(org.manager.user)
    page = client.get(joiner.url).content.decode()
    for slug in ("konto", "postfach", "notebook"):
        assert (
            f'value="{joiner.entries[slug].pk}" id="choose-{joiner.entries[slug].pk}" checked'
            in page
        )
    vpn = joiner.entries["vpn"].pk
    assert f'value="{vpn}" id="choose-{vpn}">' in page  # optional: offered, not chosen
    assert f'name="e{vpn}-f_reason"' in page
    assert "This service is not available to you; it is left out." in page  # the phone
    assert f'id="choose-{joiner.entries["handy"].pk}"' not in page
    assert (
        "Neue Mitarbeiterin / neuer Mitarbeiter"
        in client.get(reverse("ordering:bundles")).content.decode()
    )


def test_a_manager_orders_the_bundle_for_a_new_colleague_in_one_submission(client, org, joiner):
    client.force_login(org.manager.user)
    response = joiner.post(
        client,
        ["konto", "postfach", "notebook"],  # the VPN is left out
        answers={"postfach": {"size": "L"}, "vpn": {"reason": ""}},
        beneficiary=joiner.newcomer,
        justification="Eintritt zum 1.",
    )
    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == submission.get_absolute_url()
    assert submission.bundle == joiner.bundle
    requests = list(submission.requests.order_by("id"))
    assert [(r.item, r.beneficiary, r.answers, r.justification) for r in requests] == [
        (joiner.account, joiner.newcomer, {}, "Eintritt zum 1."),
        (joiner.mailbox, joiner.newcomer, {"size": "L"}, "Eintritt zum 1."),
        (joiner.notebook, joiner.newcomer, {}, "Eintritt zum 1."),
    ]
    assert all(r.requester == org.manager.user for r in requests)
    mails = OutgoingMail.objects.filter(kind="submission.placed")
    assert [m.recipient for m in mails] == [org.manager.user]


def test_a_bad_answer_stops_the_whole_bundle(client, org, joiner):
    client.force_login(org.manager.user)
    response = joiner.post(
        client, ["konto", "postfach", "vpn"], answers={"postfach": {"size": "XXL"}},
        beneficiary=joiner.newcomer,
    )  # fmt: skip
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was ordered" in page
    assert "Größe: Select a valid choice. XXL is not one of the available choices." in page
    assert "Begründung: This field is required." in page
    assert not ServiceRequest.objects.exists()
    assert not Submission.objects.exists()
    assert not OutgoingMail.objects.filter(kind="submission.placed").exists()


@pytest.mark.parametrize(
    "chosen, message",
    [
        ([], "Choose at least one item of the bundle."),
        (["handy"], "This service is not available to you."),
        (["x1"], "The bundle has no such item."),
        (["other"], "The bundle has no such item."),
    ],
)
def test_tampered_or_closed_choices_are_refused(client, org, joiner, chosen, message):
    other = Bundle.objects.create(name="Anderes", slug="anderes")
    joiner.entries["other"] = BundleItem.objects.create(bundle=other, item=joiner.account)
    client.force_login(org.manager.user)
    data = {"beneficiary": joiner.newcomer.personnel_number, "chosen": []}
    for slug in chosen:
        data["chosen"].append("1 OR 1=1" if slug == "x1" else joiner.entries[slug].pk)
    response = client.post(joiner.url, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ServiceRequest.objects.exists()


def test_a_self_only_item_for_a_colleague_is_named(client, org, joiner):
    CatalogueItem.objects.filter(pk=joiner.account.pk).update(orderable_for_others=False)
    client.force_login(org.manager.user)
    response = joiner.post(client, ["konto", "notebook"], beneficiary=joiner.newcomer)
    assert response.status_code == 400
    assert "This service can only be ordered for yourself." in response.content.decode()
    assert not ServiceRequest.objects.exists()


def test_unknown_and_retired_bundles_are_not_found(client, org, joiner):
    client.force_login(org.manager.user)
    assert (
        client.get(reverse("ordering:bundle", kwargs={"slug": "gibt-es-nicht"})).status_code == 404
    )
    Bundle.objects.filter(pk=joiner.bundle.pk).update(is_active=False)
    assert client.get(joiner.url).status_code == 404
    assert joiner.post(client, ["konto"]).status_code == 404
    assert "Neue Mitarbeiterin" not in client.get(reverse("ordering:bundles")).content.decode()


def test_the_bundle_pages_run_the_same_queries_for_few_and_many_items(client, org, joiner):
    client.force_login(org.manager.user)

    def measure(url):
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = measure(joiner.url), measure(reverse("ordering:bundles"))
    for n in range(5):
        item = CatalogueItemFactory(service_owner=org.service_desk)
        FormFieldFactory(item=item, key="note", field_type=FieldType.TEXT)
        FormFieldFactory(item=item, key="size", field_type=FieldType.CHOICE, choices="A\nB")
        BundleItem.objects.create(bundle=joiner.bundle, item=item, position=10 + n)
    assert (measure(joiner.url), measure(reverse("ordering:bundles"))) == few


# --- the API --------------------------------------------------------------------------------


def api_body(joiner, chosen, answers=None, **shared):
    return {
        **shared,
        "items": [
            {
                "item": slug,
                "item_version": joiner.entries[slug].item.version,
                "answers": (answers or {}).get(slug, {}),
            }
            for slug in chosen
        ],
    }


def test_the_api_lists_bundles_with_what_the_user_may_order(org, joiner):
    api = token_client(org.manager.user)
    response = api.get("/api/v1/bundles/")
    assert response.status_code == 200
    (bundle,) = response.json()["results"]
    assert bundle["slug"] == "neu"
    assert [(i["item"], i["selected"], i["orderable"]) for i in bundle["items"]] == [
        ("konto", True, True),
        ("postfach", True, True),
        ("notebook", True, True),
        ("vpn", False, True),
        ("handy", True, False),
    ]
    assert api.get("/api/v1/bundles/neu/").json()["name"] == joiner.bundle.name
    assert api.get("/api/v1/bundles/gibt-es-nicht/").status_code == 404


def test_the_api_orders_a_bundle_in_one_submission(org, joiner):
    api = token_client(org.manager.user)
    body = api_body(
        joiner,
        ["konto", "postfach"],
        {"postfach": {"size": "M"}},
        beneficiary=joiner.newcomer.personnel_number,
    )
    response = api.post("/api/v1/bundles/neu/order/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    submission = Submission.objects.get()
    assert data["id"] == submission.pk and data["bundle"] == "neu"
    assert [(r["item"], r["beneficiary"]["uid"]) for r in data["requests"]] == [
        ("konto", joiner.newcomer.personnel_number),
        ("postfach", joiner.newcomer.personnel_number),
    ]
    assert submission.requests.get(item=joiner.mailbox).answers == {"size": "M"}


@pytest.mark.parametrize(
    "chosen, answers, error",
    [
        (["postfach"], {"postfach": {"size": "XXL"}}, "items.postfach.answers.size"),
        (["postfach"], {"postfach": {"size": ["S"]}}, "items.postfach.answers.size"),
        (["postfach"], {"postfach": {"colour": "rot"}}, "items.postfach.answers.colour"),
        (["handy"], {}, "items.handy"),
        (["konto", "gibt-es-nicht"], {}, "items.gibt-es-nicht"),
        ([], {}, "items"),
    ],
)
def test_the_api_refuses_bad_bundle_orders_and_saves_nothing(org, joiner, chosen, answers, error):
    api = token_client(org.manager.user)
    body = {"items": [], "beneficiary": joiner.newcomer.personnel_number}
    for slug in chosen:
        version = joiner.entries[slug].item.version if slug in joiner.entries else 1
        body["items"].append(
            {"item": slug, "item_version": version, "answers": answers.get(slug, {})}
        )
    response = api.post("/api/v1/bundles/neu/order/", body, format="json")
    assert response.status_code == 400
    assert error in response.json(), response.json()
    assert not ServiceRequest.objects.exists()


def test_the_api_names_a_stale_version_and_an_unknown_colleague(org, joiner):
    api = token_client(org.manager.user)
    body = api_body(joiner, ["konto"], beneficiary="p99999")
    body["items"][0]["item_version"] = 99
    response = api.post("/api/v1/bundles/neu/order/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"items.konto.item_version", "beneficiary"}
    assert not ServiceRequest.objects.exists()


# --- catalogue exchange ----------------------------------------------------------------------


def test_bundles_travel_with_the_catalogue_exchange(org, joiner):
    first = exchange.catalogue_export()
    (exported,) = first["bundles"]
    assert exported["slug"] == "neu"
    assert [(e["item"], e["selected"]) for e in exported["items"]] == [
        ("konto", True), ("postfach", True), ("notebook", True), ("vpn", False), ("handy", True),
    ]  # fmt: skip
    check_document(json.loads(exchange.dumps(first)))
    Bundle.objects.all().delete()
    report = exchange.catalogue_import(document=first, mapping=mapping_of(first))
    assert report.bundles_created == ["neu"]
    assert "Bundles: 1 new" in report.summary()
    assert exchange.catalogue_export() == first
    # Once more with "rename": the items and the bundle come in under new slugs, the bundle
    # holding the renamed items.
    report = exchange.catalogue_import(
        document=first, mapping=mapping_of(first), on_conflict="rename"
    )
    assert report.bundles_renamed == [("neu", "neu-2")]
    copy_ = Bundle.objects.get(slug="neu-2")
    assert [e.item.slug for e in copy_.entries.order_by("position")] == [
        "konto-2", "postfach-2", "notebook-2", "vpn-2", "handy-2",
    ]  # fmt: skip


def test_a_partial_export_carries_only_the_bundles_it_can_fill(org, joiner):
    assert exchange.catalogue_export(item_slugs=["konto"])["bundles"] == []
    whole = exchange.catalogue_export(item_slugs=[e.item.slug for e in joiner.entries.values()])
    assert [b["slug"] for b in whole["bundles"]] == ["neu"]


def test_bad_bundles_in_an_exchange_document_are_named_and_nothing_is_written(org, joiner):
    document = exchange.catalogue_export()
    document["bundles"][0]["items"].append({"item": "konto", "position": 9, "selected": True})
    document["bundles"].append({**document["bundles"][0], "items": []})
    with pytest.raises(ExchangeError) as info:
        exchange.catalogue_import(document=document, mapping=mapping_of(document))
    problems = [str(p) for p in info.value.problems]
    assert "$.bundles: the bundle slug “neu” appears twice" in problems
    assert "$.bundles[0].items: the item “konto” appears twice in the bundle" in problems

    document = exchange.catalogue_export()
    document["bundles"][0]["items"][0]["item"] = "gibt-es-nicht"
    document["bundles"][0]["slug"] = "anders"
    before = Bundle.objects.count(), BundleItem.objects.count(), CatalogueItem.objects.count()
    with pytest.raises(ExchangeError) as info:
        exchange.catalogue_import(document=document, mapping=mapping_of(document))
    assert [str(p) for p in info.value.problems] == [
        "$.bundles[0].items[0].item: there is no item “gibt-es-nicht” in the file or in this portal"
    ]
    assert (
        Bundle.objects.count(),
        BundleItem.objects.count(),
        CatalogueItem.objects.count(),
    ) == before

    document["bundles"][0]["items"][0]["selected"] = "ja"
    with pytest.raises(ExchangeError) as info:
        exchange.catalogue_import(document=document, mapping=mapping_of(document))
    assert "$.bundles[0].items[0].selected: expected a value of type boolean" in [
        str(p) for p in info.value.problems
    ]
