"""Lists stay cheap on a million requests: bounded counts, and plans that use the indexes.

The counts are bounded at COUNT_LIMIT (10,000); here the bound is lowered to 3 so a few
rows show what a city's million would. The plan tests turn sequential scans off, so the
planner shows which index it can use for the list's filter and order (on a handful of rows
it would rightly scan the table); what they check is that the query lets it.
"""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.pagination import LimitOffsetPagination
from catalogue.models import CatalogueItem, Employee
from itportal.inputs import BoundedPaginator, PartsUnion, bounded_count
from metrics.controlling import selectors as metrics_selectors
from provisioning import selectors as provisioning_selectors
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ManualMembership, ProvisioningJob
from requests_app import selectors, services
from requests_app.choices import RequestState
from requests_app.filtersets import RequestFilterSet
from requests_app.models import FulfilmentTask, ServiceRequest
from tests.api_support import token_client
from tests.factories import CatalogueItemFactory, EmployeeFactory, UserFactory
from tests.test_controlling import make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def bound(monkeypatch):
    monkeypatch.setattr(BoundedPaginator, "count_limit", 3)
    monkeypatch.setattr(LimitOffsetPagination, "count_limit", 3)


@pytest.fixture
def five_orders(org, manual_item, place_order):
    return [place_order(manual_item, org.alice.user) for _ in range(5)]


@pytest.fixture
def city(org, manual_item):
    """A city's shape for the plan tests: closed history of 20 other people around the
    five open orders. plan() analyzes the tables, and on the five alone, all Alice's and
    all open, no index narrows anything and the planner rightly walks created_at."""
    people = [EmployeeFactory(department=org.department) for _ in range(20)]
    start = timezone.now() - datetime.timedelta(days=400)
    ServiceRequest.objects.bulk_create(
        make_request(manual_item, person, org.cost_centre, price_once="0", price_monthly="0",
                     state=RequestState.FULFILLED, submitted=start + datetime.timedelta(days=day),
                     closed=start + datetime.timedelta(days=day + 3))
        for person in people
        for day in range(0, 400, 40)
    )  # fmt: skip


def plan(queryset) -> str:
    # Statistics of the test's own rows (ANALYZE is transactional), not whatever autovacuum
    # last saw of other tests' committed rows: the plan must not depend on the test order.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def ordered_plan(queryset) -> str:
    """The plan with sorting and bitmaps off: on a handful of rows a sort costs next to
    nothing, so whether the planner walks an index in order is a coin toss on the table's
    statistics; with them off, the index must give the order if it can."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off")
    return plan(queryset)


def statement_plan_and_rows(statement) -> tuple[str, list]:
    """A compiled statement's (``.sql``, ``.params``) plan, with sorts, bitmaps and
    sequential scans off as in ordered_plan, and the first column of its rows."""
    ordered_plan(ServiceRequest.objects.none())
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {statement.sql}", statement.params)
        text = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(statement.sql, statement.params)
        return text, [row[0] for row in cursor.fetchall()]


def test_the_pager_says_more_than_the_bound(client, org, five_orders, bound):
    client.force_login(org.alice.user)
    content = client.get("/antraege/", {"per_page": 2}).content.decode()
    assert "Page 1 of 2 (more than 3 entries" in content
    assert 'rel="next"' in content
    last = client.get("/antraege/", {"per_page": 2, "page": 2}).content.decode()
    assert "Page 2 of 2 (more than 3 entries" in last
    assert 'rel="next"' not in last


def test_the_pager_counts_exactly_below_the_bound(client, org, five_orders):
    client.force_login(org.alice.user)
    content = client.get("/antraege/", {"per_page": 2}).content.decode()
    assert "Page 1 of 3 (5 entries)" in content


def test_the_api_says_whether_its_count_is_exact(org, five_orders, bound):
    api = token_client(org.alice.user)
    first = api.get("/api/v1/requests/", {"limit": 2}).json()
    assert (first["count"], first["count_exact"], len(first["results"])) == (3, False, 2)
    # Past the bound the pages go on: ``next`` comes from reading one row more.
    deep = api.get("/api/v1/requests/", {"limit": 2, "offset": 2}).json()
    assert len(deep["results"]) == 2 and deep["next"]
    last = api.get("/api/v1/requests/", {"limit": 2, "offset": 4}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    beyond = api.get("/api/v1/requests/", {"limit": 2, "offset": 10**20})
    assert beyond.status_code == 200 and beyond.json()["results"] == []
    ids = [r["id"] for page in (first, deep, last) for r in page["results"]]
    assert sorted(ids) == sorted(r.pk for r in five_orders)


@pytest.mark.parametrize("ordering", ["", "id", "-id", "created_at"])  # total orders
def test_deep_api_pages_read_the_same_rows_with_the_same_queries(org, five_orders, ordering):
    """Past the first page the ids are chosen first (LimitOffsetPagination.rows): every page
    holds the rows a plain slice would, in order, with as many queries as the first page."""
    api = token_client(org.alice.user)
    params = {"limit": 2, **({"ordering": ordering} if ordering else {})}
    expected = [
        r["id"] for r in api.get("/api/v1/requests/", {**params, "limit": 5}).json()["results"]
    ]
    counts, ids = [], []
    for offset in (0, 2, 4):
        with CaptureQueriesContext(connection) as ctx:
            body = api.get("/api/v1/requests/", {**params, "offset": offset}).json()
        counts.append(len(ctx.captured_queries))
        ids += [r["id"] for r in body["results"]]
    assert ids == expected and len(set(ids)) == 5
    assert len(set(counts)) == 1


def test_the_api_count_is_exact_below_the_bound(org, five_orders):
    body = token_client(org.alice.user).get("/api/v1/requests/", {"limit": 2}).json()
    assert (body["count"], body["count_exact"]) == (5, True)


def test_the_admin_changelist_counts_once_and_up_to_the_bound(client, five_orders, bound):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get("/admin/requests_app/servicerequest/")
    content = response.content.decode()
    assert "more than 3 service requests" in content
    # No second, unfiltered count, and no "select all N" across pages with a wrong N.
    assert response.context["cl"].full_result_count is None
    assert "Select all" not in content


def test_my_requests_use_both_indexes(org, five_orders, city):
    text = plan(selectors.requests_of(org.alice.user))
    # Both sides of the OR on an index (the list's, which lead with the person; the foreign
    # keys have none of their own); an IN (subquery) became a "hashed SubPlan" filter.
    assert "request_requester_idx" in text
    assert "request_beneficiary_idx" in text
    assert "hashed SubPlan" not in text


def test_my_requests_parts_read_their_indexes_in_order(org, five_orders, city):
    # Each part of the pager (BoundedPaginator's ``parts``) walks its own index in the
    # list's order, the page's ids from the index alone: no sort of the person's rows.
    placed_by, placed_for = selectors.requests_of_parts(org.alice.user)
    for part, index in (
        (placed_by, "request_requester_idx"),
        (placed_for, "request_beneficiary_idx"),
    ):
        text = ordered_plan(part.order_by("-created_at").values("pk")[:25])
        assert f"Index Only Scan using {index}" in text
        assert "Sort" not in text


def test_my_requests_deep_pages_merge_the_parts_index_entries(org, five_orders, city):
    # A deep page's ids come from the parts' index entries with their order's columns,
    # merged in order (BoundedPaginator via PartsUnion): no request row is read to choose
    # them. Chosen by id among the parts' first rows, page 100 of an employee's "all" tab
    # read 5,000 rows again to sort them (12 ms at 1M).
    placed_by, placed_for = (
        part.order_by("-created_at", "-pk") for part in selectors.requests_of_parts(org.alice.user)
    )
    union = PartsUnion([placed_by, placed_for], ordered=True)
    text, chosen = statement_plan_and_rows(union.ids(2, 4))
    assert "Index Only Scan using request_requester_idx" in text, text
    assert "Index Only Scan using request_beneficiary_idx" in text, text
    assert "Merge Append" in text, text
    assert text.count(" on requests_app_servicerequest") == 2, text  # the parts' indexes only
    expected = selectors.requests_of(org.alice.user).order_by("-created_at", "-pk")
    expected = list(expected.values_list("pk", flat=True))
    assert chosen == expected[2:4]
    assert union.count(10) == len(expected) and union.count(2) == 2


def test_my_requests_count_and_choose_a_pages_ids_in_one_read(org, five_orders, city):
    # A search or the open requests (few of the person's index entries) count and choose
    # the page's ids in one statement (PartsUnion.count_and_ids): each part's index read
    # once, where the ids apart read a search's all again. A page past the end gets the
    # last page's ids, as the table shows it.
    placed_by, placed_for = (
        part.order_by("-created_at", "-pk") for part in selectors.requests_of_parts(org.alice.user)
    )
    union = PartsUnion([placed_by, placed_for], ordered=True)
    expected = selectors.requests_of(org.alice.user).order_by("-created_at", "-pk")
    expected = list(expected.values_list("pk", flat=True))
    ordered_plan(ServiceRequest.objects.none())  # sequential scans, sorts, bitmaps off
    with CaptureQueriesContext(connection) as queries:
        assert union.count_and_ids(10, 2, 2) == (len(expected), 2, expected[2:4])
    last = (len(expected) - 1) // 2 * 2
    assert union.count_and_ids(10, 50, 2) == (len(expected), last, expected[last:])
    assert union.count_and_ids(10, 50, 2, 1)[1:] == (2, expected[2:])  # orphans join
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = on")  # the page's ids are sorted
        cursor.execute(f"EXPLAIN {queries.captured_queries[0]['sql']}")
        text = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using request_requester_idx" in text, text
    assert "Index Only Scan using request_beneficiary_idx" in text, text
    assert text.count(" on requests_app_servicerequest") == 2, text  # each part once


def test_my_requests_next_pages_read_on_from_where_the_page_ended(org, five_orders, city):
    # The "next page" link's page (keyset, PartsUnion.ids_after): each part's index from
    # the last row's order date on, the first key bounding the scan, not past OFFSET rows.
    placed_by, placed_for = (
        part.order_by("-created_at", "-pk") for part in selectors.requests_of_parts(org.alice.user)
    )
    union = PartsUnion([placed_by, placed_for], ordered=True)
    expected = selectors.requests_of(org.alice.user).order_by("-created_at", "-pk")
    expected = list(expected.values_list("created_at", "pk"))
    text, chosen = statement_plan_and_rows(union.ids_after(list(expected[1]), 2))
    assert chosen == [pk for _, pk in expected[2:4]]
    for index in ("request_requester_idx", "request_beneficiary_idx"):
        scan = text.split(f"Index Only Scan using {index}")[1].split("->")[0]
        assert "created_at <=" in scan.split("Index Cond:")[1].split("\n")[0], text


def test_my_requests_search_within_the_parts_indexes(org, five_orders, city):
    # The search reads the matching services and people first (InitPlans) and filters each
    # part on its index's item and beneficiary: no join of the requests, no heap row read
    # to test one (0.8 s for a search of a user's thousands of requests at 1M).
    placed_by, placed_for = selectors.requests_of_parts(org.alice.user)
    search = RequestFilterSet(queryset=ServiceRequest.objects.none()).search
    for part, index in (
        (placed_by, "request_requester_idx"),
        (placed_for, "request_beneficiary_idx"),
    ):
        for value in ("Notebook", org.bob.user.last_name, "#12"):
            searched = search(part, "q", value).order_by("-created_at").values("pk")
            for text in (ordered_plan(searched[:25]), plan(searched[:10001])):
                assert f"Index Only Scan using {index}" in text, text
                assert "Sort" not in text.split("InitPlan")[0]


def test_a_search_kept_per_process_reads_the_services_and_people_anew(org, five_orders):
    """The search's condition is kept per text (RequestFilterSet.search): it holds the SQL
    that reads the matching services and people, never the rows it found then."""
    from requests_app import filtersets

    order = five_orders[0]
    text = "Zebrafink"

    def found():
        filterset = RequestFilterSet(queryset=ServiceRequest.objects.none())
        return set(
            filterset.search(ServiceRequest.objects.all(), "q", text).values_list("pk", flat=True)
        )

    assert found() == set()
    assert filtersets._SEARCH_CONDITIONS.get(text) is not None
    order.item.name = f"{text} 3000"
    order.item.save(update_fields=["name"])
    assert order.pk in found()
    user = order.beneficiary.user
    user.last_name = text
    user.save(update_fields=["last_name"])
    assert {o.pk for o in five_orders if o.beneficiary_id == order.beneficiary_id} <= found()


def test_the_queue_reads_its_partial_index(org, five_orders, city):
    for order in five_orders[:2]:
        services.request_approve(request_id=order.pk, user=org.manager.user)
    queue = selectors.fulfilment_queue(org.admin.user)
    # On five rows any index that narrows the rows wins a bitmap and a sort (after ANALYZE
    # it was request_open_beneficiary_idx): with both off, the queue's partial indexes must
    # give each order, which is what they are for.
    by_creation = ordered_plan(queue.order_by("created_at")[:25])
    assert "Index Scan using request_open_queue_idx" in by_creation
    assert "Sort" not in by_creation
    # The page's order (QueueTable: newest approvals first) has its own (at 1M requests an
    # Index Scan Backward of 25 entries, BENCHMARKS.md), which the pager reads the page's
    # ids from (BoundedPaginator.page).
    by_approval = ordered_plan(queue.order_by("-approved_at").values("pk")[:25])
    assert "Index Only Scan Backward using request_queue_approved_idx" in by_approval
    assert {r.pk for r in queue} == {o.pk for o in five_orders[:2]}


# The indexes of the queue's own entries (partial, QUEUE_CONDITION).
QUEUE_INDEXES = ("request_queue_approved_idx", "request_open_queue_idx", "request_queue_item_idx")


def test_the_queue_sorted_by_another_column_reads_only_the_queues_indexes(org, five_orders, city):
    """Sorted by service (or person, group, due date) the queue reads all its rows: from its
    own covering index, never from a bitmap of the indexes of all open requests ANDed with
    one of its own. At 1M the planner expected eight rows of that AND and got 2,500 table
    pages (10-36 ms, an index-only scan 5 ms). The wrapped condition (itportal.lookups.IsTrue)
    proves only the queue's indexes usable, whatever else the planner may choose."""
    for order in five_orders[:2]:
        services.request_approve(request_id=order.pk, user=org.manager.user)
    queue = selectors.fulfilment_queue_rows(org.admin.user)
    open_indexes = ("request_open_beneficiary_idx", "request_open_requester_idx",
                    "request_open_submitted_idx")  # fmt: skip
    for sort in ("item__name", "beneficiary__user__last_name", "-fulfilment_due_on"):
        ids = queue.order_by(sort, "-pk").values("pk")[:25]
        for off in ("", "indexonlyscan", "indexscan"):
            with connection.cursor() as cursor:
                if off:
                    cursor.execute(f"SET LOCAL enable_{off} = off")
            shown = plan(ids)
            assert not any(name in shown for name in open_indexes), (sort, off, shown)
            assert "BitmapAnd" not in shown
            assert any(name in shown for name in QUEUE_INDEXES), (sort, off, shown)
    assert {row["pk"] for row in queue.values("pk")} == {o.pk for o in five_orders[:2]}


def test_entitlements_read_an_index_in_their_order(org, manual_item, place_order, city):
    for person in (org.alice, org.bob, org.manager):
        Entitlement.objects.create(
            holder=person,
            item=manual_item,
            request=place_order(manual_item, person.user),
            state=EntitlementState.ACTIVE,
        )
    mine = provisioning_selectors.entitlements_visible_to(org.alice.user)
    assert [e.holder for e in mine] == [org.alice]
    reports = provisioning_selectors.entitlements_visible_to(org.manager.user)
    assert {e.holder for e in reports} == {org.alice, org.bob, org.manager}
    text = ordered_plan(mine.order_by("-granted_at", "-id")[:25])
    assert "entitlement_holder_granted_idx" in text or "entitlement_granted_idx" in text
    assert "Sort" not in text.replace("Sort Key", "")


@pytest.mark.parametrize("page", [1, 2])
def test_entitlement_page_counts_and_chooses_rows_without_joins(
    client, org, manual_item, place_order, page
):
    """The entitlements page reads its rows as dicts with the item, holder and department
    joined, but counts and, past the first page, chooses the page's ids
    on the entitlements alone: a count through four joins took 29 ms at 1M requests."""
    from tests.factories import EmployeeFactory

    for _ in range(4):
        person = EmployeeFactory(manager=org.manager)
        Entitlement.objects.create(
            holder=person, item=manual_item, request=place_order(manual_item, person.user)
        )
    client.force_login(org.manager.user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/provisionierung/berechtigungen/", {"page": page, "per_page": 2})
    assert response.status_code == 200
    assert len(re.findall(r'<a href="/antraege/\d+/">\d+</a>', response.content.decode())) == 2
    sqls = [q["sql"] for q in ctx.captured_queries]
    # Counted by the union of its one part, compiled once (OwnPartMixin).
    counts = [sql for sql in sqls if sql.startswith('SELECT (SELECT COUNT(*) FROM (SELECT "provis')]
    assert len(counts) == 1 and "JOIN" not in counts[0]
    rows = [sql for sql in sqls if sql.startswith('SELECT "provisioning_entitlement"."id"')]
    assert len(rows) == 1 and "catalogue_department" in rows[0]
    if page > 1:
        inner = rows[0][rows[0].index("IN (SELECT") :]
        assert "JOIN" not in inner, rows[0]


def analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # transactional: this test's rows only


def test_a_whole_table_of_many_times_the_bound_is_not_counted():
    """Unfiltered, a table whose statistics say ESTIMATE_MARGIN (2) times the bound or more
    is "more than the bound" without counting its rows: shown here by rows deleted after
    ANALYZE, which the estimate still has (autovacuum analyses after a tenth changed)."""
    ManualMembership.objects.bulk_create(
        ManualMembership(group_dn=f"cn=g{n}", member_dn="uid=a") for n in range(6)
    )
    analyze("provisioning_manualmembership")
    ManualMembership.objects.exclude(group_dn="cn=g0").delete()
    everything = ManualMembership.objects.order_by("-pk")
    assert bounded_count(everything, 2) == 3  # 6 rows estimated: "more than 2"
    assert bounded_count(everything, 3) == 4
    assert bounded_count(everything, 4) == 1  # 6 < 2 × 4: counted
    # A condition, even one every row meets, is counted: no estimate of it is kept.
    assert bounded_count(everything.filter(pk__gt=0), 2) == 1
    assert bounded_count(everything.filter(pk__gt=0).none(), 2) == 0
    # One statement either way.
    with CaptureQueriesContext(connection) as estimated:
        bounded_count(everything, 2)
    with CaptureQueriesContext(connection) as counted:
        bounded_count(everything, 4)
    assert len(estimated) == len(counted) == 1


def test_the_admin_changelist_of_a_large_table_is_estimated(client, five_orders, monkeypatch):
    monkeypatch.setattr(BoundedPaginator, "count_limit", 2)
    analyze("requests_app_servicerequest")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with CaptureQueriesContext(connection) as queries:
        content = client.get("/admin/requests_app/servicerequest/").content.decode()
    assert "more than 2 service requests" in content
    assert any("reltuples" in q["sql"] for q in queries.captured_queries)
    # Filtered, the rows are counted up to the bound as before.
    with CaptureQueriesContext(connection) as filtered:
        content = client.get("/admin/requests_app/servicerequest/?q=nothing-like-it").content
    assert "0 service requests" in content.decode()
    assert not any("reltuples" in q["sql"] for q in filtered.captured_queries)
    assert len(filtered) == len(queries)


def search_line(content: str) -> str:
    """The changelist's result count next to the search field."""
    return re.search(r'<span class="small quiet">(.*?) \(<a', content, re.S).group(1)


@pytest.mark.parametrize(
    ("language", "bounded", "exact"),
    [
        ("en", "more than 10,000 results", "5 results"),
        ("de", "mehr als 10.000 Ergebnisse", "5 Ergebnisse"),
    ],
)
def test_the_admin_search_line_says_more_than_the_bound(
    client, five_orders, monkeypatch, language, bounded, exact
):
    """Beyond the bound (estimated or counted) the line next to the search field says
    "more than", not the bound as if it were the number of rows; below it, the count."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = "/admin/requests_app/servicerequest/"
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    assert search_line(client.get(url, **headers).content.decode()) == exact
    monkeypatch.setattr(BoundedPaginator, "count_limit", 10_000)
    monkeypatch.setattr("itportal.inputs.bounded_count", lambda rows, limit: limit + 1)
    content = client.get(url, **headers).content.decode()
    assert search_line(content) == bounded
    # The pager below the table says the same of the rows.
    assert bounded.split()[2] in content.split('<p class="paginator">')[1]


def test_the_admin_audit_list_runs_no_query_per_row(client, org, manual_item, place_order):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = "/admin/requests_app/requestevent/"
    place_order(manual_item, org.alice.user)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(4):
        place_order(manual_item, org.alice.user)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)


@pytest.mark.parametrize("values", [False, True])
def test_deep_pages_of_rows_read_as_values_are_chosen_by_id(org, five_orders, values):
    """BoundedPaginator chooses a deep page's ids first for dict rows (values()) too: the
    page holds the rows a plain slice would, read by id."""
    from django.db.models import F

    queryset = selectors.requests_visible_to(org.alice.user).order_by("-id")
    if values:
        queryset = queryset.values("id", item_name=F("item__name"))
    paginator = BoundedPaginator(queryset, 2)
    with CaptureQueriesContext(connection) as ctx:
        page = list(paginator.page(2))
    assert [row["id"] if values else row.pk for row in page] == [r.pk for r in five_orders][2:0:-1]
    assert "IN (SELECT" in ctx.captured_queries[-1]["sql"]
    if values:
        assert page[0]["item_name"] == five_orders[0].item.name


def test_licence_pools_read_their_items_entries(org, manual_item, place_order, city):
    """A pool's held licences, its grants and revocations of the trend window and its
    reserved licences (approved orders without an entitlement) are read from the item's
    entries of two indexes; at a million requests the foreign-key index with the heap, or a
    bitmap of every open request filtered by item, took 24-49 ms for two pools."""
    CatalogueItem.objects.filter(pk=manual_item.pk).update(licence_pool_size=10)
    now = timezone.now()
    # The city's entitlements: the other services' thousands, granted over the years.
    people = list(Employee.objects.all())
    others = [CatalogueItemFactory() for _ in range(8)]
    history = ServiceRequest.objects.bulk_create(
        make_request(item, people[k % len(people)], org.cost_centre, price_once="0",
                     price_monthly="0", state=RequestState.FULFILLED,
                     submitted=now - datetime.timedelta(days=k), closed=now)
        for item in others
        for k in range(0, 400, 8)
    )  # fmt: skip
    Entitlement.objects.bulk_create(
        Entitlement(
            holder=r.beneficiary,
            item=r.item,
            request=r,
            granted_at=r.submitted_at,
            state=EntitlementState.REVOKED if k % 3 == 0 else EntitlementState.ACTIVE,
            revoked_at=now if k % 3 == 0 else None,
        )
        for k, r in enumerate(history)
    )
    for n, person in enumerate((org.alice, org.bob, org.manager)):
        revoked = now - datetime.timedelta(days=n) if n else None
        Entitlement.objects.create(
            holder=person,
            item=manual_item,
            request=place_order(manual_item, person.user),
            state=EntitlementState.REVOKED if revoked else EntitlementState.ACTIVE,
            granted_at=now - datetime.timedelta(days=40 * n + 1),
            revoked_at=revoked,
        )
    reserved = place_order(manual_item, org.alice.user)
    services.request_approve(request_id=reserved.pk, user=org.manager.user)
    with CaptureQueriesContext(connection) as ctx:
        [pool] = metrics_selectors.licence_pools(now=now)
    assert (pool.in_use, pool.reserved, pool.granted, pool.revoked) == (1, 1, 3, 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + ctx.captured_queries[-1]["sql"])
        text = "\n".join(row[0] for row in cursor.fetchall())
    # Held and granted: one range of the item's entries each (granted: of its window too);
    # revoked: the item's entries or the window's revocations, as the statistics say (both
    # ranges of an index; CI saw either, after other tests' committed rows); reserved: the
    # partial index; never the foreign-key index with the heap.
    granted = text.count("using entitlement_item_granted_idx")
    assert granted >= 2, text
    assert granted + text.count("using entitlement_revoked_idx") == 3, text
    assert "using request_item_reserved_idx" in text, text


@pytest.fixture
def city_work(org, city):
    """The city's provisioning jobs and fulfilment tasks: two jobs per closed request (a few
    failed), a done task for every other one and a few still open, created over the years."""
    history = list(ServiceRequest.objects.filter(state=RequestState.FULFILLED))
    done, still_open = FulfilmentTask.State.DONE, FulfilmentTask.State.OPEN
    ProvisioningJob.objects.bulk_create(
        ProvisioningJob(request=r, direction=Direction.GRANT, position=position,
                        kind=ActionKind.ADD_TO_GROUP, user_uid=r.beneficiary.personnel_number,
                        target_dn=f"cn=g{position}", dialect="ad", created_at=r.submitted_at,
                        state=JobState.FAILED if k % 25 == 0 else JobState.SUCCEEDED)
        for k, r in enumerate(history)
        for position in (0, 1)
    )  # fmt: skip
    FulfilmentTask.objects.bulk_create(
        FulfilmentTask(request=r, person=r.beneficiary, fulfilment_group=org.service_desk,
                       kind=FulfilmentTask.Kind.COLLECT, reason="Austritt",
                       created_at=r.closed_at,
                       state=still_open if k % 20 == 0 else done,
                       done_at=None if k % 20 == 0 else r.closed_at + datetime.timedelta(days=1))
        for k, r in enumerate(history)
        if k % 2 == 0
    )  # fmt: skip


def explained(sql: str) -> str:
    """EXPLAIN of a captured statement with sequential scans, sorts and bitmaps off (as
    ordered_plan): the list's order must come from an index."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def api_page(client, url, params=None):
    """The page's body and the statement that read its rows (the last one)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200, response.content[:300]
    return response.json(), ctx.captured_queries[-1]["sql"]


@pytest.mark.parametrize(
    ("url", "table", "indexes", "expected"),
    [
        # Newest first (Meta.ordering, the key last). At 1M requests a sequential scan of
        # 56,786 jobs and a sort; the tasks: all 35,060 joined with their requests, sorted.
        ("/api/v1/provisioning-jobs/", "provisioning_provisioningjob", ("job_created_idx",),
         lambda: ProvisioningJob.objects.order_by("-created_at", "position", "-id")),
        ("/api/v1/fulfilment-tasks/", "requests_app_fulfilmenttask", ("task_created_idx",),
         lambda: FulfilmentTask.objects.order_by("created_at", "id")),
    ],
)  # fmt: skip
def test_api_lists_of_jobs_and_tasks_read_an_index_in_their_order(
    org, city_work, url, table, indexes, expected
):
    """The API's lists of jobs and tasks read their page, and the next link's page from
    where the page ended (its cursor), along an index in the list's order: no sort."""
    admin = token_client(org.admin.user)
    ids = list(expected().values_list("pk", flat=True))
    first, sql = api_page(admin, url, {"limit": 5})
    assert [row["id"] for row in first["results"]] == ids[:5]
    assert "cursor=" in first["next"]
    second, after = api_page(admin, first["next"])
    assert [row["id"] for row in second["results"]] == ids[5:10]
    for statement in (sql, after):
        text = explained(statement)
        assert any(f"Index Scan using {name} on {table}" in text for name in indexes), text
        assert "Sort" not in text.replace("Sort Key", ""), text
    scan = explained(after).split(f" on {table}")[1]
    assert "created_at <=" in scan or "created_at >=" in scan, scan


def test_api_jobs_of_one_action_read_its_index_entries(org, city_work):
    """Filtered by a rarer action, the jobs list counts and reads its page from the action's
    entries of job_kind_created_idx: at 1M the count was a sequential scan of all jobs
    (10 ms), and the page walked every newer job of other actions."""
    jobs = list(ProvisioningJob.objects.order_by("-created_at", "position", "-id")[:6])
    ProvisioningJob.objects.filter(pk__in=[job.pk for job in jobs[::2]]).update(
        kind=ActionKind.REMOVE_FROM_GROUP
    )
    admin = token_client(org.admin.user)
    with CaptureQueriesContext(connection) as ctx:
        body, sql = api_page(admin, "/api/v1/provisioning-jobs/", {"kind": "remove_from_group"})
    assert [row["id"] for row in body["results"]] == [job.pk for job in jobs[::2]]
    [count] = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    for statement in (count, sql):
        text = explained(statement)
        assert "using job_kind_created_idx on provisioning_provisioningjob" in text, text
        assert "Sort" not in text.replace("Sort Key", ""), text


def test_the_queues_base_is_built_once_and_only_copied(org, five_orders):
    """selectors._queue_base is kept per process: each view gets a copy, which its tab and
    filters narrow without touching the kept one or another view's."""
    for order in five_orders[:3]:
        services.request_approve(request_id=order.pk, user=org.manager.user)
    admin = org.admin.user
    first = selectors.fulfilment_queue_rows(admin)
    second = selectors.fulfilment_queue_rows(admin)
    assert first is not second and first.query is not second.query
    assert first.filter(pk=five_orders[0].pk).count() == 1
    assert {r.pk for r in second} == {o.pk for o in five_orders[:3]}
    assert selectors.fulfilment_queue(admin).count() == 3
    assert selectors._queue_base(rows_only=True)._result_cache is None  # never evaluated
    fulfiller = selectors.fulfilment_queue_rows(org.fulfiller.user)
    assert {r.pk for r in fulfiller} <= {o.pk for o in five_orders[:3]}


def _queue_ids(client, sort: str) -> list[int]:
    """The queue's request numbers in the page's order, read page by page (three a page)."""
    numbers, page = [], 1
    while True:
        response = client.get(f"/antraege/bearbeitung/?sort={sort}&per_page=3&page={page}")
        assert response.status_code == 200
        table = response.context["table"]
        numbers += [row["id"] for row in table.page.object_list.data]
        if not table.page.has_next():
            return numbers
        page += 1


def test_the_queue_sorted_by_service_has_the_order_of_the_items_names(client, org):
    """QueueTable sorts by the item's rank among the names (selectors.item_name_rank), not
    by the joined name: the same order as ``item__name`` and the request's number in both
    directions, items of the same name sharing a rank (their requests interleaved by
    number), and a renamed or new item in its place at once."""
    names = ["Zugang", "äpfel", "Apfel", "apfel", "Notebook", "Notebook", "Monitor"]
    items = [CatalogueItemFactory(name=name, service_owner=org.service_desk) for name in names]
    start = timezone.now() - datetime.timedelta(days=3)

    def approved(item, count):
        rows = ServiceRequest.objects.bulk_create(
            make_request(item, org.alice, org.cost_centre, price_once="0", price_monthly="0",
                         state=RequestState.APPROVED, submitted=start)
            for _ in range(count)
        )  # fmt: skip
        ServiceRequest.objects.filter(pk__in=[r.pk for r in rows]).update(approved_at=start)

    for index, item in enumerate(items):
        approved(item, 1 + index % 3)
    # Interleaved numbers for the two "Notebook"s: ties are broken by the request alone.
    approved(items[4], 2)
    approved(items[5], 1)
    client.force_login(org.admin.user)
    queue = ServiceRequest.objects.filter(state=RequestState.APPROVED)

    def check():
        for sort, order in (("item", "item__name"), ("-item", "-item__name")):
            expected = list(queue.order_by(order, "-pk").values_list("pk", flat=True))
            assert _queue_ids(client, sort) == expected, sort

    check()
    items[0].name = "Aal"  # from last to first
    items[0].save(update_fields=["name"])
    approved(CatalogueItemFactory(name="Maus", service_owner=org.service_desk), 2)
    approved(CatalogueItemFactory(name="Notebook", service_owner=org.service_desk), 1)
    check()


def test_the_queues_page_ids_by_service_are_sorted_without_the_items(org, five_orders, city):
    """The page's ids sorted by service: the queue's index and the items' ranks (read
    once), no join of the items to every queue row."""
    from requests_app.tables import _BY_ITEM_NAME

    for order in five_orders[:2]:
        services.request_approve(request_id=order.pk, user=org.manager.user)
    queue = selectors.fulfilment_queue_rows(org.admin.user)
    for by_name in _BY_ITEM_NAME:
        ids = queue.order_by(by_name, "-pk").values("pk")[:25]
        shown = plan(ids)
        # The ranks' InitPlan first, then the queue's rows sorted by them alone.
        assert "InitPlan" in shown
        rows = shown[shown.index("Sort Key: (($") :]
        assert "[requests_app_servicerequest.item_id]" in rows.splitlines()[0], shown
        # Any of the queue's partial indexes serves (on a handful of rows their costs tie,
        # request_queue_item_idx included); what matters is that no join feeds the sort.
        assert any(index in rows for index in QUEUE_INDEXES), shown
        assert "Join" not in rows and "Nested Loop" not in rows, shown
        union = PartsUnion([queue.order_by(by_name, "-pk")], ordered=True)
        assert union.combinable and "INNER JOIN" not in union.compiled[0][0]


def test_the_queues_page_ids_by_service_walk_the_items_in_order(org, city):
    """Sorted by service, a page's ids walk the items by their rank and read each one's
    queue entries from request_queue_item_idx (PartsUnion.walked): every window of the
    list, in both directions, for a tab and for a group's fulfiller, is the window of the
    order by the joined name and the number, items of the same name interleaved."""
    from requests_app.tables import _BY_ITEM_NAME

    names = ["Zugang", "Apfel", "apfel", "Notebook", "Notebook", "Monitor"]
    items = [CatalogueItemFactory(name=name, service_owner=org.service_desk) for name in names]
    start = timezone.now() - datetime.timedelta(days=2)
    for round_ in range(3):
        for index, item in enumerate(items):
            if (index + round_) % 2:
                continue
            ServiceRequest.objects.bulk_create(
                make_request(item, org.alice, org.cost_centre, price_once="0",
                             price_monthly="0", state=RequestState.APPROVED, submitted=start)
                for _ in range(1 + index % 3)
            )  # fmt: skip
    ServiceRequest.objects.filter(state=RequestState.APPROVED).update(approved_at=start)
    # Some in fulfilment with an assignee (in the queue), one without (not in it).
    taken = list(ServiceRequest.objects.order_by("pk").values_list("pk", flat=True)[::4])
    ServiceRequest.objects.filter(pk__in=taken).update(
        state=RequestState.IN_FULFILMENT, assignee=org.admin.user
    )
    ServiceRequest.objects.filter(pk=taken[0]).update(assignee=None)
    for user in (org.admin.user, org.fulfiller.user):
        queue = selectors.fulfilment_queue_rows(user)
        for listed in (queue, queue.filter(state=RequestState.APPROVED)):
            for by_name, name in zip(_BY_ITEM_NAME, ("item__name", "-item__name"), strict=True):
                union = PartsUnion([listed.order_by(by_name, "-pk")], ordered=True)
                assert union.walked is not None and "CROSS JOIN LATERAL" in union.walked[0][0]
                expected = list(listed.order_by(name, "-pk").values_list("pk", flat=True))
                assert len(expected) > 5 or user == org.fulfiller.user
                for start_, stop in (
                    (0, 3),
                    (0, 25),
                    (2, 7),
                    (5, 11),
                    (max(0, len(expected) - 2), len(expected) + 5),
                ):
                    window = ServiceRequest.objects.filter(pk__in=union.ids(start_, stop))
                    got = list(window.order_by(by_name, "-pk").values_list("pk", flat=True))
                    assert got == expected[start_:stop], (user, name, start_, stop)
    assert taken[0] not in selectors.fulfilment_queue_rows(org.admin.user).values_list(
        "pk", flat=True
    )
    # Not for an order led by anything else.
    queue = selectors.fulfilment_queue_rows(org.admin.user)
    assert PartsUnion([queue.order_by("-approved_at", "-pk")], ordered=True).walked is None
