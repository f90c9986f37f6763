"""Decision support for approvers (issue 16): figures counted in PostgreSQL on constructed
data, shown only to whoever may decide, withheld for small peer groups, switched off by
setting, and a fixed number of queries however many rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assist import selectors
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services
from requests_app.models import Approval, ServiceRequest
from tests.factories import DepartmentFactory, EmployeeFactory, request_row
from tests.test_query_counts import assert_same_count, measure

pytestmark = pytest.mark.django_db


class Team:
    """A department of people reporting to the org's manager, some holding the item."""

    def __init__(self, org, item, place_order):
        self.org = org
        self.item = item
        self.place_order = place_order
        self.department = DepartmentFactory(name="Bürgeramt", cost_centre=org.cost_centre)

    def person(self, job_title=""):
        return EmployeeFactory(
            department=self.department, manager=self.org.manager, job_title=job_title
        )

    def holder(self, job_title="", state=EntitlementState.ACTIVE, employee=None):
        employee = employee or self.person(job_title)
        now = timezone.now()
        req = request_row(self.item, employee, submitted=now, approved=now, closed=now)
        req.save()
        Entitlement.objects.create(request=req, holder=employee, item=self.item, state=state)
        return employee

    def decided(self, *, approve, comment="", days_ago=0):
        req = self.place_order(self.item, self.person().user)
        decide = services.request_approve if approve else services.request_reject
        decide(request_id=req.pk, user=self.org.manager.user, comment=comment)
        if days_ago:
            when = timezone.now() - timedelta(days=days_ago)
            ServiceRequest.objects.filter(pk=req.pk).update(approved_at=when, closed_at=when)
            Approval.objects.filter(request=req).update(decided_at=when)
        return req


@pytest.fixture
def team(org, manual_item, place_order):
    return Team(org, manual_item, place_order)


def detail(client, req):
    return client.get(f"/antraege/{req.pk}/").content.decode()


def test_peer_and_history_figures_on_constructed_data(client, org, team):
    for _ in range(3):
        team.holder()
    for _ in range(4):
        team.person()
    # 7 peers besides the beneficiary… minus the ones created by decided() below (they count too)
    team.decided(approve=True)
    team.decided(approve=True)
    team.decided(approve=False, comment="Kein dienstlicher Bedarf.")
    team.decided(approve=False, comment="  Kein dienstlicher Bedarf. ")
    team.decided(approve=False, comment="Bitte über die Teamleitung bestellen.")
    team.decided(approve=False, comment="x" * 200)
    team.decided(approve=False, comment="Zu alt.", days_ago=400)
    team.decided(approve=True, days_ago=400)
    beneficiary = team.person()
    former = team.holder(employee=beneficiary, state=EntitlementState.REVOKED)
    assert former == beneficiary
    req = team.place_order(team.item, beneficiary.user)

    support = selectors.decision_support(req)
    # Peers: 3 holders + 4 others + 8 from decided() (none holding) = 15; beneficiary excluded.
    assert (support.peers.size, support.peers.holders) == (15, 3)
    assert support.peers.job_title == ""
    assert not support.peers.outlier  # 3/15 = 20 %
    assert (support.approved, support.rejected) == (2, 4)
    assert support.reasons[0] == ("Kein dienstlicher Bedarf.", 2)
    assert len(support.reasons) == 3
    assert all(len(reason) <= selectors.REASON_LENGTH for reason, _n in support.reasons)
    assert "Zu alt." not in [reason for reason, _n in support.reasons]
    assert support.held_before is True
    assert support.licences_free is None

    client.force_login(org.manager.user)
    page = detail(client, req)
    assert "Entscheidungshilfe" in page or "Decision support" in page
    assert "3 von 15" in page or "3 of 15" in page


def test_job_title_group_used_when_big_enough(team, settings):
    settings.ASSIST_MIN_PEER_GROUP = 3
    for _ in range(3):
        team.holder(job_title="Sachbearbeitung")
    team.person(job_title="Sachbearbeitung")
    for _ in range(5):
        team.person(job_title="Leitung")
    beneficiary = team.person(job_title="Sachbearbeitung")
    req = team.place_order(team.item, beneficiary.user)
    peers = selectors.decision_support(req).peers
    assert (peers.job_title, peers.size, peers.holders) == ("Sachbearbeitung", 4, 3)
    # Too few with her title: the whole department is compared instead.
    settings.ASSIST_MIN_PEER_GROUP = 5
    peers = selectors.decision_support(req).peers
    assert (peers.job_title, peers.size, peers.holders) == ("", 9, 3)


@pytest.mark.parametrize(("peers", "withheld"), [(4, True), (5, False)])
def test_minimum_group_size_boundary(client, org, team, peers, withheld):
    team.holder()
    for _ in range(peers - 1):
        team.person()
    req = team.place_order(team.item, team.person().user)
    support = selectors.decision_support(req).peers
    assert support.too_few is withheld
    if withheld:
        assert (support.size, support.holders) == (0, 0)
    client.force_login(org.manager.user)
    client.cookies["django_language"] = "de"
    page = detail(client, req)
    assert ("Zu wenige Vergleichspersonen" in page) is withheld
    assert ("1 von 5 Kolleginnen und Kollegen" in page) is not withheld


@pytest.mark.parametrize(("holders", "outlier"), [(0, True), (1, True), (2, False)])
def test_outlier_flag_below_ten_percent(team, holders, outlier):
    for _ in range(holders):
        team.holder()
    for _ in range(11 - holders):
        team.person()
    req = team.place_order(team.item, team.person().user)
    peers = selectors.decision_support(req).peers
    assert peers.size == 11
    # 1 of 11 is 9 %: below 10 %; 2 of 11 is 18 %.
    assert peers.outlier is outlier


def test_licence_pool_shown(client, org, team):
    team.item.licence_pool_size = 4
    team.item.save()
    team.holder()
    req = team.place_order(team.item, team.person().user)
    assert selectors.decision_support(req).licences_free == 3


def test_only_those_who_may_decide_see_it(client, org, team):
    for _ in range(5):
        team.holder()
    beneficiary = team.person()
    req = team.place_order(team.item, beneficiary.user)
    client.force_login(org.manager.user)
    assert 'id="assist-heading"' in detail(client, req)
    for user in (beneficiary.user, org.admin.user, org.head.user):
        client.force_login(user)
        response = client.get(f"/antraege/{req.pk}/")
        assert 'id="assist-heading"' not in response.content.decode()
    # Once decided nobody sees it.
    services.request_approve(request_id=req.pk, user=org.manager.user)
    client.force_login(org.manager.user)
    assert 'id="assist-heading"' not in detail(client, req)


@pytest.mark.parametrize("switch", ["ASSIST_ENABLED", "ASSIST_DECISION_SUPPORT"])
def test_switched_off_by_setting(client, org, team, settings, switch):
    for _ in range(5):
        team.holder()
    req = team.place_order(team.item, team.person().user)
    client.force_login(org.manager.user)
    assert 'id="assist-heading"' in detail(client, req)
    assert 'id="assist-list-heading"' in client.get("/antraege/genehmigungen/").content.decode()
    setattr(settings, switch, False)
    assert 'id="assist-heading"' not in detail(client, req)
    assert 'id="assist-list-heading"' not in client.get("/antraege/genehmigungen/").content.decode()


def test_approvals_list_figures_and_constant_queries(client, org, team):
    for _ in range(5):
        team.holder()
    client.force_login(org.manager.user)
    reqs = [team.place_order(team.item, team.person().user) for _ in range(3)]
    few, response = measure(client, "/antraege/genehmigungen/")
    page = response.content.decode()
    assert page.count('class="assist-row"') == 3
    reqs += [team.place_order(team.item, team.person().user) for _ in range(27)]
    many, response = measure(client, "/antraege/genehmigungen/")
    assert response.content.decode().count('class="assist-row"') == 25  # one page
    assert_same_count(few, many)
    assert len(reqs) == 30


def test_detail_queries_constant_with_history(client, org, team, django_assert_num_queries):
    for _ in range(5):
        team.holder()
    req = team.place_order(team.item, team.person().user)
    client.force_login(org.manager.user)
    few, _response = measure(client, f"/antraege/{req.pk}/")
    for i in range(20):
        team.holder()
        team.decided(approve=bool(i % 2), comment=f"Grund {i % 5}")
    many, response = measure(client, f"/antraege/{req.pk}/")
    assert "Grund" in response.content.decode()
    assert_same_count(few, many)


# --- recommended for you ---------------------------------------------------------------------


def test_recommendations_most_held_first_with_exclusions(client, org, team, settings):
    from catalogue.choices import Audience
    from tests.factories import CatalogueItemFactory

    me = team.person()
    peers = [team.person() for _ in range(9)]
    items = {
        name: CatalogueItemFactory(name=name, slug=name.lower())
        for name in ("OKEWO", "VPN", "Drucker", "Selten", "Schon", "Offen", "Gesperrt")
    }
    items["Gesperrt"].audience = Audience.RESTRICTED
    items["Gesperrt"].save()
    counts = {"OKEWO": 8, "VPN": 6, "Drucker": 5, "Selten": 4, "Schon": 9, "Offen": 9}
    counts["Gesperrt"] = 9
    now = timezone.now()
    for name, count in counts.items():
        for peer in peers[:count]:
            req = request_row(items[name], peer, submitted=now, approved=now, closed=now)
            req.save()
            Entitlement.objects.create(request=req, holder=peer, item=items[name])
    mine = request_row(items["Schon"], me, submitted=now, approved=now, closed=now)
    mine.save()
    Entitlement.objects.create(request=mine, holder=me, item=items["Schon"])
    team.place_order(items["Offen"], me.user)  # open request: not suggested again

    found = selectors.recommendations_for(me)
    assert [(r.item.name, r.holders, r.peers.size) for r in found] == [
        ("OKEWO", 8, 9),
        ("VPN", 6, 9),
        ("Drucker", 5, 9),
    ]
    settings.ASSIST_RECOMMEND_SHARE = 0.7
    assert [r.item.name for r in selectors.recommendations_for(me)] == ["OKEWO"]

    client.force_login(me.user)
    client.cookies["django_language"] = "de"
    page = client.get("/").content.decode()
    assert 'id="assist-recommended-heading"' in page
    assert "8 von 9 Kolleginnen und Kollegen in Bürgeramt haben sie" in page or ("8 von 9" in page)
    settings.ASSIST_RECOMMENDATIONS = False
    assert 'id="assist-recommended-heading"' not in client.get("/").content.decode()


@pytest.mark.parametrize(("size", "shown"), [(4, False), (5, True)])
def test_recommendations_need_a_big_enough_group(team, size, shown):
    from tests.factories import CatalogueItemFactory

    me = team.person()
    item = CatalogueItemFactory()
    now = timezone.now()
    for _ in range(size):
        peer = team.person()
        req = request_row(item, peer, submitted=now, approved=now, closed=now)
        req.save()
        Entitlement.objects.create(request=req, holder=peer, item=item)
    assert bool(selectors.recommendations_for(me)) is shown


def test_order_page_recommends_for_the_colleague(client, org, team):
    from tests.factories import CatalogueItemFactory

    colleague = team.person()
    item = CatalogueItemFactory(name="Fachverfahren OK.EWO", slug="okewo")
    now = timezone.now()
    for _ in range(5):
        peer = team.person()
        req = request_row(item, peer, submitted=now, approved=now, closed=now)
        req.save()
        Entitlement.objects.create(request=req, holder=peer, item=item)
    client.force_login(org.alice.user)
    # A bound form with an error (a justification too long) names the colleague.
    response = client.post(
        f"/leistung/{team.item.slug}/bestellen/",
        {
            "item_version": team.item.version,
            "beneficiary": colleague.personnel_number,
            "justification": "x" * 2001,
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="assist-recommended-heading"' in page
    assert "Fachverfahren OK.EWO" in page


def test_joiner_bundle_and_order_page_recommend_for_the_colleague_named_in_the_address(
    client, org, team
):
    """The joiner mail links to the bundle with ?fuer=; the order page takes it too: the
    colleague's recommendations are there before anything is sent."""
    from catalogue.models import Bundle, BundleItem
    from tests.factories import CatalogueItemFactory

    newcomer = team.person()
    item = CatalogueItemFactory(name="Fachverfahren OK.EWO", slug="okewo")
    now = timezone.now()
    for _ in range(5):
        peer = team.person()
        req = request_row(item, peer, submitted=now, approved=now, closed=now)
        req.save()
        Entitlement.objects.create(request=req, holder=peer, item=item)
    bundle = Bundle.objects.create(name="Neue Mitarbeiterin", slug="neu")
    BundleItem.objects.create(bundle=bundle, item=team.item, selected=True)
    client.force_login(org.manager.user)
    number = newcomer.personnel_number
    for url in (
        f"/paket/neu/bestellen/?fuer={number}",
        f"/leistung/okewo/bestellen/?fuer={number}",
    ):
        page = client.get(url).content.decode()
        assert 'id="assist-recommended-heading"' in page, url
        assert "Fachverfahren OK.EWO" in page
    # Nobody named, or an unknown number: nothing for a colleague.
    for query in ("", "?fuer=unknown", "?fuer=" + "x" * 80):
        page = client.get(f"/paket/neu/bestellen/{query}").content.decode()
        assert 'id="assist-recommended-heading"' not in page


def recommended_section(client) -> str:
    page = client.get("/").content.decode()
    if 'id="assist-recommended-heading"' not in page:
        return ""
    start = page.index('<section aria-labelledby="assist-recommended-heading"')
    return page[start : page.index("</section>", start)]


def test_recommendations_kept_in_the_session_and_dropped_on_post(client, org, team, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from itportal.session_copies import RECOMMENDATIONS

    settings.PORTAL_NAV_COUNTS_SECONDS = 30
    me = team.person()
    for _ in range(6):
        team.holder()
    client.force_login(me.user)
    first = recommended_section(client)
    assert team.item.name in first
    assert client.session[RECOMMENDATIONS]["employee"] == me.pk
    with CaptureQueriesContext(connection) as ctx:
        again = recommended_section(client)
    assert again == first  # the same figures and links, from the copy
    assert not any("_counted" in q["sql"] for q in ctx.captured_queries)

    team.place_order(team.item, me.user)  # outside this session: shown until the period ends
    assert recommended_section(client) == first
    # Any POST of the session drops the copy: an order placed in the portal shows at once.
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert RECOMMENDATIONS not in client.session
    assert team.item.name not in recommended_section(client)


def test_list_rows_figures_equal_the_request_pages(org, team, settings):
    """The approvals list's figures (one statement compiled once, its ids and date bound
    per call, for the list's value rows) are the request page's (with_decision_figures
    through the ORM), row by row."""
    from requests_app.selectors import list_rows, requests_to_decide
    from requests_app.tables import RequestRowTable

    settings.ASSIST_MIN_PEER_GROUP = 3
    for _ in range(3):
        team.holder(job_title="Sachbearbeitung")
    team.holder()
    team.decided(approve=True)
    team.decided(approve=False, comment="Nein.")
    team.decided(approve=True, days_ago=400)  # outside the year
    former = team.holder(state=EntitlementState.REVOKED)
    beneficiaries = [team.person("Sachbearbeitung"), team.person(), former, team.person("Neu")]
    reqs = [team.place_order(team.item, person.user) for person in beneficiaries]
    manager = org.manager.user
    listed = requests_to_decide(manager).order_by("pk")
    records = list(list_rows(listed, RequestRowTable.row_columns))
    assert [r["id"] for r in records] == [r.pk for r in reqs]
    for chosen in (records, records[1:3], records[:1]):  # the same statement, other ids
        rows = selectors.decision_support_for_rows(chosen)
        assert list(rows) == [r["id"] for r in chosen]
        for record in chosen:
            row = rows[record["id"]]
            page = selectors.decision_support(ServiceRequest.objects.get(pk=record["id"]))
            assert row.request is record
            assert (
                row.peers,
                row.approved,
                row.rejected,
                row.decisions_since,
                row.held_before,
            ) == (page.peers, page.approved, page.rejected, page.decisions_since, page.held_before)
    assert rows[reqs[0].pk].peers.job_title == "Sachbearbeitung"  # a group of 3
    assert selectors.decision_support_for_rows(records)[reqs[2].pk].held_before is True
    # "Neu": a group of one, the department compared
    assert selectors.decision_support_for_rows(records)[reqs[3].pk].peers.job_title == ""
    assert selectors.decision_support_for_rows([]) == {}
