"""Every portal page for every role, refused access included, through the real URLs."""

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from catalogue.choices import ApproverKind, Audience
from requests_app import services
from requests_app.choices import RequestState
from requests_app.models import RequestEvent, ServiceRequest, Substitution
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    CategoryFactory,
    EmployeeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
# Transition forms only: the requester's rating form (…/bewertung/) is not a transition.
# Cancelling asks first: the request page links to its confirmation page instead.
ACTION_RE = re.compile(r'(?:action|href)="/antraege/\d+/(?!bewertung/)([a-z_]+)/"')


def shown_actions(response) -> set[str]:
    return set(ACTION_RE.findall(response.content.decode()))


def row_link(req) -> str:
    return f'href="/antraege/{req.pk}/"'


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def req(org, manual_item, place_order):
    """Alice ordered a notebook for Bob; their manager has to approve it."""
    return place_order(manual_item, org.alice.user, beneficiary=org.bob)


@pytest.fixture
def substitute(org):
    return EmployeeFactory(department=org.department, user__username="vertretung")


def substitute_for(principal, substitute, start_offset=-1, end_offset=1):
    today = timezone.localdate()
    return Substitution.objects.create(
        principal=principal.user,
        substitute=substitute.user,
        starts_on=today + timedelta(days=start_offset),
        ends_on=today + timedelta(days=end_offset),
    )


@pytest.fixture
def login(client):
    def _login(user):
        user = getattr(user, "user", user)
        client.force_login(user)
        return client

    return _login


def approve(req, org):
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    return req


# --- anonymous users ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/kategorie/kategorie-x/",
        "/leistung/notebook/",
        "/leistung/notebook/bestellen/",
        "/personen/suche/?q=Nach",
        "/antraege/",
        "/antraege/genehmigungen/",
        "/antraege/bearbeitung/",
        "/antraege/vertretungen/",
        "/antraege/{pk}/",
        "/admin/",
    ],
)
def test_anonymous_is_sent_to_login(client, req, url):
    url = url.format(pk=req.pk)
    response = client.get(url)
    assert response.status_code == 302
    if url.startswith("/admin/"):
        assert response.url == "/admin/login/?next=/admin/"
    else:
        assert response.url == f"{LOGIN}?next={url.replace('?', '%3F').replace('=', '%3D')}"


@pytest.mark.parametrize("action", ["approve", "cancel", "take"])
def test_anonymous_action_post_is_sent_to_login_and_changes_nothing(client, req, action):
    events = RequestEvent.objects.count()
    response = client.post(f"/antraege/{req.pk}/{action}/", {"text": "x"})
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)
    req.refresh_from_db()
    assert req.state == RequestState.AWAITING_APPROVAL
    assert RequestEvent.objects.count() == events


def test_anonymous_may_see_login_health_and_switch_language(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert 'name="username"' in text(response)
    assert client.get("/healthz").status_code == 200
    response = client.post("/i18n/setlang/", {"language": "en", "next": LOGIN})
    assert response.status_code == 302
    assert response.url == LOGIN


# --- login ----------------------------------------------------------------------------------


def test_login_with_wrong_password_shows_error(client, org):
    response = client.post(LOGIN, {"username": "alice", "password": "falsch"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text(response)
    assert "_auth_user_id" not in client.session


def test_login_and_follow_next(client, org):
    response = client.post(LOGIN, {"username": "alice", "password": "test-pass-123"})
    assert response.status_code == 302
    assert response.url == "/start/"
    assert client.get("/antraege/").status_code == 200
    client.logout()
    response = client.post(
        LOGIN, {"username": "alice", "password": "test-pass-123", "next": "/antraege/"}
    )
    assert response.url == "/antraege/"
    client.logout()
    response = client.post(
        LOGIN, {"username": "alice", "password": "test-pass-123", "next": "https://evil.example/"}
    )
    assert response.url == "/start/"


def test_inactive_user_cannot_log_in(client, org):
    org.alice.user.is_active = False
    org.alice.user.save()
    response = client.post(LOGIN, {"username": "alice", "password": "test-pass-123"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_logout_needs_post(client, org):
    client.force_login(org.alice.user)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


# --- the page matrix: every page for every role ------------------------------------------------

PAGES = {
    "index": "/",
    "category": "/kategorie/{category}/",
    "item": "/leistung/notebook/",
    "order": "/leistung/notebook/bestellen/",
    "people": "/personen/suche/?q=Nach",
    "mine": "/antraege/",
    "approvals": "/antraege/genehmigungen/",
    "queue": "/antraege/bearbeitung/",
    "substitutions": "/antraege/vertretungen/",
    "detail": "/antraege/{pk}/",
    "login": LOGIN,
}
EVERYTHING = dict.fromkeys(PAGES, 200)
ROLES = {
    # role: expected status per page where it differs from 200
    "requester": {},
    "beneficiary": {},
    "manager": {},
    "fulfiller": {},
    "admin": {},
    "head": {"detail": 404},  # the manager's manager has no part in this request
    "outsider": {"detail": 404},
    "no_employee": {"item": 403, "order": 403, "detail": 404},
}


def user_for(role, org):
    users = {
        "requester": org.alice.user,
        "beneficiary": org.bob.user,
        "manager": org.manager.user,
        "fulfiller": org.fulfiller.user,
        "admin": org.admin.user,
        "head": org.head.user,
        "outsider": org.outsider.user,
    }
    if role == "no_employee":
        return UserFactory(username="extern")
    return users[role]


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("role", list(ROLES))
def test_page_matrix(client, org, req, manual_item, role, page):
    client.force_login(user_for(role, org))
    url = PAGES[page].format(pk=req.pk, category=manual_item.category.slug)
    response = client.get(url)
    expected = {**EVERYTHING, **ROLES[role]}[page]
    assert response.status_code == expected, (role, page)
    if expected == 200 and page != "people":
        assert "Content-Security-Policy" in response.headers
    if expected == 404:
        assert "This page does not exist, or you have no access to it." in text(response)


# --- catalogue ------------------------------------------------------------------------------


@pytest.fixture
def catalogue(org, manual_item):
    """Items in two categories: open, restricted to another department, retired."""
    hardware = manual_item.category
    software = CategoryFactory(name="Software", slug="software", position=2)
    monitor = CatalogueItemFactory(
        name="Monitor 27 Zoll", slug="monitor", category=hardware, summary="Zweiter Bildschirm"
    )
    office = CatalogueItemFactory(name="Office-Lizenz", slug="office", category=software)
    secret = CatalogueItemFactory(
        name="Fachverfahren Steuer", slug="steuer", category=software, audience=Audience.RESTRICTED
    )
    secret.allowed_departments.add(org.outsider.department)
    retired = CatalogueItemFactory(name="Faxgerät", slug="fax", category=hardware, is_active=False)
    only_restricted = CategoryFactory(name="Intern", slug="intern", position=3)
    CatalogueItemFactory(
        name="Geheimsache", slug="geheim", category=only_restricted, audience=Audience.RESTRICTED
    )
    return {
        "hardware": hardware,
        "software": software,
        "monitor": monitor,
        "office": office,
        "secret": secret,
        "retired": retired,
    }


def test_catalogue_index_shows_only_orderable_items(client, org, catalogue):
    client.force_login(org.alice.user)
    content = text(client.get("/"))
    for name in ("Notebook", "Monitor 27 Zoll", "Office-Lizenz", "Software"):
        assert name in content
    for name in ("Fachverfahren Steuer", "Faxgerät", "Geheimsache", "Intern"):
        assert name not in content
    # The other department sees its restricted item.
    client.force_login(org.outsider.user)
    assert "Fachverfahren Steuer" in text(client.get("/"))


def test_catalogue_search(client, org, catalogue):
    client.force_login(org.alice.user)
    content = text(client.get("/", {"q": "monitor"}))
    assert "Monitor 27 Zoll" in content
    assert "Notebook" not in content
    assert "Office-Lizenz" not in content
    # Summary matches too; restricted and retired items are never found.
    assert "Monitor 27 Zoll" in text(client.get("/", {"q": "Bildschirm"}))
    for query in ("Steuer", "Fax"):
        content = text(client.get("/", {"q": query}))
        assert "Fachverfahren Steuer" not in content
        assert "Faxgerät" not in content
        assert "No services match" in content


@pytest.mark.parametrize(
    "query", ["\x00", "a\x00b", "%", "_", "'; drop table x; --", "x" * 5000, "<script>"]
)
def test_catalogue_search_with_hostile_input(client, org, catalogue, query):
    client.force_login(org.alice.user)
    response = client.get("/", {"q": query})
    assert response.status_code == 200
    assert "<script>" not in text(response).split("<main", 1)[1]


def test_category_page_shows_only_orderable_items(client, org, catalogue):
    client.force_login(org.alice.user)
    content = text(client.get("/kategorie/software/"))
    assert "Office-Lizenz" in content
    assert "Fachverfahren Steuer" not in content
    content = text(client.get(f"/kategorie/{catalogue['hardware'].slug}/"))
    assert "Notebook" in content
    assert "Monitor 27 Zoll" in content
    assert "Faxgerät" not in content
    content = text(client.get("/kategorie/intern/"))
    assert "Geheimsache" not in content
    assert "No services are available to you in this category." in content
    assert client.get("/kategorie/gibt-es-nicht/").status_code == 404


def test_item_page(client, org, manual_item):
    manual_item.description = "**Wichtig**\n\n<script>alert(1)</script> [x](javascript:alert(1))"
    manual_item.save()
    client.force_login(org.alice.user)
    response = client.get("/leistung/notebook/")
    content = text(response)
    assert response.status_code == 200
    assert "<strong>Wichtig</strong>" in content
    assert "<script>alert(1)</script>" not in content
    assert "javascript:" not in content
    assert "Line manager of the beneficiary" in content
    assert "€10.00 once" in content
    assert 'href="/leistung/notebook/bestellen/"' in content


def test_item_page_refused(client, org, catalogue):
    client.force_login(org.alice.user)
    response = client.get("/leistung/steuer/")
    assert response.status_code == 403
    assert "This service is not available to you." in text(response)
    assert client.get("/leistung/fax/").status_code == 404
    assert client.get("/leistung/gibt-es-nicht/").status_code == 404


def test_order_page_shows_the_form(client, org, manual_item):
    client.force_login(org.alice.user)
    response = client.get("/leistung/notebook/bestellen/")
    content = text(response)
    assert response.status_code == 200
    assert f'name="item_version" value="{manual_item.version}"' in content
    assert 'name="beneficiary"' in content
    assert 'name="cost_centre"' in content
    assert 'name="csrfmiddlewaretoken"' in content


def test_catalogue_for_user_without_employee_record(client, org, catalogue):
    client.force_login(UserFactory(username="extern"))
    content = text(client.get("/"))
    assert "Your account has no employee record" in content
    assert "Notebook" not in content
    response = client.get("/leistung/notebook/bestellen/")
    assert response.status_code == 403
    assert "Only employees can order services." in text(response)


# --- people search --------------------------------------------------------------------------


def test_people_search_needs_login(client, org):
    response = client.get("/personen/suche/", {"q": "bob"})
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


def test_people_search_returns_active_employees_as_json(client, org):
    EmployeeFactory(department=org.department, user__last_name="Ausgeschieden", is_active=False)
    EmployeeFactory(
        department=org.department, user__last_name="Ausgezeichnet", personnel_number="az001"
    )
    client.force_login(org.alice.user)
    response = client.get("/personen/suche/", {"q": "ausge"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    results = response.json()["results"]
    assert [r["uid"] for r in results] == ["az001"]
    assert results[0]["label"].endswith("(az001)")
    assert results[0]["department"] == org.department.name
    # By personnel number, and nothing for an empty query.
    response = client.get("/personen/suche/", {"q": org.bob.personnel_number})
    assert [r["uid"] for r in response.json()["results"]] == [org.bob.personnel_number]
    assert client.get("/personen/suche/").json() == {"results": []}
    assert client.get("/personen/suche/", {"q": "   "}).json() == {"results": []}


@pytest.mark.parametrize("query", ["\x00", "Nach\x00name", "%", "x" * 1000])
def test_people_search_with_hostile_input(client, org, query):
    client.force_login(org.alice.user)
    response = client.get("/personen/suche/", {"q": query})
    assert response.status_code == 200
    assert "results" in response.json()


def test_people_search_returns_at_most_20(client, org):
    for n in range(25):
        EmployeeFactory(department=org.department, user__last_name=f"Meier{n:02d}")
    client.force_login(org.alice.user)
    assert len(client.get("/personen/suche/", {"q": "meier"}).json()["results"]) == 20


# --- list pages -------------------------------------------------------------------------------


def test_my_requests_shows_requests_placed_by_and_for_the_user(client, org, req, manual_item):
    other = services.request_create(
        requester=org.outsider.user,
        item=manual_item,
        item_version=manual_item.version,
        beneficiary=org.outsider,
        cost_centre=org.outsider.effective_cost_centre,
        answers={},
    )
    for user, sees in [
        (org.alice.user, True),  # requester
        (org.bob.user, True),  # beneficiary
        (org.manager.user, False),  # approver: not "my" request
        (org.fulfiller.user, False),
        (org.admin.user, False),
    ]:
        client.force_login(user)
        response = client.get("/antraege/")
        assert response.status_code == 200
        assert (row_link(req) in text(response)) is sees, user
        assert row_link(other) not in text(response)
    client.force_login(org.outsider.user)
    content = text(client.get("/antraege/"))
    assert row_link(other) in content
    assert row_link(req) not in content


def test_my_requests_filters_and_sorting(client, org, req, manual_item, place_order):
    cancelled = place_order(manual_item, org.alice.user)
    services.request_cancel(request_id=cancelled.pk, user=org.alice.user)
    client.force_login(org.alice.user)
    content = text(client.get("/antraege/", {"state": "awaiting_approval"}))
    assert row_link(req) in content
    assert row_link(cancelled) not in content
    content = text(client.get("/antraege/", {"state": ["cancelled", "rejected"]}))
    assert row_link(req) not in content
    assert row_link(cancelled) in content
    content = text(client.get("/antraege/", {"q": f"#{req.pk}"}))
    assert row_link(req) in content
    assert row_link(cancelled) not in content
    content = text(client.get("/antraege/", {"q": org.bob.user.last_name}))
    assert row_link(req) in content
    assert row_link(cancelled) not in content
    content = text(client.get("/antraege/", {"q": "Notebook"}))
    assert row_link(req) in content
    assert row_link(cancelled) in content
    for sort in ("id", "-id", "item", "-beneficiary", "cost_centre", "state", "-created_at"):
        response = client.get("/antraege/", {"sort": sort})
        assert response.status_code == 200
        assert row_link(req) in text(response)


@pytest.mark.parametrize(
    "params",
    [
        {"state": "bogus"},
        {"created_after": "gestern"},
        {"created_before": "2024-02-30"},
        {"category": "abc"},
        {"cost_centre": "999999"},
        {"q": "\x00"},
        {"q": "²"},
        {"q": "#99999999999999999999999"},
        {"q": "x" * 5000},
        {"sort": "bogus"},
        {"sort": "requester__password"},
        {"page": "abc"},
        {"page": "999"},
        {"page": "-1"},
    ],
    ids=lambda p: "-".join(f"{k}={v[:12]!r}" for k, v in p.items()),
)
@pytest.mark.parametrize(
    "url", ["/antraege/", "/antraege/genehmigungen/", "/antraege/bearbeitung/"]
)
def test_list_pages_survive_bad_parameters(client, org, req, url, params):
    client.force_login(org.admin.user)
    response = client.get(url, params)
    assert response.status_code == 200


def test_list_pagination(client, org, manual_item, place_order):
    requests = [place_order(manual_item, org.alice.user) for _ in range(27)]
    client.force_login(org.alice.user)
    first = text(client.get("/antraege/"))
    assert "Page 1 of 2 (27 entries)" in first
    assert sum(row_link(r) in first for r in requests) == 25
    second = text(client.get("/antraege/", {"page": "2"}))
    assert sum(row_link(r) in second for r in requests) == 2
    # Past the end shows the last page rather than an error.
    assert text(client.get("/antraege/", {"page": "99"})).count('href="/antraege/') >= 2


def test_approvals_for_me(client, org, req, substitute):
    expectations = [
        (org.manager.user, True),
        (org.alice.user, False),  # requester: four-eyes
        (org.bob.user, False),  # beneficiary: four-eyes
        (org.head.user, False),
        (org.fulfiller.user, False),
        (org.admin.user, False),
        (substitute.user, False),  # not yet substitute
    ]
    for user, sees in expectations:
        client.force_login(user)
        response = client.get("/antraege/genehmigungen/")
        assert response.status_code == 200
        assert (row_link(req) in text(response)) is sees, user.username
    substitute_for(org.manager, substitute, 0, 0)
    client.force_login(substitute.user)
    assert row_link(req) in text(client.get("/antraege/genehmigungen/"))
    approve(req, org)
    for user in (org.manager.user, substitute.user):
        client.force_login(user)
        assert row_link(req) not in text(client.get("/antraege/genehmigungen/"))


@pytest.mark.parametrize(("start", "end"), [(-5, -1), (1, 5)], ids=["past", "future"])
def test_substitute_outside_date_range_sees_nothing(client, org, req, substitute, start, end):
    substitute_for(org.manager, substitute, start, end)
    client.force_login(substitute.user)
    assert row_link(req) not in text(client.get("/antraege/genehmigungen/"))
    assert client.get(f"/antraege/{req.pk}/").status_code == 404
    response = client.post(f"/antraege/{req.pk}/approve/")
    assert response.status_code == 404
    req.refresh_from_db()
    assert req.state == RequestState.AWAITING_APPROVAL


def test_fulfilment_queue(client, org, req, place_order, group):
    other_queue = group("Telefonie")
    phone = CatalogueItemFactory(name="Diensthandy", slug="handy", service_owner=other_queue)
    phone_req = place_order(phone, org.bob.user)  # no approval steps: approved at once
    assert phone_req.state == RequestState.APPROVED
    client.force_login(org.fulfiller.user)
    content = text(client.get("/antraege/bearbeitung/"))
    assert row_link(req) not in content  # not approved yet
    assert row_link(phone_req) not in content  # another group's queue
    approve(req, org)
    content = text(client.get("/antraege/bearbeitung/"))
    assert row_link(req) in content
    assert row_link(phone_req) not in content
    client.force_login(org.admin.user)
    content = text(client.get("/antraege/bearbeitung/"))
    assert row_link(req) in content
    assert row_link(phone_req) in content
    for user in (org.alice.user, org.manager.user, org.outsider.user):
        client.force_login(user)
        response = client.get("/antraege/bearbeitung/")
        assert response.status_code == 200
        assert row_link(req) not in text(response)
    # Taken requests stay in the queue with the assignee; closed ones leave it.
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    client.force_login(org.fulfiller.user)
    content = text(client.get("/antraege/bearbeitung/"))
    assert row_link(req) in content
    assert org.fulfiller.user.last_name in content
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="erledigt")
    assert row_link(req) not in text(client.get("/antraege/bearbeitung/"))


# --- request detail: who sees it --------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("requester", 200),
        ("beneficiary", 200),
        ("manager", 200),
        ("fulfiller", 200),
        ("admin", 200),
        ("head", 404),
        ("outsider", 404),
        ("no_employee", 404),
    ],
)
def test_request_detail_visibility(client, org, req, role, status):
    client.force_login(user_for(role, org))
    response = client.get(f"/antraege/{req.pk}/")
    assert response.status_code == status
    if status == 200:
        content = text(response)
        assert f"Request #{req.pk}: Notebook" in content
        assert "Timeline" in content


@pytest.mark.parametrize(
    "role",
    [
        "requester",
        "beneficiary",
        "manager",
        "fulfiller",
        "admin",
        "head",
        "outsider",
        "no_employee",
    ],
)
def test_the_request_page_sees_what_the_visibility_query_sees(org, req, role):
    # selectors.request_visible_to decides most viewers from the row itself.
    from django.contrib.auth.models import AnonymousUser

    from requests_app import selectors

    user = user_for(role, org)
    visible = selectors.requests_visible_to(user).filter(pk=req.pk).exists()
    assert (selectors.request_visible_to(user, req.pk) is not None) is visible
    assert selectors.request_visible_to(user, req.pk + 1000) is None
    assert selectors.request_visible_to(AnonymousUser(), req.pk) is None


def test_unknown_request_is_404_even_for_admins(client, org):
    client.force_login(org.admin.user)
    assert client.get("/antraege/999999/").status_code == 404
    assert client.post("/antraege/999999/approve/").status_code == 404


def test_superuser_sees_every_request(client, org, req):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    assert client.get(f"/antraege/{req.pk}/").status_code == 200


def test_member_of_another_service_group_gets_404(client, org, req, group):
    other = EmployeeFactory(department=org.department, user__groups=[group("Telefonie")])
    client.force_login(other.user)
    assert client.get(f"/antraege/{req.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("start", "end"), [(0, 0), (-3, 0), (0, 3)], ids=["one-day", "ends", "starts"]
)
def test_substitute_in_date_range_sees_and_may_decide(client, org, req, substitute, start, end):
    substitute_for(org.manager, substitute, start, end)
    client.force_login(substitute.user)
    response = client.get(f"/antraege/{req.pk}/")
    assert response.status_code == 200
    assert shown_actions(response) == {"approve", "reject"}
    assert "You decide as substitute on behalf of" in text(response)
    response = client.post(f"/antraege/{req.pk}/approve/", {"text": "in Vertretung"})
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    content = text(client.get(f"/antraege/{req.pk}/"))
    assert "on behalf of" in content
    assert org.manager.user.get_full_name() in content


def test_past_approvers_keep_seeing_the_request(client, org, place_order, substitute, group):
    """Line manager, then a security group: earlier deciders still see it later."""
    security = group("IT-Sicherheit")
    officer = EmployeeFactory(department=org.department, user__groups=[security])
    item = CatalogueItemFactory(slug="vpn", service_owner=org.service_desk)
    ApprovalPolicyStepFactory(item=item, position=1, approver_kind=ApproverKind.LINE_MANAGER)
    ApprovalPolicyStepFactory(
        item=item, position=2, approver_kind=ApproverKind.GROUP, group=security
    )
    req = place_order(item, org.alice.user)
    # The future approver (the group) already sees it, but cannot act yet.
    client.force_login(officer.user)
    response = client.get(f"/antraege/{req.pk}/")
    assert response.status_code == 200
    assert shown_actions(response) == set()
    # The substitute decides for the manager; then the substitution is removed.
    substitution = substitute_for(org.manager, substitute, 0, 0)
    client.force_login(substitute.user)
    assert client.post(f"/antraege/{req.pk}/approve/").status_code == 302
    substitution.delete()
    for user in (org.manager.user, substitute.user):
        client.force_login(user)
        response = client.get(f"/antraege/{req.pk}/")
        assert response.status_code == 200, user.username
        assert shown_actions(response) == set()
    client.force_login(officer.user)
    response = client.get(f"/antraege/{req.pk}/")
    assert shown_actions(response) == {"approve", "reject"}


def test_detail_shows_answers_timeline_and_escapes(client, org, place_order, manual_item):
    req = place_order(
        manual_item,
        org.alice.user,
        answers={"x": "<script>alert(1)</script>"},
        justification="<b>bitte</b>",
    )
    client.force_login(org.alice.user)
    content = text(client.get(f"/antraege/{req.pk}/"))
    assert "<b>bitte</b>" not in content
    assert "&lt;b&gt;bitte&lt;/b&gt;" in content
    assert "Approval started" in content
    assert "Line manager of the beneficiary" in content
    assert org.manager.user.get_full_name() in content


# --- request detail: exactly the buttons this user may use ---------------------------------------

BUTTONS = {
    "approve": "Approve",
    "reject": "Reject",
    "cancel": "Cancel request",
    "take": "Take into fulfilment",
    "complete": "Mark as fulfilled",
    "fail": "Mark as failed",
    "reopen": "Reopen",
}


def move_to(req, org, state):
    if state in ("approved", "in_fulfilment", "fulfilled", "failed"):
        approve(req, org)
    if state in ("in_fulfilment", "fulfilled"):
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
    if state == "fulfilled":
        services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    if state == "failed":
        services.request_fail(request_id=req.pk, user=org.fulfiller.user, reason="defekt")
    if state == "rejected":
        services.request_reject(request_id=req.pk, user=org.manager.user, comment="nein")
    if state == "cancelled":
        services.request_cancel(request_id=req.pk, user=org.alice.user)
    req.refresh_from_db()
    assert req.state == state
    return req


@pytest.mark.parametrize(
    ("state", "role", "actions"),
    # "kommentar" (a comment: answers a hold, and counts as the fulfillers' first response)
    # on open requests for the people involved; "anhalten" (on hold) for fulfillers.
    [
        ("awaiting_approval", "requester", {"cancel", "kommentar"}),
        ("awaiting_approval", "beneficiary", {"kommentar"}),
        ("awaiting_approval", "manager", {"approve", "reject"}),
        ("awaiting_approval", "fulfiller", set()),
        ("awaiting_approval", "admin", {"cancel"}),
        ("approved", "requester", {"cancel", "kommentar"}),
        ("approved", "manager", set()),
        ("approved", "fulfiller", {"take", "fail", "kommentar"}),
        ("approved", "admin", {"take", "fail", "cancel", "kommentar"}),
        ("in_fulfilment", "requester", {"kommentar"}),
        ("in_fulfilment", "fulfiller", {"complete", "fail", "kommentar", "anhalten"}),
        ("in_fulfilment", "admin", {"complete", "fail", "kommentar", "anhalten"}),
        ("failed", "fulfiller", set()),
        ("failed", "admin", {"reopen"}),
        ("failed", "requester", set()),
        ("fulfilled", "requester", set()),
        ("fulfilled", "fulfiller", set()),
        ("fulfilled", "admin", set()),
        ("rejected", "requester", set()),
        ("rejected", "manager", set()),
        ("cancelled", "requester", set()),
        ("cancelled", "admin", set()),
    ],
)
def test_detail_shows_exactly_the_allowed_buttons(client, org, req, state, role, actions):
    move_to(req, org, state)
    client.force_login(user_for(role, org))
    response = client.get(f"/antraege/{req.pk}/")
    assert response.status_code == 200
    assert shown_actions(response) == actions
    content = text(response)
    for name, label in BUTTONS.items():
        shown = f">{label}</button>" in content or f">{label}…</a>" in content
        assert shown is (name in actions), label
    # The comment form has a section of its own; "Aktionen" is for the state's actions.
    assert ('id="actions-heading"' in content) is bool(actions - {"kommentar"})


# --- actions ------------------------------------------------------------------------------------


def assert_unchanged(req, state, events):
    req.refresh_from_db()
    assert req.state == state
    assert RequestEvent.objects.filter(request=req).count() == events


@pytest.mark.parametrize(
    ("role", "action", "status"),
    [
        ("requester", "approve", 403),  # four-eyes
        ("requester", "reject", 403),
        ("beneficiary", "approve", 403),
        ("beneficiary", "cancel", 403),
        ("manager", "cancel", 403),
        ("fulfiller", "approve", 403),
        ("fulfiller", "cancel", 403),
        ("admin", "approve", 403),
        ("manager", "submit", 403),  # internal transitions are no actions
        ("manager", "start_approval", 403),
        ("manager", "delete", 403),
        ("head", "approve", 404),
        ("outsider", "cancel", 404),
        ("no_employee", "approve", 404),
    ],
)
def test_action_not_allowed(client, org, req, role, action, status):
    events = req.events.count()
    client.force_login(user_for(role, org))
    response = client.post(f"/antraege/{req.pk}/{action}/", {"text": "Begründung"})
    assert response.status_code == status
    if status == 403:
        assert "Not allowed" in text(response)
    assert_unchanged(req, RequestState.AWAITING_APPROVAL, events)


def test_refused_action_tells_why(client, org, req):
    client.force_login(org.manager.user)
    response = client.post(f"/antraege/{req.pk}/cancel/")
    assert response.status_code == 403
    assert "You may not do this on this request." in text(response)
    client.force_login(org.alice.user)
    response = client.post(f"/antraege/{req.pk}/approve/")
    assert "You may not decide on this request." in text(response)


@pytest.mark.parametrize(
    ("state", "role", "action"),
    [
        ("approved", "manager", "take"),
        ("approved", "requester", "take"),
        ("approved", "beneficiary", "cancel"),
        ("in_fulfilment", "requester", "complete"),
        ("in_fulfilment", "requester", "fail"),
        ("failed", "fulfiller", "reopen"),
        # Not possible in this state either: still 403, the role may never do it.
        ("awaiting_approval", "requester", "complete"),
        ("awaiting_approval", "manager", "take"),
        ("approved", "requester", "reopen"),
        ("in_fulfilment", "manager", "cancel"),
        ("fulfilled", "beneficiary", "fail"),
    ],
)
def test_action_of_another_role_is_403(client, org, req, state, role, action):
    move_to(req, org, state)
    events = req.events.count()
    client.force_login(user_for(role, org))
    response = client.post(f"/antraege/{req.pk}/{action}/", {"text": "x"})
    assert response.status_code == 403
    assert_unchanged(req, state, events)


def test_action_url_refuses_get(client, org, req):
    client.force_login(org.manager.user)
    assert client.get(f"/antraege/{req.pk}/approve/").status_code == 405
    assert_unchanged(req, RequestState.AWAITING_APPROVAL, 3)


def test_allowed_actions_through_the_ui(client, org, req):
    client.force_login(org.manager.user)
    response = client.post(f"/antraege/{req.pk}/approve/", {"text": "passt"}, follow=True)
    assert response.redirect_chain == [(f"/antraege/{req.pk}/", 302)]
    assert "You approved the request." in text(response)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert req.approvals.get().comment == "passt"
    client.force_login(org.fulfiller.user)
    assert client.post(f"/antraege/{req.pk}/take/").status_code == 302
    response = client.post(f"/antraege/{req.pk}/complete/", {"text": "ausgeliefert"}, follow=True)
    assert "The request is fulfilled." in text(response)
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    assert req.resolution_note == "ausgeliefert"
    content = text(response)
    for label in ("Created", "Submitted", "Approval started", "Approved", "Fulfilled"):
        assert f"<strong>{label}</strong>" in content


def test_reject_needs_a_reason(client, org, req):
    client.force_login(org.manager.user)
    response = client.post(f"/antraege/{req.pk}/reject/", {"text": "  "}, follow=True)
    assert response.status_code == 200
    assert "Please give a reason for the rejection." in text(response)
    assert_unchanged(req, RequestState.AWAITING_APPROVAL, 3)
    client.post(f"/antraege/{req.pk}/reject/", {"text": "Nicht budgetiert"})
    req.refresh_from_db()
    assert req.state == RequestState.REJECTED


def test_fail_needs_a_reason_and_admin_reopens(client, org, req):
    approve(req, org)
    client.force_login(org.fulfiller.user)
    response = client.post(f"/antraege/{req.pk}/fail/", {"text": ""}, follow=True)
    assert "Please say why the request failed." in text(response)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    client.post(f"/antraege/{req.pk}/fail/", {"text": "Lieferant insolvent"})
    req.refresh_from_db()
    assert req.state == RequestState.FAILED
    client.force_login(org.admin.user)
    client.post(f"/antraege/{req.pk}/reopen/", {"text": "neuer Lieferant"})
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_requester_cancels(client, org, req):
    client.force_login(org.alice.user)
    response = client.post(f"/antraege/{req.pk}/cancel/", {"text": "doch nicht"}, follow=True)
    assert "The request is cancelled." in text(response)
    req.refresh_from_db()
    assert req.state == RequestState.CANCELLED


@pytest.mark.parametrize("bad_text", ["a\x00b", "x" * 4001], ids=["nul", "too-long"])
def test_action_text_is_checked(client, org, req, bad_text):
    client.force_login(org.manager.user)
    response = client.post(f"/antraege/{req.pk}/reject/", {"text": bad_text}, follow=True)
    assert response.status_code == 200
    assert "The text is too long or contains invalid characters." in text(response)
    assert_unchanged(req, RequestState.AWAITING_APPROVAL, 3)


# --- concurrency from the UI ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (("manager", "approve"), ("manager", "reject"), "already been decided"),
        (("manager", "approve"), ("manager", "approve"), "already been decided"),
        (("manager", "reject"), ("manager", "approve"), "already been decided"),
        (("requester", "cancel"), ("manager", "approve"), "already been decided"),
        (("manager", "reject"), ("requester", "cancel"), "This action is not possible"),
        (("requester", "cancel"), ("requester", "cancel"), "This action is not possible"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else None,
)
def test_second_decision_gets_a_clear_message(client, org, req, first, second, message):
    """Both users loaded the page while the request waited; the later POST loses politely."""
    first_client, second_client = Client(), Client()
    first_client.force_login(user_for(first[0], org))
    second_client.force_login(user_for(second[0], org))
    # Both see the button they are about to press.
    assert first[1] in shown_actions(first_client.get(f"/antraege/{req.pk}/"))
    assert second[1] in shown_actions(second_client.get(f"/antraege/{req.pk}/"))
    response = first_client.post(f"/antraege/{req.pk}/{first[1]}/", {"text": "erster"})
    assert response.status_code == 302
    req.refresh_from_db()
    state, events = req.state, req.events.count()
    response = second_client.post(f"/antraege/{req.pk}/{second[1]}/", {"text": "zweiter"})
    assert response.status_code == 302
    assert response.url == f"/antraege/{req.pk}/"
    page = second_client.get(response.url)
    content = text(page)
    assert message in content
    assert 'class="message error"' in content
    assert_unchanged(req, state, events)


@pytest.mark.parametrize(
    ("state", "role", "action", "message"),
    [
        ("in_fulfilment", "requester", "cancel", "“In fulfilment”"),
        ("awaiting_approval", "fulfiller", "take", "“Awaiting approval”"),
        ("fulfilled", "admin", "reopen", "“Fulfilled”"),
        ("approved", "fulfiller", "complete", "“Approved”"),
    ],
)
def test_action_of_the_right_role_in_the_wrong_state_gets_a_message(
    client, org, req, state, role, action, message
):
    """The page was stale: the role may do this, just not any more; a message, not 403."""
    move_to(req, org, state)
    events = req.events.count()
    client.force_login(user_for(role, org))
    response = client.post(f"/antraege/{req.pk}/{action}/", {"text": "x"}, follow=True)
    assert response.redirect_chain == [(f"/antraege/{req.pk}/", 302)]
    assert f"This action is not possible while the request is {message}." in text(response)
    assert_unchanged(req, state, events)


def test_second_take_gets_a_clear_message(client, org, req):
    approve(req, org)
    client.force_login(org.fulfiller.user)
    assert client.post(f"/antraege/{req.pk}/take/").status_code == 302
    client.force_login(org.admin.user)
    response = client.post(f"/antraege/{req.pk}/take/", follow=True)
    assert response.status_code == 200
    assert "This action is not possible while the request is “In fulfilment”." in text(response)
    req.refresh_from_db()
    assert req.assignee == org.fulfiller.user


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "pair", [("approve", "reject"), ("approve", "cancel")], ids=["approve-reject", "approve-cancel"]
)
def test_simultaneous_posts_one_wins_other_gets_message(org, manual_item, place_order, pair):
    """Two browsers post at the same moment on the real database: one wins, never a 500."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    actors = {"approve": org.manager.user, "reject": org.manager.user, "cancel": org.alice.user}
    seen = req.state
    barrier = threading.Barrier(len(pair))
    results = {}

    def post(action):
        browser = Client()
        browser.force_login(actors[action])
        try:
            barrier.wait(timeout=10)
            # The detail page's forms send the state the user saw.
            response = browser.post(
                f"/antraege/{req.pk}/{action}/", {"text": "gleichzeitig", "state": seen}
            )
            results[action] = (response.status_code, text(browser.get(response.url)))
        except Exception as exc:  # a server error is reported as 500 below
            results[action] = (500, repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(action,)) for action in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert {status for status, _page in results.values()} == {302}, results
    done = {a for a in pair if 'class="message success"' in results[a][1]}
    refused = {a for a in pair if 'class="message error"' in results[a][1]}
    assert done | refused == set(pair)
    assert not done & refused
    # The outcome is that of one order: what is recorded is exactly what succeeded,
    # and the state is the one the later success left behind.
    kinds = list(req.events.filter(kind__in=pair).order_by("id").values_list("kind", flat=True))
    assert sorted(kinds) == sorted(done)
    req.refresh_from_db()
    expected = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}
    assert req.state == expected[kinds[-1]]
    assert len(done) == 1  # exactly one wins; the other is told the request moved on


# --- CSRF and security headers ------------------------------------------------------------------


def test_post_without_csrf_token_is_refused(org, req, manual_item):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(org.manager.user)
    events = RequestEvent.objects.count()
    count = ServiceRequest.objects.count()
    assert browser.post(f"/antraege/{req.pk}/approve/", {"text": "ok"}).status_code == 403
    assert (
        browser.post(
            "/leistung/notebook/bestellen/", {"item_version": str(manual_item.version)}
        ).status_code
        == 403
    )
    assert (
        browser.post(
            "/antraege/vertretungen/",
            {
                "substitute": org.bob.personnel_number,
                "starts_on": "2030-01-01",
                "ends_on": "2030-01-02",
            },
        ).status_code
        == 403
    )
    assert RequestEvent.objects.count() == events
    assert ServiceRequest.objects.count() == count
    assert not Substitution.objects.exists()
    req.refresh_from_db()
    assert req.state == RequestState.AWAITING_APPROVAL
    # With the token from the page the same post works.
    browser.get(f"/antraege/{req.pk}/")
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        f"/antraege/{req.pk}/approve/", {"text": "ok", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_login_post_without_csrf_token_is_refused(org):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(LOGIN, {"username": "alice", "password": "test-pass-123"})
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/", 200),
        ("/leistung/notebook/", 200),
        ("/leistung/notebook/bestellen/", 200),
        ("/antraege/", 200),
        ("/antraege/{pk}/", 200),
        ("/antraege/vertretungen/", 200),
        ("/antraege/999999/", 404),
        (LOGIN, 200),
    ],
)
def test_security_headers(client, org, req, url, status):
    client.force_login(org.alice.user)
    response = client.get(url.format(pk=req.pk))
    assert response.status_code == status
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_security_headers_on_403(client, org, catalogue):
    client.force_login(org.alice.user)
    response = client.get("/leistung/steuer/")
    assert response.status_code == 403
    assert "Content-Security-Policy" in response.headers


# --- language -------------------------------------------------------------------------------------


@pytest.fixture
def german(settings):
    settings.LANGUAGE_CODE = "de"


@pytest.mark.usefixtures("german")
def test_german_is_the_default(client, org):
    client.force_login(org.alice.user)
    response = client.get("/")
    assert response.status_code == 200
    assert '<html lang="de" ' in text(response)
    assert response.headers["Content-Language"] == "de"
    assert "Meine Anträge" in text(response)
    assert "My requests" not in text(response)


@pytest.mark.usefixtures("german")
def test_german_error_messages_on_the_order_form(client, org, manual_item):
    client.force_login(org.alice.user)
    response = client.post("/leistung/notebook/bestellen/", {"item_version": "0"})
    assert response.status_code == 400
    assert "Meine Anträge" in text(response)
    assert "This service was changed" not in text(response)


@pytest.mark.usefixtures("german")
def test_english_is_selectable(client, org):
    client.force_login(org.alice.user)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/antraege/"})
    assert response.status_code == 302
    assert response.url == "/antraege/"
    response = client.get("/antraege/")
    assert '<html lang="en" ' in text(response)
    assert "My requests" in text(response)
    assert "Meine Anträge" not in text(response)
    assert response.headers["Content-Language"] == "en"
    # And back again.
    client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    response = client.get("/")
    assert '<html lang="de" ' in text(response)
    assert "Meine Anträge" in text(response)


@pytest.mark.usefixtures("german")
def test_language_switch_ignores_unknown_language_and_foreign_next(client, org):
    client.force_login(org.alice.user)
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert not response.url.startswith("https://evil.example")
    assert '<html lang="de" ' in text(client.get("/"))


# --- substitutes page ----------------------------------------------------------------------------


def days(n):
    return (timezone.localdate() + timedelta(days=n)).isoformat()


def test_substitutions_page_lists_both_directions(client, org, substitute):
    substitute_for(org.manager, substitute, 0, 3)
    client.force_login(org.manager.user)
    content = text(client.get("/antraege/vertretungen/"))
    assert substitute.user.get_full_name() in content
    client.force_login(substitute.user)
    content = text(client.get("/antraege/vertretungen/"))
    assert org.manager.user.get_full_name() in content
    assert "You have named no substitute." in content


def test_create_substitution(client, org):
    client.force_login(org.manager.user)
    response = client.post(
        "/antraege/vertretungen/",
        {"substitute": org.bob.personnel_number, "starts_on": days(0), "ends_on": days(7)},
        follow=True,
    )
    assert response.redirect_chain == [("/antraege/vertretungen/", 302)]
    assert "Substitute saved." in text(response)
    substitution = Substitution.objects.get()
    assert substitution.principal == org.manager.user
    assert substitution.substitute == org.bob.user
    assert substitution.ends_on - substitution.starts_on == timedelta(days=7)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"substitute": "self", "starts_on": days(0), "ends_on": days(1)},
            "You cannot be your own substitute.",
        ),
        (
            {"starts_on": days(3), "ends_on": days(1)},
            "The end date must not be before the start date.",
        ),
        ({"starts_on": "2030-02-30", "ends_on": days(1)}, "Enter a valid date."),
        ({"starts_on": days(0), "ends_on": "bald"}, "Enter a valid date."),
        ({"starts_on": "", "ends_on": days(1)}, "This field is required."),
        ({"substitute": "", "starts_on": days(0), "ends_on": days(1)}, "This field is required."),
        ({"substitute": "p99999"}, "No active employee with the personnel number “p99999”."),
        ({"substitute": "inaktiv"}, "No active employee with the personnel number “inaktiv”."),
        ({"substitute": "a\x00b"}, "Null characters are not allowed."),
    ],
    ids=[
        "self",
        "ends-before-start",
        "impossible-start",
        "bad-end",
        "start-missing",
        "substitute-missing",
        "unknown",
        "inactive",
        "nul",
    ],
)
def test_create_substitution_with_bad_input(client, org, data, message):
    EmployeeFactory(department=org.department, personnel_number="inaktiv", is_active=False)
    posted = {"substitute": org.bob.personnel_number, "starts_on": days(0), "ends_on": days(1)}
    posted.update(data)
    if posted["substitute"] == "self":
        posted["substitute"] = f"Chef ({org.manager.personnel_number})"
    client.force_login(org.manager.user)
    response = client.post("/antraege/vertretungen/", posted)
    assert response.status_code == 200
    assert message in text(response)
    assert not Substitution.objects.exists()


def test_delete_only_own_substitution(client, org, substitute):
    mine = substitute_for(org.manager, substitute)
    theirs = substitute_for(org.head, substitute)
    client.force_login(org.manager.user)
    response = client.post(f"/antraege/vertretungen/{theirs.pk}/loeschen/")
    assert response.status_code == 403
    assert "You can only remove your own substitutes." in text(response)
    assert Substitution.objects.filter(pk=theirs.pk).exists()
    # The substitute cannot remove it either, and GET never deletes.
    client.force_login(substitute.user)
    assert client.post(f"/antraege/vertretungen/{mine.pk}/loeschen/").status_code == 403
    client.force_login(org.manager.user)
    assert client.get(f"/antraege/vertretungen/{mine.pk}/loeschen/").status_code == 405
    assert client.post("/antraege/vertretungen/999999/loeschen/").status_code == 403
    assert Substitution.objects.count() == 2
    response = client.post(f"/antraege/vertretungen/{mine.pk}/loeschen/", follow=True)
    assert "Substitute removed." in text(response)
    assert list(Substitution.objects.all()) == [theirs]
