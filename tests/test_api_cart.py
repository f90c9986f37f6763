"""The cart in the API: the portal's Warenkorb through /api/v1/cart/, on PostgreSQL.

Lines are added with the same body and the same checks as ordering one item (conditions,
formats, rules across fields, who may order it), listed, removed, and submitted all at once:
one request per line in one joint order, or nothing and a 400 naming the line.
"""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalogue.choices import FieldType
from catalogue.models import CatalogueItem, FormRule
from notifications.models import OutgoingMail
from requests_app.models import CART_MAX_LINES, CartLine, ServiceRequest
from tests.api_support import token_client, token_key
from tests.factories import CatalogueItemFactory, FormFieldFactory

pytestmark = pytest.mark.django_db

CART = "/api/v1/cart/"


@pytest.fixture
def vpn(org):
    """A VPN access whose justification is asked only for "extern" access."""
    item = CatalogueItemFactory(name="VPN-Zugang", slug="vpn", service_owner=org.service_desk)
    FormFieldFactory(
        item=item, key="kind", label="Art", field_type=FieldType.CHOICE,
        choices="intern\nextern", position=1,
    )  # fmt: skip
    FormFieldFactory(
        item=item, key="why", label="Wozu extern?", field_type=FieldType.TEXT, position=2,
        required=False, condition_effect="require", condition_field="kind",
        condition_operator="equals", condition_value="extern",
    )  # fmt: skip
    return item


@pytest.fixture
def mailbox(org):
    item = CatalogueItemFactory(name="Postfach", slug="postfach", service_owner=org.service_desk)
    FormFieldFactory(
        item=item, key="size", label="Größe", field_type=FieldType.CHOICE, choices="S\nM\nL"
    )
    return item


@pytest.fixture
def rental(org):
    """Dates with a rule across them: the end after the start."""
    item = CatalogueItemFactory(name="Beamer", slug="beamer", service_owner=org.service_desk)
    FormFieldFactory(item=item, key="start", label="Von", field_type=FieldType.DATE, position=1)
    FormFieldFactory(item=item, key="end", label="Bis", field_type=FieldType.DATE, position=2)
    FormRule.objects.create(item=item, kind="after", first_field="end", second_field="start")
    return item


def add(client, item, answers=None, **body):
    return client.post(
        CART,
        {"item": item.slug, "item_version": item.version, "answers": answers or {}, **body},
        format="json",
    )


def line_ids(client):
    response = client.get(CART)
    assert response.status_code == 200, response.content
    return [line["id"] for line in response.json()["results"]]


def test_lines_are_added_listed_and_submitted_as_one_joint_order(org, vpn, mailbox, rental):
    alice = token_client(org.alice.user)
    before = ServiceRequest.objects.count()
    response = add(alice, vpn, {"kind": "extern", "why": "Rufbereitschaft"})
    assert response.status_code == 201, response.content
    line = response.json()
    assert line["item"] == "vpn" and line["item_version"] == vpn.version
    assert line["answers"] == {"kind": "extern", "why": "Rufbereitschaft"}
    assert line["beneficiary"]["uid"] == org.alice.personnel_number
    assert (
        add(alice, mailbox, {"size": "M"}, beneficiary=org.bob.personnel_number).status_code == 201
    )
    assert add(alice, rental, {"start": "2027-01-04", "end": "2027-01-08"}).status_code == 201
    assert ServiceRequest.objects.count() == before  # nothing ordered yet

    listed = alice.get(CART).json()
    assert listed["count"] == 3
    assert [row["item"] for row in listed["results"]] == ["vpn", "postfach", "beamer"]
    assert listed["results"][1]["beneficiary"]["uid"] == org.bob.personnel_number

    response = alice.post(f"{CART}submit/", {"lines": line_ids(alice)}, format="json")
    assert response.status_code == 201, response.content
    submission = response.json()
    assert [r["item"] for r in submission["requests"]] == ["vpn", "postfach", "beamer"]
    placed = ServiceRequest.objects.filter(submission_id=submission["id"]).order_by("id")
    assert [r.answers.get("why") for r in placed] == ["Rufbereitschaft", None, None]
    assert placed[1].beneficiary == org.bob
    assert OutgoingMail.objects.filter(kind="submission.placed").count() == 1  # one confirmation
    assert alice.get(CART).json()["count"] == 0


def test_conditions_and_rules_are_checked_on_adding_as_on_the_page(org, vpn, rental):
    alice = token_client(org.alice.user)
    # "why" is required only for extern access.
    refused = add(alice, vpn, {"kind": "extern"})
    assert refused.status_code == 400
    assert list(refused.json()) == ["answers.why"]
    assert add(alice, vpn, {"kind": "intern"}).status_code == 201
    # The end must be after the start.
    refused = add(alice, rental, {"start": "2027-01-08", "end": "2027-01-04"})
    assert refused.status_code == 400 and refused.json()
    assert CartLine.objects.filter(owner=org.alice.user).count() == 1


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"answers": {"size": ["M"]}}, "answers.size"),  # a list for a single choice
        ({"answers": {"size": "XXL"}}, "answers.size"),  # not an option
        ({"answers": {}}, "answers.size"),  # required
        ({"answers": {"size": "M", "colour": "rot"}}, "answers.colour"),  # no such field
        ({"answers": {"size": "M"}, "item_version": 99}, "item_version"),  # stale
        ({"answers": {"size": "M"}, "beneficiary": "niemand"}, "beneficiary"),
        ({"answers": {"size": "M"}, "submit": True}, "submit"),  # unknown key
        ({"answers": "M"}, "answers"),
    ],
)
def test_bad_lines_are_refused_with_the_place_named(org, mailbox, body, where):
    alice = token_client(org.alice.user)
    response = alice.post(
        CART, {"item": mailbox.slug, "item_version": mailbox.version, **body}, format="json"
    )
    assert response.status_code == 400, response.content
    assert where in response.json(), response.json()
    assert all(isinstance(m, str) and m for m in response.json()[where])
    assert not CartLine.objects.exists()


def test_errors_come_in_german(org, mailbox):
    alice = APIClient()
    alice.credentials(HTTP_AUTHORIZATION=f"Token {token_key(org.alice.user)}",
                      HTTP_ACCEPT_LANGUAGE="de")  # fmt: skip
    body = {"item": mailbox.slug, "item_version": mailbox.version}
    response = alice.post(CART, body, format="json")
    assert response.status_code == 400
    assert response.json()["answers.size"] == ["Dieses Feld ist zwingend erforderlich."]


def test_a_line_the_item_no_longer_accepts_stops_the_submission_and_is_named(org, vpn, mailbox):
    alice = token_client(org.alice.user)
    add(alice, vpn, {"kind": "intern"})
    add(alice, mailbox, {"size": "L"})
    stale = CartLine.objects.get(item=mailbox)
    mailbox.form_fields.filter(key="size").update(choices="S\nM")
    CatalogueItem.objects.filter(pk=mailbox.pk).update(version=F("version") + 1)
    before = ServiceRequest.objects.count()
    response = alice.post(f"{CART}submit/", {"lines": line_ids(alice)}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [f"lines.{stale.pk}"]
    assert any("add it again" in message for message in errors[f"lines.{stale.pk}"])
    assert ServiceRequest.objects.count() == before  # all or nothing
    assert CartLine.objects.filter(owner=org.alice.user).count() == 2


def test_a_cart_changed_since_it_was_read_is_not_ordered(org, vpn, mailbox):
    alice = token_client(org.alice.user)
    add(alice, vpn, {"kind": "intern"})
    seen = line_ids(alice)
    add(alice, mailbox, {"size": "S"})
    for lines in (seen, [], [*seen, *seen], [*line_ids(alice), 10**12]):
        response = alice.post(f"{CART}submit/", {"lines": lines}, format="json")
        assert response.status_code == 400 and "lines" in response.json(), lines
    for body in ({}, {"lines": "1"}, {"lines": [0]}, {"lines": ["x"]}, {"lines": [1], "x": 1}):
        assert alice.post(f"{CART}submit/", body, format="json").status_code == 400, body
    assert not ServiceRequest.objects.filter(submission__isnull=False).exists()


def test_an_empty_cart_says_so(org):
    response = token_client(org.alice.user).post(f"{CART}submit/", {"lines": []}, format="json")
    assert response.status_code == 400
    assert response.json() == {"lines": ["Your cart is empty."]}


def test_removing_lines_mine_only(org, vpn):
    alice, bob = token_client(org.alice.user), token_client(org.bob.user)
    line = add(alice, vpn, {"kind": "intern"}).json()["id"]
    assert bob.delete(f"{CART}{line}/").status_code == 404
    assert bob.get(CART).json()["count"] == 0  # nobody sees another's cart
    assert alice.delete(f"{CART}{line}/").status_code == 204
    assert alice.delete(f"{CART}{line}/").status_code == 404
    assert alice.get(CART).json()["count"] == 0


def test_who_may_use_the_cart(org, vpn):
    from catalogue.choices import Audience
    from tests.factories import UserFactory

    anonymous = APIClient()
    assert anonymous.get(CART).status_code == 401
    assert add(anonymous, vpn, {"kind": "intern"}).status_code == 401
    assert anonymous.post(f"{CART}submit/", {"lines": []}, format="json").status_code == 401

    robot = token_client(UserFactory(username="robot"))  # a user who is no employee
    assert add(robot, vpn, {"kind": "intern"}).status_code == 403
    assert robot.post(f"{CART}submit/", {"lines": []}, format="json").status_code == 403

    alice = token_client(org.alice.user)
    closed = CatalogueItemFactory(name="Fachverfahren", slug="fv", audience=Audience.RESTRICTED)
    assert add(alice, closed).status_code == 403
    retired = CatalogueItemFactory(name="Alt", slug="alt", is_active=False)
    assert add(alice, retired).status_code == 404
    assert (
        alice.post(CART, {"item": "gibt-es-nicht", "item_version": 1}, format="json").status_code
        == 404
    )
    # A self-only item cannot be put into the cart for a colleague.
    vpn.orderable_for_others = False
    vpn.save()
    refused = add(alice, vpn, {"kind": "intern"}, beneficiary=org.bob.personnel_number)
    assert refused.json() == {
        "non_field_errors": ["This service can only be ordered for yourself."]
    }


def test_the_cart_is_bounded(org, vpn):
    alice = token_client(org.alice.user)
    for _ in range(CART_MAX_LINES):
        assert add(alice, vpn, {"kind": "intern"}).status_code == 201
    response = add(alice, vpn, {"kind": "intern"})
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_the_cart_list_runs_the_same_queries_for_few_and_many_lines(org, vpn, mailbox):
    alice = token_client(org.alice.user)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert alice.get(CART).status_code == 200
        return len(ctx.captured_queries)

    add(alice, vpn, {"kind": "intern"})
    count()  # the token's first use is recorded once
    few = count()
    for _ in range(4):
        add(alice, vpn, {"kind": "extern", "why": "Bereitschaft"})
        add(alice, mailbox, {"size": "S"}, beneficiary=org.bob.personnel_number)
    assert alice.get(CART).json()["count"] == 9
    assert count() == few
