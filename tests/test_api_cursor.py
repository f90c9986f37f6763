"""The API lists' ``next`` link carries a cursor (api/pagination.py): following it reads the
rows after the previous page's last one along the list's index, where ``?offset=`` alone
skips every row before. The same rows, in the same order, as the offsets give."""

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from api.pagination import _after, _keyset_order
from requests_app import selectors
from tests.api_support import token_client
from tests.test_large_lists import city, ordered_plan  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(org, manual_item, place_order):
    """Seven requests of Alice's, two of them placed for her by her manager (the second
    part of "mine"); made within a moment, so many share their time to the second."""
    own = [place_order(manual_item, org.alice.user) for _ in range(5)]
    for_her = [place_order(manual_item, org.manager.user, beneficiary=org.alice) for _ in range(2)]
    return own + for_her


def walk(api, url, params):
    """Every row of the list through its ``next`` links; and the links followed."""
    body = api.get(url, params).json()
    ids, links = [r["id"] for r in body["results"]], []
    while body["next"]:
        links.append(body["next"])
        body = api.get(body["next"]).json()
        ids += [r["id"] for r in body["results"]]
    return ids, links


@pytest.mark.parametrize(
    ("who", "params"),
    [
        ("alice", {}),  # mine: two parts, each along its own index
        ("alice", {"ordering": "created_at"}),
        ("alice", {"ordering": "-id"}),
        ("admin", {"scope": "visible"}),  # one queryset
    ],
)
def test_next_links_walk_the_list_as_the_offsets_do(org, orders, who, params):
    api = token_client(getattr(org, who).user)
    expected = [
        r["id"] for r in api.get("/api/v1/requests/", {**params, "limit": 200}).json()["results"]
    ]
    assert len(expected) >= 7
    ids, links = walk(api, "/api/v1/requests/", {**params, "limit": 2})
    assert ids == expected
    assert links and all("cursor=" in link and "offset=" in link for link in links)


@pytest.mark.parametrize("params", [{}, {"ordering": "created_at"}, {"scope": "visible"}])
def test_offset_pages_are_slices_of_the_whole_list(org, orders, params):
    """Without a cursor, ``?offset=`` picks the page's ids (for "mine" from the union of
    both parts, as an array the page's statement reads them from): each page is the slice
    of the whole list, in its order."""
    api = token_client(org.alice.user)
    whole = [
        r["id"] for r in api.get("/api/v1/requests/", {**params, "limit": 200}).json()["results"]
    ]
    assert len(whole) >= 7
    for offset in range(len(whole) + 1):
        page = api.get("/api/v1/requests/", {**params, "limit": 3, "offset": offset}).json()
        assert [r["id"] for r in page["results"]] == whole[offset : offset + 3]


def test_a_cursor_of_another_place_is_ignored(org, orders):
    """A cursor holds for its list, filters and offset: with another offset or filter, or
    tampered with, the offset alone decides (as without one), never an error."""
    api = token_client(org.alice.user)
    first = api.get("/api/v1/requests/", {"limit": 2}).json()
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    assert "%" not in first["next"]  # the cursor needs no escaping
    # The cursor where it was made for, to compare with (offset 2).
    assert (
        api.get(first["next"]).json()["results"]
        == (api.get("/api/v1/requests/", {"limit": 2, "offset": 2}).json()["results"])
    )
    by_offset = api.get("/api/v1/requests/", {"limit": 2, "offset": 4}).json()["results"]
    moved = api.get("/api/v1/requests/", {"limit": 2, "offset": 4, "cursor": cursor})
    assert moved.status_code == 200 and moved.json()["results"] == by_offset
    filtered = api.get(
        "/api/v1/requests/", {"limit": 2, "offset": 2, "cursor": cursor, "state": "submitted"}
    )
    plain = api.get("/api/v1/requests/", {"limit": 2, "offset": 2, "state": "submitted"})
    assert filtered.json()["results"] == plain.json()["results"]
    made = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for token in (
        "not-base64!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        # The right stamp, values that are no time and no number.
        base64.urlsafe_b64encode(json.dumps({**made, "v": ["x", "y"]}).encode()).decode(),
        "A" * 3000,
    ):
        answer = api.get("/api/v1/requests/", {"limit": 2, "offset": 2, "cursor": token})
        assert answer.status_code == 200, token
        assert (
            answer.json()["results"]
            == api.get("/api/v1/requests/", {"limit": 2, "offset": 2}).json()["results"]
        )


def test_no_cursor_where_the_order_has_no_total_key(org, orders):
    """A sort by a column that may be NULL (the closing time of an open request) has no
    keyset: the next link leads on by offset alone."""
    api = token_client(org.alice.user)
    body = api.get("/api/v1/requests/", {"limit": 2, "ordering": "closed_at"}).json()
    assert body["next"] and "cursor=" not in body["next"]
    ids, _links = walk(api, "/api/v1/requests/", {"limit": 2, "ordering": "closed_at"})
    assert len(ids) == len(set(ids)) == body["count"]


def test_a_cursor_page_starts_its_index_scan_at_the_cursor(org, orders, city):  # noqa: F811
    """Each part of "mine" reads its index from the cursor's time on (an index condition),
    not from the newest row: a deep page costs what the first does."""
    placed_by, placed_for = selectors.requests_of_parts(org.alice.user)
    order = ("-created_at", "-id")
    keys = _keyset_order(
        placed_by.order_by(*order), [p.order_by(*order) for p in (placed_by, placed_for)]
    )
    assert [(field.attname, desc) for field, desc in keys] == [("created_at", True), ("id", True)]
    last = orders[3]
    condition = _after(keys, [last.created_at, last.pk])
    for part, index in (
        (placed_by, "request_requester_idx"),
        (placed_for, "request_beneficiary_idx"),
    ):
        text = ordered_plan(part.filter(condition).order_by(*order).values("pk")[:25])
        assert re.search(
            rf"Index Only Scan using {index} .*\n\s+Index Cond: \(.*created_at <=", text
        ), text


def test_the_previous_link_carries_no_cursor(org, orders):
    api = token_client(org.alice.user)
    first = api.get("/api/v1/requests/", {"limit": 2}).json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    assert "cursor=" not in third["previous"] and "offset=2" in third["previous"]
    assert api.get(third["previous"]).json()["results"] == second["results"]
