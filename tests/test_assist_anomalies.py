"""Demand anomalies and rarely used entitlements for controlling (issue 16): the band by hand,
flagged months on constructed orders, the reclaim signs and their order, the page and CSVs
for controlling only, the switch, and the selector the recertification can sort by."""

import datetime
from datetime import timedelta

import pytest
from django.utils import timezone

from assist import reclaim
from metrics.controlling import selectors
from metrics.controlling.forecast import band
from metrics.controlling.rollup import ALL
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import (
    CatalogueItemFactory,
    DepartmentFactory,
    EmployeeFactory,
    request_row,
)
from tests.test_controlling import at, make_request

D = datetime.date


# --- the band, by hand ---------------------------------------------------------------------


def test_band_of_a_flat_history():
    # Twelve months of 9: the line is flat at 9, no scatter → one spread is √9 = 3;
    # the band is 9 ± 2 × 3 = 3 … 15.
    result = band([9] * 12, first_month=D(2024, 1, 1))
    assert result.expected == pytest.approx(9)
    assert result.spread == pytest.approx(3)
    assert (result.low, result.high) == (pytest.approx(3), pytest.approx(15))


def test_band_widens_with_a_scattered_history():
    # 4, 16, 16, 4, … : flat line at 10, residuals ±6 → scatter √(12 × 36 / 10) ≈ 6.57.
    result = band([4, 16, 16, 4] * 3, first_month=D(2024, 1, 1))
    assert result.expected == pytest.approx(10, abs=0.6)
    assert result.spread == pytest.approx((12 * 36 / 10) ** 0.5, rel=0.05)


def test_band_of_a_quiet_service_is_at_least_one_order_wide():
    result = band([0, 0, 1, 0, 0, 0], first_month=D(2024, 1, 1))
    assert result.spread >= 1
    assert result.high >= 2


# --- flagged months on the database --------------------------------------------------------


@pytest.fixture
def demand(org):
    """VPN: 10 orders every month Jan 2024 – Dec 2024, except 1 in August and 30 in
    November; Drucker: 3 every month (never unusual). The series start in February (the
    first month with an order is left out, as on the forecast page)."""
    vpn = CatalogueItemFactory(name="VPN")
    printer = CatalogueItemFactory(name="Drucker")
    ServiceRequest.objects.bulk_create(
        [
            make_request(item, org.alice, org.cost_centre, price_once="0", price_monthly="0",
                         state=RequestState.SUBMITTED, submitted=at(2024, m, 1 + d % 27))
            for m in range(1, 13)
            for item, d in _month_plan(vpn, printer, m)
        ]
    )  # fmt: skip
    return vpn, printer


def _month_plan(vpn, printer, month):
    count = {8: 1, 11: 30}.get(month, 10)
    return [(vpn, day) for day in range(count)] + [(printer, day) for day in range(3)]


@pytest.mark.django_db
def test_months_outside_the_band_are_flagged_with_size_and_direction(demand):
    assert demand
    rows = selectors.demand_anomalies(ALL, months=6, history_months=24, last=D(2024, 12, 1))
    flagged = [(r.service, r.month, r.direction) for r in rows]
    # August: 1 against 10 expected (band 10 ± 2 × √10) → down; November: 30 → up.
    assert ("VPN", D(2024, 8, 1), "down") in flagged
    assert ("VPN", D(2024, 11, 1), "up") in flagged
    assert all(service == "VPN" for service, _m, _d in flagged)
    august = next(r for r in rows if r.month == D(2024, 8, 1))
    assert august.orders == 1
    assert august.band.expected == pytest.approx(10)
    assert august.band.low == pytest.approx(10 - 2 * 10**0.5)
    assert august.size == pytest.approx(-9)
    assert august.percent == pytest.approx(-90)
    november = next(r for r in rows if r.month == D(2024, 11, 1))
    assert november.orders == 30 and november.size > 15
    assert rows[0] == november  # furthest outside first
    # Months before the judged ones and filters that count nothing give nothing.
    # May–July have fewer than six months before them: not judged.
    assert selectors.demand_anomalies(ALL, months=3, history_months=24, last=D(2024, 7, 1)) == []
    from metrics.controlling.rollup import Scope

    assert selectors.demand_anomalies(Scope(nothing=True)) == []


# --- rarely used entitlements -------------------------------------------------------------


class Holdings:
    """A department of six; a licence (monthly price) held by some, a free item by all."""

    def __init__(self, org):
        self.department = DepartmentFactory(name="Kämmerei", cost_centre=org.cost_centre)
        self.people = [EmployeeFactory(department=self.department) for _ in range(11)]
        now = timezone.now()
        for person in self.people:
            person.user.last_login = now
            person.user.save(update_fields=["last_login"])
        self.licence = CatalogueItemFactory(name="Visio", price_monthly="9.00")
        self.free = CatalogueItemFactory(name="Intranet", price_monthly="0")
        self.rows = {}
        for index, person in enumerate(self.people):
            self.rows[index] = self.grant(self.free, person)
        # Licence: held by people 0–3 (in a department of eleven).
        self.licence_rows = [self.grant(self.licence, p) for p in self.people[:4]]

    def grant(self, item, person):
        now = timezone.now()
        req = request_row(item, person, submitted=now, approved=now, closed=now)
        req.save()
        return Entitlement.objects.create(request=req, holder=person, item=item)


@pytest.fixture
def holdings(org):
    return Holdings(org)


@pytest.mark.django_db
def test_reclaim_signs_and_order(holdings, settings):
    left, moved, idle, fine = holdings.people[:4]
    left.is_active = False
    left.save(update_fields=["is_active"])
    Entitlement.objects.filter(holder=moved, item=holdings.licence).update(
        review_note="Wechsel von Amt 10"
    )
    idle.user.last_login = timezone.now() - timedelta(days=settings.ASSIST_IDLE_DAYS + 1)
    idle.user.save(update_fields=["last_login"])
    found = reclaim.reclaim_candidates()
    by_holder = {c.entitlement.holder_id: c for c in found}
    # Only the licence costs something; the free item is never a candidate.
    assert {c.entitlement.item_id for c in found} == {holdings.licence.pk}
    assert by_holder[left.pk].risk == 3
    assert by_holder[moved.pk].risk == 2
    assert by_holder[idle.pk].risk == 1
    assert fine.pk not in by_holder
    assert [c.entitlement.holder_id for c in found] == [left.pk, moved.pk, idle.pk]
    assert "holder no longer active" in by_holder[left.pk].reasons

    # Few peers: with a share of 40 %, three of ten colleagues are too few.
    settings.ASSIST_OUTLIER_SHARE = 0.4
    found = {c.entitlement.holder_id: c for c in reclaim.reclaim_candidates()}
    assert found[fine.pk].risk == 1
    assert found[fine.pk].reasons == ["few colleagues in the department hold it"]


@pytest.mark.django_db
def test_a_recent_directory_sign_in_is_not_idle(holdings, settings):
    """The directory's last sign-in (read by the sync) counts like the portal's: a person who
    works in the directory every day but never opens the portal is not idle; one idle in both
    is, and a stale directory time does not hide a recent portal sign-in."""
    from catalogue.models import Employee

    worker, absent, portal_only = holdings.people[:3]
    long_ago = timezone.now() - timedelta(days=settings.ASSIST_IDLE_DAYS + 5)
    for person in (worker, absent, portal_only):
        person.user.last_login = None if person is not portal_only else timezone.now()
        person.user.save(update_fields=["last_login"])
    Employee.objects.filter(pk=worker.pk).update(directory_last_logon=timezone.now())
    Employee.objects.filter(pk__in=[absent.pk, portal_only.pk]).update(
        directory_last_logon=long_ago
    )
    found = {c.entitlement.holder_id: c for c in reclaim.reclaim_candidates()}
    assert worker.pk not in found and portal_only.pk not in found
    assert found[absent.pk].risk == 1
    assert found[absent.pk].reasons == [
        "holder not signed in to the portal or the directory for a long time"
    ]


@pytest.mark.django_db
def test_reclaim_risk_sorts_another_apps_rows(holdings, django_assert_max_num_queries):
    """The recertification (governance) sorts its reviews by it: rows pointing to an
    entitlement, one statement however many rows."""
    left = holdings.people[0]
    left.is_active = False
    left.save(update_fields=["is_active"])
    rows = reclaim.with_reclaim_risk(
        ServiceRequest.objects.filter(entitlement__isnull=False), entitlement="entitlement__"
    ).order_by("-reclaim_risk", "pk")
    with django_assert_max_num_queries(1):
        ordered = list(rows)
    assert ordered[0].beneficiary_id == left.pk
    assert ordered[0].reclaim_risk == 3


# --- the page, CSVs, roles, switch -----------------------------------------------------------


@pytest.mark.django_db
def test_page_and_csv_for_controlling_only(client, org, demand, holdings, settings):
    Entitlement.objects.filter(holder=holdings.people[1], item=holdings.licence).update(
        review_note="Wechsel"
    )
    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    client.force_login(controller.user)
    client.cookies["django_language"] = "de"
    page = client.get("/controlling/auffaelligkeiten/", {"history": "24"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Auffällige Nachfrage" in text
    assert "Visio" in text
    csv = b"".join(client.get("/controlling/rueckholung.csv").streaming_content).decode("utf-8-sig")
    assert "Visio" in csv and "Kämmerei" in csv
    months = client.get("/controlling/auffaelligkeiten.csv")
    assert months.status_code == 200
    b"".join(months.streaming_content)
    # Employees do not see it.
    client.force_login(org.alice.user)
    for url in ("/controlling/auffaelligkeiten/", "/controlling/rueckholung.csv"):
        assert client.get(url).status_code == 403
    # Switched off: gone, also from the navigation.
    client.force_login(controller.user)
    settings.ASSIST_ANOMALIES = False
    assert client.get("/controlling/auffaelligkeiten/").status_code == 404
    assert client.get("/controlling/rueckholung.csv").status_code == 404
    assert "/controlling/auffaelligkeiten/" not in client.get("/controlling/").content.decode()


@pytest.mark.django_db
def test_hostile_filters_give_an_empty_page(client, org):
    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    client.force_login(controller.user)
    for query in ({"history": "x"}, {"item": "\x00"}, {"department": "-1"}, {"history": "9" * 40}):
        assert client.get("/controlling/auffaelligkeiten/", query).status_code == 200
        assert client.get("/controlling/auffaelligkeiten.csv", query).status_code == 200


@pytest.mark.django_db
def test_entitlement_states_other_than_active_are_not_candidates(holdings):
    Entitlement.objects.filter(item=holdings.licence).update(state=EntitlementState.REVOKED)
    holdings.people[0].is_active = False
    holdings.people[0].save(update_fields=["is_active"])
    assert reclaim.reclaim_candidates() == []


@pytest.mark.django_db
def test_recertification_by_risk_counts_the_signs_of_disuse(holdings):
    """governance.risk's score includes the reclaim signal (registered by AssistConfig):
    the same licence, but its holder left, comes first."""
    from governance import risk

    left = holdings.people[2]
    left.is_active = False
    left.save(update_fields=["is_active"])
    licences = Entitlement.objects.filter(item=holdings.licence)
    scored = {e.holder_id: e.risk_score for e in risk.with_risk(licences)}
    others = [score for holder, score in scored.items() if holder != left.pk]
    assert scored[left.pk] == max(others) + reclaim.RECERTIFICATION_WEIGHT * 3
    assert risk.riskiest(licences, 1)[0].holder_id == left.pk
