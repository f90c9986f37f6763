"""Requests over the API: order, list, detail, transitions, the portal's 403/404/409."""

from decimal import Decimal

import pytest

from catalogue.choices import ApproverKind, FieldType
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import FormFieldFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def item(org):
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER},
        name="Monitor",
        slug="monitor",
    )
    FormFieldFactory(item=item, key="room", label="Room", field_type=FieldType.TEXT, max_length=10)
    FormFieldFactory(
        item=item, key="size", label="Size", field_type=FieldType.CHOICE, choices="24\n27"
    )
    FormFieldFactory(
        item=item,
        key="count",
        label="Count",
        field_type=FieldType.NUMBER,
        required=False,
        min_value=Decimal(1),
        max_value=Decimal(3),
    )
    FormFieldFactory(
        item=item,
        key="extras",
        label="Extras",
        field_type=FieldType.MULTIPLE_CHOICE,
        required=False,
        choices="Webcam\nHub",
    )
    FormFieldFactory(item=item, key="urgent", label="Urgent", field_type=FieldType.YES_NO)
    return item


def order_body(item, **overrides):
    body = {
        "item": item.slug,
        "item_version": item.version,
        "answers": {"room": "A 1.23", "size": "27", "extras": ["Hub"], "urgent": False},
    }
    body.update(overrides)
    return body


def test_order_approve_take_complete_with_tokens(org, item, api_as):
    alice, manager, desk = api_as(org.alice), api_as(org.manager), api_as(org.fulfiller)
    response = alice.post("/api/v1/requests/", order_body(item), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == RequestState.AWAITING_APPROVAL
    assert data["beneficiary"]["uid"] == org.alice.personnel_number
    assert {a["key"]: a["value"] for a in data["answers"]} == {
        "room": "A 1.23",
        "size": "27",
        "count": None,
        "extras": ["Hub"],
        "urgent": False,
    }
    assert data["actions"] == ["cancel"]
    request_id = data["id"]

    pending = manager.get("/api/v1/approvals/").json()
    assert [r["id"] for r in pending["results"]] == [request_id]
    assert manager.get(f"/api/v1/requests/{request_id}/").json()["actions"] == [
        "approve",
        "reject",
    ]
    approved = manager.post(
        f"/api/v1/requests/{request_id}/approve/", {"comment": "ok"}, format="json"
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["state"] == RequestState.APPROVED

    taken = desk.post(f"/api/v1/requests/{request_id}/take/", {}, format="json")
    assert taken.json()["state"] == RequestState.IN_FULFILMENT
    done = desk.post(
        f"/api/v1/requests/{request_id}/complete/", {"note": "delivered"}, format="json"
    )
    assert done.status_code == 200
    body = done.json()
    assert body["state"] == RequestState.FULFILLED
    assert [e["kind"] for e in body["timeline"]] == [
        "create",
        "submit",
        "start_approval",
        "approve",
        "take",
        "complete",
    ]
    assert body["timeline"][3]["actor"]["username"] == "manager"
    assert body["timeline"][3]["comment"] == "ok"


def test_order_errors_name_the_field_as_the_form_does(org, item, api_as):
    alice = api_as(org.alice)
    body = order_body(
        item,
        answers={
            "room": "<b>x</b>",
            "size": "32",
            "count": 7,
            "extras": "Hub",
            "bogus": 1,
            "urgent": "no",
        },
        beneficiary="p99999",
    )
    response = alice.post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {
        "answers.room",
        "answers.size",
        "answers.count",
        "answers.extras",
        "answers.bogus",
        "answers.urgent",
        "beneficiary",
    }
    assert "HTML" in errors["answers.room"][0]
    assert "Ensure this value is less than or equal to 3" in errors["answers.count"][0]
    assert errors["answers.urgent"] == ["Expected true or false."]
    assert errors["beneficiary"] == ["No active employee with the personnel number “p99999”."]
    assert ServiceRequest.objects.count() == 0


def test_stale_version_unknown_fields_and_wrong_types(org, item, api_as):
    alice = api_as(org.alice)
    stale = alice.post(
        "/api/v1/requests/", order_body(item, item_version=item.version + 1), format="json"
    )
    assert stale.status_code == 400
    assert "item_version" in stale.json()
    extra = alice.post("/api/v1/requests/", order_body(item, state="fulfilled"), format="json")
    assert extra.status_code == 400
    assert extra.json() == {"state": ["Unknown field."]}
    wrong = alice.post(
        "/api/v1/requests/", {"item": ["x"], "item_version": "abc", "answers": []}, format="json"
    )
    assert wrong.status_code == 400
    assert set(wrong.json()) == {"item", "item_version", "answers"}
    long = alice.post(
        "/api/v1/requests/", order_body(item, justification="x" * 2001), format="json"
    )
    assert long.status_code == 400
    assert "justification" in long.json()
    assert (
        alice.post("/api/v1/requests/", "[1, 2]", content_type="application/json").status_code
        == 400
    )
    assert alice.post("/api/v1/requests/", "{", content_type="application/json").status_code == 400


def test_not_visible_is_404_not_allowed_is_403_late_is_409(org, item, api_as, place_order):
    service_request = place_order(item, org.alice.user)
    outsider, bob, alice = api_as(org.outsider), api_as(org.bob), api_as(org.alice)
    manager = api_as(org.manager)
    assert outsider.get(f"/api/v1/requests/{service_request.pk}/").status_code == 404
    assert (
        outsider.post(
            f"/api/v1/requests/{service_request.pk}/approve/", {}, format="json"
        ).status_code
        == 404
    )
    assert bob.get("/api/v1/requests/999999999999999999999/").status_code == 404
    # The requester sees it but may not decide it (four-eyes): 403 as in the portal.
    refused = alice.post(f"/api/v1/requests/{service_request.pk}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You may not decide on this request."
    # The approver comes too late: the requester cancelled first.
    assert (
        alice.post(f"/api/v1/requests/{service_request.pk}/cancel/", {}, format="json").status_code
        == 200
    )
    late = manager.post(
        f"/api/v1/requests/{service_request.pk}/approve/",
        {"expected_state": "awaiting_approval"},
        format="json",
    )
    assert late.status_code == 409
    assert "changed in the meantime" in late.json()["detail"]
    reject = manager.post(f"/api/v1/requests/{service_request.pk}/reject/", {}, format="json")
    assert reject.status_code == 400
    assert "comment" in reject.json()


def test_draft_then_submit_and_lists_filtered(org, item, api_as):
    alice = api_as(org.alice)
    draft = alice.post("/api/v1/requests/", order_body(item, submit=False), format="json").json()
    assert draft["state"] == RequestState.DRAFT
    assert "submit" in draft["actions"]
    submitted = alice.post(f"/api/v1/requests/{draft['id']}/submit/", {}, format="json")
    assert submitted.json()["state"] == RequestState.AWAITING_APPROVAL
    mine = alice.get("/api/v1/requests/", {"state": "awaiting_approval"}).json()
    assert [r["id"] for r in mine["results"]] == [draft["id"]]
    assert alice.get("/api/v1/requests/", {"state": "fulfilled"}).json()["count"] == 0
    bad = alice.get("/api/v1/requests/", {"state": "nonsense", "created_after": "x"})
    assert bad.status_code == 400
    assert set(bad.json()) == {"state", "created_after"}
    assert api_as(org.bob).get("/api/v1/requests/").json()["count"] == 0
    manager = api_as(org.manager)
    assert manager.get("/api/v1/requests/").json()["count"] == 0  # not placed by or for him
    visible = manager.get("/api/v1/requests/", {"scope": "visible"}).json()
    assert [r["id"] for r in visible["results"]] == [draft["id"]]  # he decides it
    assert manager.get("/api/v1/requests/", {"scope": "all"}).json() == {
        "scope": ["Choose “mine” or “visible”."]
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"comment": ["a"]}, "comment"),
        ({"comment": "x" * 4001}, "comment"),
        ({"comment": "a\x00b"}, "comment"),
        ({"expected_state": "nope"}, "expected_state"),
        ({"expected_approval": "first"}, "expected_approval"),
        ({"expected_approval": 10**30}, "expected_approval"),
        ({"approve": True}, "approve"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_action_bodies_are_checked(org, item, api_as, place_order, body, field):
    service_request = place_order(item, org.alice.user)
    response = api_as(org.manager).post(
        f"/api/v1/requests/{service_request.pk}/approve/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    service_request.refresh_from_db()
    assert service_request.state == RequestState.AWAITING_APPROVAL


def test_only_json_bodies(org, item, api_as, place_order):
    service_request = place_order(item, org.alice.user)
    response = api_as(org.manager).post(
        f"/api/v1/requests/{service_request.pk}/approve/", {"comment": "ok"}
    )  # form-encoded, as a browser form would send it
    assert response.status_code == 415
    assert "detail" in response.json()


def test_only_employees_order(org, item):
    from tests.api_support import token_client
    from tests.factories import UserFactory

    robot = token_client(UserFactory(username="robot"))
    response = robot.post("/api/v1/requests/", order_body(item), format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only employees can order services."}
    assert robot.get("/api/v1/items/").json()["count"] == 0


@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC"])
def test_list_rows_read_as_values_have_the_serializers_body(org, item, api_as, settings, zone):
    """The request lists build their bodies from values (RequestSerializer.rows): each row
    is exactly what the serializer makes of the request, on every list that uses them, its
    times in the active time zone ("Z" for UTC), filtered or not."""
    from django.utils import timezone

    from api.serializers import RequestSerializer

    settings.TIME_ZONE = zone

    alice = api_as(org.alice)
    placed = [
        alice.post("/api/v1/requests/", order_body(item), format="json").json()["id"]
        for _ in range(3)
    ]
    draft = alice.post("/api/v1/requests/", order_body(item, submit=False), format="json")
    placed.append(draft.json()["id"])
    ServiceRequest.objects.filter(pk=placed[0]).update(item_snapshot={})  # name from the item
    lists = [
        (alice, "/api/v1/requests/"),
        (api_as(org.manager), "/api/v1/approvals/"),
        (api_as(org.manager), "/api/v1/requests/?scope=visible&offset=1"),
        (api_as(org.admin), "/api/v1/requests/?scope=visible"),
        (api_as(org.admin), "/api/v1/requests/?scope=visible&ordering=-price_once&limit=2"),
        (alice, f"/api/v1/requests/?state=draft&category={item.category_id}"),
    ]
    seen = 0
    for client, url in lists:
        rows = client.get(url).json()["results"]
        assert rows
        for row in rows:
            request = ServiceRequest.objects.get(pk=row["id"])
            with timezone.override(zone):
                assert row == RequestSerializer(request).data
            assert row["created_at"].endswith("Z") == (zone == "UTC")
            seen += 1
    assert seen >= 8


def test_page_rows_by_kept_statement_are_the_joined_values(org, item, api_as):
    """api/request_rows.py: a page's rows, their related columns looked up per row by a
    statement compiled once, are the rows the joins gave (list_values), in the page's
    order; one statement per view, joining nothing to the requests; other querysets go
    through the ORM."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api import request_rows
    from api.serializers import RequestSerializer
    from requests_app.selectors import list_values

    alice = api_as(org.alice)
    for _ in range(3):
        alice.post("/api/v1/requests/", order_body(item), format="json")
    ServiceRequest.objects.filter(pk=ServiceRequest.objects.first().pk).update(item_snapshot={})
    columns = RequestSerializer.ROW_COLUMNS
    for order in (("-created_at", "-id"), ("price_once", "id")):
        ids = ServiceRequest.objects.order_by(*order).values("pk")[:2]
        chosen = ServiceRequest.objects.filter(pk__in=ids).order_by(*order)
        with CaptureQueriesContext(connection) as queries:
            rows = request_rows.page_rows(chosen, columns)
        assert len(queries) == 1
        # The request's table alone outside the subqueries (they join two tables at most).
        assert 'FROM "requests_app_servicerequest" WHERE' in queries.captured_queries[0]["sql"]
        assert rows == list(list_values(chosen, columns))
        assert len(rows) == 2
    joined = ServiceRequest.objects.filter(item__name="Monitor").order_by("id")
    assert request_rows.page_rows(joined, columns) == list(list_values(joined, columns))


def test_my_requests_are_counted_and_paged_from_placed_by_and_placed_for_me(
    org, api_as, place_order
):
    """ "My requests" over the API: the count and each page's ids come from the parts:
    the requests Alice placed and those others placed for her (itportal.inputs.PartsUnion),
    each read along its own index; the rows, count and order are those of the OR of both,
    in every order, filtered, on every page; her orders for herself are listed once."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from requests_app.selectors import requests_of

    plain = make_item(org.service_desk, {"approver_kind": ApproverKind.LINE_MANAGER},
                      name="Maus", slug="maus")  # fmt: skip
    alice, bob = org.alice, org.bob
    made = [
        *(place_order(plain, alice.user) for _ in range(4)),  # by and for her: both parts
        *(place_order(plain, alice.user, beneficiary=bob) for _ in range(3)),  # by her
        *(place_order(plain, bob.user, beneficiary=alice) for _ in range(4)),  # for her
        place_order(plain, bob.user),  # neither
    ]
    start = timezone.now() - timedelta(days=30)
    for index, service_request in enumerate(made):
        # Ties of the order date (broken by the id), the parts' dates interleaved.
        created = start + timedelta(days=index // 3 if index % 2 else 20 - index // 2)
        ServiceRequest.objects.filter(pk=service_request.pk).update(
            created_at=created, closed_at=None if index % 3 else created
        )
    ServiceRequest.objects.filter(pk=made[1].pk).update(state=RequestState.FULFILLED)
    client = api_as(alice)
    listed = requests_of(alice.user)
    assert listed.count() == 11
    cases = [
        ({}, listed.order_by("-created_at", "-id")),
        ({"limit": 3, "offset": 2}, listed.order_by("-created_at", "-id")),
        ({"limit": 4, "offset": 8}, listed.order_by("-created_at", "-id")),
        ({"limit": 2, "offset": 11}, listed.order_by("-created_at", "-id")),
        ({"limit": 3, "offset": 1, "ordering": "id"}, listed.order_by("id")),
        ({"limit": 3, "offset": 4, "ordering": "-closed_at,id"},
         listed.order_by("-closed_at", "id")),
        ({"limit": 2, "offset": 1, "state": "awaiting_approval"},
         listed.filter(state="awaiting_approval").order_by("-created_at", "-id")),
    ]  # fmt: skip
    for params, expected in cases:
        with CaptureQueriesContext(connection) as ctx:
            body = client.get("/api/v1/requests/", params).json()
        offset, limit = params.get("offset", 0), params.get("limit", 25)
        ids = list(expected.values_list("pk", flat=True))
        assert body["count"] == len(ids), params
        assert [row["id"] for row in body["results"]] == ids[offset : offset + limit], params
        assert (body["next"] is not None) == (offset + limit < len(ids)), params
        sqls = [q["sql"] for q in ctx.captured_queries if "requests_app_servicerequest" in q["sql"]]
        # The count sums each part's; the page's ids come from their UNION ALL.
        assert len(sqls) == 2 and sqls[0].count("SELECT COUNT(*) FROM (") == 2, params
        assert " UNION ALL " in sqls[1], params
        assert not any(" OR " in sql and "requester_id" in sql for sql in sqls), params


def _orders_in_both_parts(org, place_order):
    """Six requests in Alice's "mine": three she placed, three Bob placed for her."""
    plain = make_item(org.service_desk, {"approver_kind": ApproverKind.LINE_MANAGER},
                      name="Maus", slug="maus")  # fmt: skip
    for _ in range(3):
        place_order(plain, org.alice.user)
    for _ in range(3):
        place_order(plain, org.bob.user, beneficiary=org.alice)


def test_my_requests_parts_are_compiled_once_for_the_count_and_the_page(org, api_as, place_order):
    """The count and the page's ids of "my requests" come from one PartsUnion (the parts
    compiled once); a page followed by its ``next`` cursor builds its own for the rows after
    the cursor, and both pages hold the right rows."""
    from unittest import mock

    from api import pagination
    from requests_app.selectors import requests_of

    alice = org.alice
    _orders_in_both_parts(org, place_order)
    ids = list(requests_of(alice.user).order_by("-created_at", "-id").values_list("pk", flat=True))
    client = api_as(alice)
    union = pagination.PartsUnion
    with (
        mock.patch.object(union, "count", autospec=True, side_effect=union.count) as counted,
        mock.patch.object(union, "ids", autospec=True, side_effect=union.ids) as chosen,
        mock.patch.object(pagination, "PartsUnion", wraps=union) as built,
    ):
        first = client.get("/api/v1/requests/", {"limit": 2, "offset": 1}).json()
    assert built.call_count == 1
    assert counted.call_args.args[0] is chosen.call_args.args[0]
    assert first["count"] == 6 and [row["id"] for row in first["results"]] == ids[1:3]
    with mock.patch.object(pagination, "PartsUnion", wraps=pagination.PartsUnion) as built:
        following = client.get(first["next"]).json()
    assert built.call_count == 2  # the count's, and the page's after the cursor
    assert following["count"] == 6 and [row["id"] for row in following["results"]] == ids[3:5]


def test_my_requests_union_is_kept_per_list_and_rows_read_by_the_kept_statement(
    org, api_as, place_order
):
    """The compiled union of "my requests"' parts is kept per user, filters and order: the
    same list asked again makes no parts and compiles nothing, with the same body; another
    filter, order or person, or a page from a cursor, makes its own. The page's rows
    (picked by the union's ids) are read by the kept statement, joining nothing."""
    from unittest import mock

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api import pagination
    from requests_app import selectors

    alice, bob = org.alice, org.bob
    _orders_in_both_parts(org, place_order)
    client = api_as(alice)
    params = {"limit": 2, "offset": 1, "ordering": "id"}

    def get(client, params, url="/api/v1/requests/"):
        with (
            mock.patch.object(pagination, "PartsUnion", wraps=pagination.PartsUnion) as built,
            mock.patch.object(
                selectors, "requests_of_parts", wraps=selectors.requests_of_parts
            ) as made,
            CaptureQueriesContext(connection) as queries,
        ):
            body = client.get(url, params).json()
        return body, built.call_count + made.call_count, queries.captured_queries

    first, work, _queries = get(client, params)
    assert work == 2  # the parts made and compiled
    again, work, queries = get(client, params)
    assert work == 0 and again == first
    assert first["count"] == 6 and len(first["results"]) == 2
    rows_sql = queries[-1]["sql"]
    # The page's rows by their ids from the requests alone (related rows by subqueries).
    assert "ANY(ARRAY(" in rows_sql and ' FROM "requests_app_servicerequest" WHERE ' in rows_sql
    for other in ({**params, "ordering": "-id"}, {**params, "state": "awaiting_approval"}):
        body, work, _queries = get(client, other)
        assert work == 2, other
    body, work, _queries = get(api_as(bob), params)
    assert work == 2 and body["count"] == 3
    following, work, _queries = get(client, None, first["next"])
    assert work == 3  # the parts, the count's union and the page's after the cursor
    assert [row["id"] for row in following["results"]] == sorted(
        row["id"] for row in selectors.requests_of(alice.user).values("id")
    )[3:5]


@pytest.mark.parametrize("ordering", ["state", "-price_once", "-created_at", None])
def test_sorted_pages_of_the_api_list_hold_each_request_once(org, api_as, place_order, ordering):
    """Sorted by a field with ties (every request in one state, at one price), the pages
    together hold every request of the list, once: every order ends with the id."""
    plain = make_item(org.service_desk, {"approver_kind": ApproverKind.LINE_MANAGER},
                      name="Maus", slug="maus")  # fmt: skip
    made = {place_order(plain, org.alice.user).pk for _ in range(9)}
    client = api_as(org.alice)
    seen = []
    for offset in range(0, 12, 2):
        params = {"limit": 2, "offset": offset} | ({"ordering": ordering} if ordering else {})
        seen += [row["id"] for row in client.get("/api/v1/requests/", params).json()["results"]]
    assert len(seen) == len(set(seen)) and set(seen) == made
    if ordering == "state":
        assert seen == sorted(seen, reverse=True)  # one state: the ids decide, newest first


@pytest.mark.parametrize("ordering", [None, "-price_once", "state", "created_at"])
def test_the_api_queue_reads_its_page_by_ids_with_the_serializers_body(
    org, api_as, manual_item, place_order, ordering
):
    """The API's fulfilment queue chooses its page's ids first and reads their rows by a
    kept statement (no seven-table join to plan): every page holds the queue's rows in its
    order, each once, each row what the serializer makes of its request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api.serializers import RequestSerializer
    from requests_app import selectors, services

    orders = [place_order(manual_item, org.alice.user) for _ in range(5)]
    for order in orders[:4]:
        services.request_approve(request_id=order.pk, user=org.manager.user)
    ServiceRequest.objects.filter(pk=orders[0].pk).update(item_snapshot={})  # the item's name
    client = api_as(org.admin)
    params = {"ordering": ordering} if ordering else {}
    seen = []
    for offset in (0, 2):
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/v1/fulfilment-queue/", {**params, "limit": 2, "offset": offset})
        # The rows' statement joins no table to the requests (subqueries per row).
        joined = 'INNER JOIN "catalogue_catalogueitem"'
        assert not any(joined in query["sql"] for query in queries.captured_queries)
        for row in body.json()["results"]:
            assert row == RequestSerializer(ServiceRequest.objects.get(pk=row["id"])).data
            seen.append(row["id"])
    order = [ordering, "-id"] if ordering else ["-created_at", "-id"]
    expected = selectors.fulfilment_queue(org.admin.user).order_by(*order)
    assert seen == [r.pk for r in expected] and len(seen) == 4
