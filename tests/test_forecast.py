"""Demand forecast and rarely ordered services, on series computed by hand."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import CatalogueItem
from metrics.controlling import selectors
from metrics.controlling.forecast import forecast
from metrics.controlling.rollup import ALL, Scope
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import (
    CatalogueItemFactory,
    CategoryFactory,
    DepartmentFactory,
    EmployeeFactory,
    UserFactory,
)
from tests.test_controlling import at, make_request

D = datetime.date


# --- the arithmetic --------------------------------------------------------------------


def test_perfect_linear_series_continues_exactly():
    # 2, 4, … 24 over Jan–Dec 2024: slope 2, intercept 0 → t = 13, 14, 15 gives 26, 28, 30.
    result = forecast([2 * t for t in range(1, 13)], first_month=D(2024, 1, 1))
    assert result.months == [D(2025, 1, 1), D(2025, 2, 1), D(2025, 3, 1)]
    assert result.values == pytest.approx([26, 28, 30])
    assert result.slope == pytest.approx(2)
    assert result.intercept == pytest.approx(0)
    assert result.total == pytest.approx(84)
    assert not result.seasonal


def test_seasonal_series_by_hand():
    # Oct 2022 … Sep 2024 (24 months): every month 10 orders, every December 22.
    # Average of all months: (22 × 10 + 2 × 22) / 24 = 264 / 24 = 11.
    # Seasonal index: December 22 / 11 = 2; every other month 10 / 11.
    # Deseasonalised every month is 11 → flat trend at 11 (slope 0).
    # Forecast Oct, Nov, Dec 2024: 11 × 10/11 = 10, 10, and 11 × 2 = 22.
    first = D(2022, 10, 1)
    counts = [22 if (first.month - 1 + i) % 12 == 11 else 10 for i in range(24)]
    assert counts.count(22) == 2
    result = forecast(counts, first_month=first)
    assert result.seasonal
    assert result.months == [D(2024, 10, 1), D(2024, 11, 1), D(2024, 12, 1)]
    assert result.indices[12] == pytest.approx(2)
    assert result.indices[3] == pytest.approx(10 / 11)
    assert result.slope == pytest.approx(0)
    assert result.values == pytest.approx([10, 10, 22])


def test_seasonal_index_needs_24_months():
    # The same pattern over 23 months is trend only: no index, the line through the counts.
    first = D(2022, 10, 1)
    counts = [22 if (first.month - 1 + i) % 12 == 11 else 10 for i in range(23)]
    result = forecast(counts, first_month=first)
    assert not result.seasonal
    assert set(result.indices.values()) == {1.0}


def test_falling_demand_never_forecasts_negative_orders():
    # 23, 21, … 1 (y = 25 − 2t): t = 13 gives −1, then −3, −5 → 0, 0, 0.
    result = forecast([25 - 2 * t for t in range(1, 13)], first_month=D(2024, 1, 1))
    assert result.slope == pytest.approx(-2)
    assert result.values == [0.0, 0.0, 0.0]


def test_short_histories():
    assert forecast([5], first_month=D(2025, 1, 1)).values == pytest.approx([5, 5, 5])
    assert forecast([], first_month=D(2025, 1, 1)).values == [0.0, 0.0, 0.0]


def test_month_never_ordered_stays_zero_in_a_seasonal_forecast():
    # 24 months from Jan 2023: August never ordered, every other month 6.
    # Average 22 × 6 / 24 = 5.5; index of August 0, of the others 6 / 5.5.
    # Deseasonalised (August left out) every month is 5.5 → forecast Jan–Mar 2025 = 6 each.
    # The history Jun 2023 … May 2025 (also 24 months, August 0 twice) forecasts
    # June, July, August 2025 as 6, 6, 0.
    counts = [0 if i % 12 == 7 else 6 for i in range(24)]
    assert forecast(counts, first_month=D(2023, 1, 1)).values == pytest.approx([6, 6, 6])
    june = forecast([*counts[5:], 6, 6, 6, 6, 6], first_month=D(2023, 6, 1))
    assert june.months[0] == D(2025, 6, 1)
    assert june.values == pytest.approx([6, 6, 0])


# --- the selectors on the database ------------------------------------------------------


class Orders:
    """History Jun–Aug 2025 (lead-in month: May).

    VPN: one order in May (by Carol), then 1, 2, 3 in Jun, Jul, Aug (and one in September,
    after the history) → ordered before the history: history 1, 2, 3.
    Plotter: first ordered in June (2), none in July, 2 in August → June is its first,
    partial month and left out: history 0, 2.
    Printer: one order in 2023 only. Fax: never ordered. Retired: never ordered, retired.
    """

    def __init__(self, org):
        category = CategoryFactory(name="Netz", slug="netz")
        self.other = CategoryFactory(name="Büro", slug="buero")
        self.vpn = CatalogueItemFactory(name="VPN", category=category)
        self.plotter = CatalogueItemFactory(name="Plotter", category=self.other)
        self.printer = CatalogueItemFactory(name="Drucker", category=self.other)
        self.fax = CatalogueItemFactory(name="Fax", category=self.other)
        self.retired = CatalogueItemFactory(name="Telex", category=self.other, is_active=False)
        self.department = DepartmentFactory(code="FB30", cost_centre=org.cost_centre)
        self.carol = EmployeeFactory(department=self.department)
        submitted = RequestState.SUBMITTED
        plan = [
            (self.vpn, self.carol, at(2025, 5, 20)),
            (self.vpn, org.alice, at(2025, 6, 2)),
            (self.vpn, org.alice, at(2025, 7, 2)),
            (self.vpn, org.alice, at(2025, 7, 31, 23, 30)),  # still July in Berlin
            (self.vpn, self.carol, at(2025, 8, 1, 0, 30)),  # August in Berlin, July in UTC
            (self.vpn, org.alice, at(2025, 8, 20)),
            (self.vpn, org.alice, at(2025, 8, 21)),
            (self.vpn, org.alice, at(2025, 9, 1)),
            (self.plotter, org.alice, at(2025, 6, 3)),
            (self.plotter, org.alice, at(2025, 6, 4)),
            (self.plotter, org.alice, at(2025, 8, 3)),
            (self.plotter, org.alice, at(2025, 8, 4)),
            (self.printer, org.alice, at(2023, 5, 4)),
        ]
        ServiceRequest.objects.bulk_create(
            [make_request(item, who, org.cost_centre, price_once="0", price_monthly="0",
                          state=submitted, submitted=when) for item, who, when in plan]
        )  # fmt: skip
        # A draft (never submitted) does not count as an order.
        draft = make_request(self.fax, org.alice, org.cost_centre, price_once="0",
                             price_monthly="0", state=RequestState.DRAFT,
                             submitted=at(2025, 7, 1))  # fmt: skip
        draft.submitted_at = None
        draft.save()


@pytest.fixture
def orders(org):
    return Orders(org)


@pytest.mark.django_db
def test_demand_forecast_from_monthly_counts(orders):
    rows = {
        row.service: row
        for row in selectors.demand_forecast(ALL, history_months=3, last=D(2025, 8, 1))
    }
    assert set(rows) == {"VPN", "Plotter"}  # Drucker's order is older than the history
    vpn = rows["VPN"]
    assert vpn.first_month == D(2025, 6, 1)
    assert vpn.history == [1, 2, 3]
    assert vpn.forecast.months == [D(2025, 9, 1), D(2025, 10, 1), D(2025, 11, 1)]
    assert vpn.forecast.values == pytest.approx([4, 5, 6])
    plotter = rows["Plotter"]
    assert plotter.first_month == D(2025, 7, 1)
    assert plotter.history == [0, 2]
    # Line through (1, 0) and (2, 2): slope 2, intercept −2 → t = 3, 4, 5 gives 4, 6, 8.
    assert plotter.forecast.values == pytest.approx([4, 6, 8])
    assert plotter.forecast.total == pytest.approx(18)
    assert plotter.orders_last_12 == 2


@pytest.mark.django_db
def test_demand_history_starts_at_first_order_and_follows_filters(orders):
    by_department = selectors.demand_forecast(
        Scope(department_id=orders.department.pk),
        history_months=3,
        last=D(2025, 8, 1),
    )
    # Carol ordered VPN in May (the lead-in month) and on 1 August: history 0, 0, 1.
    assert [(r.service, r.first_month, r.history) for r in by_department] == [
        ("VPN", D(2025, 6, 1), [0, 0, 1])
    ]
    assert selectors.demand_forecast(Scope(nothing=True)) == []


@pytest.mark.django_db
def test_rarely_ordered(orders):
    def rare(fewer_than, items=None, scope=ALL):
        return [
            (row.service, row.orders, row.last_ordered_at)
            for row in selectors.rarely_ordered(
                scope,
                items if items is not None else CatalogueItem.objects.all(),
                first=D(2024, 9, 1),
                last=D(2025, 8, 1),
                fewer_than=fewer_than,
            )
        ]

    # Never ordered first, then by fewest orders; the retired item is not a candidate.
    # Drucker was last ordered in 2023, outside the twelve months: 0 orders in the period.
    assert rare(1) == [("Fax", 0, None), ("Drucker", 0, at(2023, 5, 4))]
    assert rare(5) == [("Fax", 0, None), ("Drucker", 0, at(2023, 5, 4)),
                       ("Plotter", 4, at(2025, 8, 4))]  # fmt: skip
    # VPN has 7 orders in the period (September is after it), the last one in September.
    assert ("VPN", 7, at(2025, 9, 1)) in rare(8)
    assert "VPN" not in [name for name, _, _ in rare(7)]
    assert rare(1, items=CatalogueItem.objects.filter(category=orders.other, name="Fax")) == [
        ("Fax", 0, None)
    ]
    # No request in the filter: every active item has 0 orders.
    assert len(rare(1, scope=Scope(department_id=DepartmentFactory().pk))) == 4


@pytest.fixture
def controller(org):
    return UserFactory(username="controller", groups=[org.controlling])


EN = {"headers": {"accept-language": "en"}}


@pytest.mark.django_db
def test_forecast_page(client, orders, controller):
    client.force_login(controller)
    response = client.get("/controlling/prognose/", {"history": "12"}, **EN)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" in body and 'role="img"' in body
    assert "How the forecast is computed" in body
    assert "trend only" in body


@pytest.mark.django_db
def test_rarely_ordered_page(client, orders, controller):
    client.force_login(controller)
    params = {"fewer_than": "1", "period_from": "2024-09", "period_to": "2025-08"}
    response = client.get("/controlling/selten-bestellt/", params, **EN)
    assert response.status_code == 200
    table = response.content.decode().split("<table")[1]
    assert "Fax" in table and "never" in table
    assert "Telex" not in table and "VPN" not in table


@pytest.mark.django_db
def test_rarely_ordered_page_without_query_string_uses_the_defaults(client, orders, controller):
    """Opened from the menu (no parameters): the last twelve months, fewer than 3 orders."""
    client.force_login(controller)
    response = client.get("/controlling/selten-bestellt/", **EN)
    assert response.status_code == 200
    table = response.content.decode().split("<table")[1]
    assert "Fax" in table  # never ordered
    assert 'value="3"' in response.content.decode()  # the default shown in the form


@pytest.mark.django_db
def test_forecast_page_without_query_string_uses_the_defaults(client, orders, controller):
    client.force_login(controller)
    response = client.get("/controlling/prognose/", **EN)
    assert response.status_code == 200
    assert 'role="img"' in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        ("/controlling/selten-bestellt/", {"fewer_than": "abc"}, "Enter a whole number."),
        ("/controlling/selten-bestellt/", {"fewer_than": "0"}, "greater than or equal to 1"),
        ("/controlling/prognose/", {"history": "7"}, "Select a valid choice."),
        ("/controlling/prognose/", {"item": "999999"}, "Select a valid choice."),
        ("/controlling/lizenzpools/", {"category": "x"}, "Select a valid choice."),
    ],
)
def test_bad_filter_input_gives_an_error_not_a_crash(client, orders, controller, url, params,
                                                       message):  # fmt: skip
    client.force_login(controller)
    response = client.get(url, params, **EN)
    assert response.status_code == 200
    assert message in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/controlling/prognose/", "/controlling/selten-bestellt/", "/controlling/lizenzpools/"]
)
def test_pages_for_controlling_and_it_admins_only(client, orders, org, controller, url):
    client.force_login(org.alice.user)
    assert client.get(url).status_code == 403
    client.force_login(org.admin.user)
    assert client.get(url).status_code == 200
    client.force_login(controller)
    assert client.get(url).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/controlling/prognose/", "/controlling/selten-bestellt/"])
def test_query_count_constant(client, orders, org, controller, url):
    """More services and more orders must not mean more queries."""
    client.force_login(controller)
    counts = []
    for batch in range(2):
        for i in range(10 * batch):
            item = CatalogueItemFactory(name=f"Dienst {i}", category=orders.other)
            ServiceRequest.objects.bulk_create(
                [make_request(item, org.alice, org.cost_centre, price_once="0",
                              price_monthly="0", state=RequestState.SUBMITTED,
                              submitted=at(2025, 1 + m, 5)) for m in range(8)]
            )  # fmt: skip
        params = {"history": "36", "fewer_than": "100"}
        client.get(url, params)  # warm
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
