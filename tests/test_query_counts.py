"""The list pages and the request page run a fixed number of SQL queries, however many rows.

Each page is measured with 3 rows and again with 30 rows (more than one page of 25);
the two counts must be equal, so an N+1 query fails the test, and the count is pinned
so a new query per page is noticed too.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.choices import ApproverKind
from requests_app import selectors, services
from requests_app.models import Submission
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    CategoryFactory,
    CostCentreFactory,
    DepartmentFactory,
    EmployeeFactory,
    FormFieldFactory,
    GroupFactory,
)

pytestmark = pytest.mark.django_db

# Pinned query counts per page and viewer: session, user, the user's group names and ids (one
# query), the filter form's categories and cost centres (one query: read_kept_together), the rows
# (and their count), and for the request page its approvals, timeline and the checks behind the
# action buttons. The approvals page also reads the joint orders it groups (one query), and the
# decision support (assist/) its rows' figures (one query); the request page, for whoever decides
# it, the figures and the rejection reasons (two). The catalogue start page adds "recommended for
# you": the peer group's size (one) and, for a big enough group, the items (one). Every page also
# reads the header's navigation counts (home/selectors.py nav_counts), and for some viewers their
# groups for the menus. The request page reads the request by its id; whoever is not its requester,
# beneficiary, fulfiller or an IT admin (the manager) gets the visibility query in a second one
# (selectors.request_visible_to). The approvals list, unfiltered, counts no rows: their number is
# that of its pending decisions.
# A change here must be deliberate: update the number and say why in the commit.
QUERIES = {
    ("mine", "alice"): 7,
    ("approvals", "manager"): 8,
    ("queue", "fulfiller"): 8,
    ("queue", "admin"): 8,
    ("catalogue", "alice"): 8,
    ("detail", "manager"): 13,
    ("detail", "alice"): 7,
    ("detail", "admin"): 13,
}


def measure(client, url):
    """Queries of one GET of ``url`` after a warm-up GET (caches filled, session saved)."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return ctx, response


def assert_same_count(few, many):
    few_sql = [q["sql"] for q in few.captured_queries]
    many_sql = [q["sql"] for q in many.captured_queries]
    assert len(many_sql) == len(few_sql), "\n".join(
        ["queries grew with the rows:", *many_sql[len(few_sql) - 1 :]]
    )


class Rows:
    """Adds requests of many people, departments, cost centres and items, a batch at a time."""

    def __init__(self, org, manual_item):
        self.org = org
        self.manual_item = manual_item
        self.n = 0
        self.requests = []

    def _person(self):
        self.n += 1
        # Own codes: the factory's FB{n:02d} sequence reaches the org fixture's "FB10".
        department = DepartmentFactory(code=f"QC{self.n:04d}", cost_centre=CostCentreFactory())
        # Alice may charge it: her orders for this colleague wait for the manager alone.
        self.org.alice.chargeable_cost_centres.add(department.cost_centre)
        return EmployeeFactory(department=department, manager=self.org.manager)

    def awaiting(self, count, *, together=False):
        """Requests placed by Alice for different colleagues, each waiting for the manager;
        ``together``: in one joint order."""
        submission = Submission.objects.create(requester=self.org.alice.user) if together else None
        for _ in range(count):
            beneficiary = self._person()
            self.requests.append(
                services.request_create(
                    requester=self.org.alice.user,
                    item=self.manual_item,
                    item_version=self.manual_item.version,
                    beneficiary=beneficiary,
                    cost_centre=beneficiary.effective_cost_centre,
                    answers={},
                    submission=submission,
                )
            )

    def in_queue(self, count):
        """Approved manual requests of different items, every other one taken."""
        for i in range(count):
            beneficiary = self._person()
            item = CatalogueItemFactory(
                service_owner=self.org.service_desk, category=CategoryFactory()
            )
            req = services.request_create(
                requester=beneficiary.user,
                item=item,
                item_version=item.version,
                beneficiary=beneficiary,
                cost_centre=beneficiary.effective_cost_centre,
                answers={},
            )
            if i % 2:
                services.request_take(request_id=req.pk, user=self.org.fulfiller.user)
            self.requests.append(req)


@pytest.fixture
def rows(org, manual_item):
    return Rows(org, manual_item)


def visible_links(response, requests):
    content = response.content.decode()
    return sum(f'href="/antraege/{r.pk}/"' in content for r in requests)


@pytest.mark.parametrize(
    ("page", "url", "viewer", "make"),
    [
        ("mine", "/antraege/", "alice", "awaiting"),
        ("approvals", "/antraege/genehmigungen/", "manager", "awaiting"),
        ("queue", "/antraege/bearbeitung/", "fulfiller", "in_queue"),
        ("queue", "/antraege/bearbeitung/", "admin", "in_queue"),
    ],
)
def test_list_page_queries_do_not_grow(
    client,
    org,
    rows,
    django_assert_num_queries,
    django_assert_max_num_queries,
    page,
    url,
    viewer,
    make,
):
    client.force_login(getattr(org, viewer).user)
    getattr(rows, make)(3)
    few, response = measure(client, url)
    assert visible_links(response, rows.requests) == 3
    getattr(rows, make)(27)
    many, response = measure(client, url)
    assert visible_links(response, rows.requests) == 25  # one full page of 30
    assert_same_count(few, many)
    with django_assert_num_queries(QUERIES[page, viewer]):
        assert client.get(url).status_code == 200
    # Sorting by a related column, filtering and the second page cost no more (but the
    # count that the unfiltered approvals list does without).
    for params in (
        "?sort=-beneficiary",
        "?sort=cost_centre",
        "?state=awaiting_approval",
        "?page=2",
    ):
        counted = params.startswith("?state=") and page == "approvals"
        with django_assert_max_num_queries(QUERIES[page, viewer] + counted):
            assert client.get(url + params).status_code == 200


def test_catalogue_index_queries_do_not_grow(client, org, django_assert_num_queries):
    client.force_login(org.alice.user)
    groups = [GroupFactory() for _ in range(3)]

    def add_items(count):
        for i in range(count):
            category = CategoryFactory() if i % 3 == 0 else None
            item = CatalogueItemFactory(
                category=category or CategoryFactory(slug=f"kat-{i // 3}-{count}"),
                service_owner=groups[i % 3],
            )
            ApprovalPolicyStepFactory(item=item, approver_kind=ApproverKind.LINE_MANAGER)
            FormFieldFactory(item=item)

    add_items(3)
    few, response = measure(client, "/")
    assert response.content.decode().count('class="card"') == 3
    add_items(27)
    many, response = measure(client, "/")
    assert response.content.decode().count('class="card"') == 30
    assert_same_count(few, many)
    with django_assert_num_queries(QUERIES["catalogue", "alice"]):
        client.get("/")
    few, _response = measure(client, "/?q=Leistung")
    assert_same_count(few, many)


def _request_with_steps(org, place_order, steps, decided):
    """A request with ``steps`` group approval steps, ``decided`` done, each by another
    person (four-eyes); the last step is a group the manager is in."""
    item = CatalogueItemFactory(service_owner=org.service_desk)
    deciders = []
    for position in range(1, steps + 1):
        board = GroupFactory(name=f"Gremium {item.pk}-{position}")
        member = EmployeeFactory(department=org.department).user
        member.groups.add(board)
        if position == steps:
            org.manager.user.groups.add(board)
        ApprovalPolicyStepFactory(
            item=item, position=position, approver_kind=ApproverKind.GROUP, group=board
        )
        deciders.append(member)
    for position in range(1, steps + 1):
        FormFieldFactory(item=item, key=f"f{position}", position=position)
    req = place_order(
        item, org.alice.user, answers={f"f{p}": f"Antwort {p}" for p in range(1, steps + 1)}
    )
    for position in range(1, decided + 1):
        services.request_approve(
            request_id=req.pk, user=deciders[position - 1], comment=f"ok {position}"
        )
    return req


@pytest.mark.parametrize("viewer", ["manager", "alice", "admin"])
def test_request_detail_queries_do_not_grow(
    client, org, place_order, django_assert_num_queries, viewer
):
    """Approval steps, answers and timeline entries grow; the queries do not."""
    client.force_login(getattr(org, viewer).user)
    few_req = _request_with_steps(org, place_order, steps=3, decided=2)
    many_req = _request_with_steps(org, place_order, steps=31, decided=30)
    few, response = measure(client, f"/antraege/{few_req.pk}/")
    assert response.content.decode().count("ok ") >= 2
    many, response = measure(client, f"/antraege/{many_req.pk}/")
    assert response.content.decode().count("Antwort ") == 31
    if viewer == "manager":  # the last step is the manager's: buttons are computed
        assert 'action="/antraege/' in response.content.decode()
    assert_same_count(few, many)
    with django_assert_num_queries(QUERIES["detail", viewer]):
        client.get(f"/antraege/{many_req.pk}/")


def test_the_measure_catches_an_n_plus_one(client, org, rows, monkeypatch):
    """Without the list's select_related the counts differ: the comparison above has teeth.
    (On the approvals page's joint orders, whose requests are model rows; the tables read
    values.)"""
    monkeypatch.setattr(selectors, "LIST_RELATED", ("item__category",))
    client.force_login(org.manager.user)
    rows.awaiting(3, together=True)
    few, response = measure(client, "/antraege/genehmigungen/")
    assert response.content.decode().count('name="request"') == 3  # grouped to decide
    rows.awaiting(27, together=True)
    many, response = measure(client, "/antraege/genehmigungen/")
    assert response.content.decode().count('name="request"') == 30
    with pytest.raises(AssertionError, match="queries grew with the rows"):
        assert_same_count(few, many)


def test_the_approvals_count_is_that_of_the_pending_decisions(client, org, rows):
    """Unfiltered, the approvals list takes its count from the pending decisions it was read
    from (no count query); filtered, it counts: the same figure."""
    rows.awaiting(30)
    client.force_login(org.manager.user)
    for query in ("?page=2", "?page=2&state=awaiting_approval", "?page=2&sort=-beneficiary"):
        page = client.get("/antraege/genehmigungen/" + query).content.decode()
        assert "Page 2 of 2 (30 entries)" in page
