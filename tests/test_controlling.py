"""Controlling: cost allocation and usage, checked against a small data set computed by hand.

Time zone Europe/Berlin. Period 2025-01 … 2025-06.

Cost centre KS1000 (alice), item VPN whose price changes between two orders:
  r1 ordered at 10.00 once / 2.50 monthly, fulfilled 2025-01-15, entitlement
     granted 2025-01-15, revoked 2025-03-20  → one-off Jan, monthly Jan, Feb, Mar
  r2 ordered at 12.40 once / 3.10 monthly, fulfilled 2025-02-05, entitlement
     granted 2025-02-05, still active       → one-off Feb, monthly Feb … Jun
Cost centre KS2000 (carol, name looks like a formula), item Notebook 899.99 once:
  r3 fulfilled 2025-05-01 00:30 Berlin (= 2025-04-30 22:30 UTC) → one-off in May
  r4 rejected in March → ordered, never charged
"""

import csv
import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from catalogue.models import CostCentre
from metrics.controlling import selectors
from metrics.controlling.exports import escape_formula
from metrics.controlling.rollup import ALL, Scope
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import (
    CatalogueItemFactory,
    CategoryFactory,
    DepartmentFactory,
    EmployeeFactory,
    UserFactory,
)

BERLIN = ZoneInfo("Europe/Berlin")
FORMULA_NAME = '=HYPERLINK("http://evil.example","x")'
PERIOD = {"period_from": "2025-01", "period_to": "2025-06"}


def at(year, month, day, hour=12, minute=0):
    return datetime.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def make_request(item, employee, cost_centre, *, price_once, price_monthly, state, submitted,
                 closed=None):  # fmt: skip
    return ServiceRequest(
        requester=employee.user,
        beneficiary=employee,
        item=item,
        item_version=item.version,
        item_snapshot=item.snapshot(),
        answers={},
        cost_centre=cost_centre,
        price_once=Decimal(price_once),
        price_monthly=Decimal(price_monthly),
        fulfilment_group=item.service_owner,
        state=state,
        created_at=submitted,
        submitted_at=submitted,
        closed_at=closed,
    )


class Data:
    def __init__(self, org):
        self.org = org
        self.ks1000 = org.cost_centre
        self.ks2000 = CostCentre.objects.create(code="KS2000", name=FORMULA_NAME)
        self.other_department = DepartmentFactory(code="FB20", cost_centre=self.ks2000)
        self.carol = EmployeeFactory(department=self.other_department, user__username="carol")
        self.network = CategoryFactory(slug="netz", name="Netz")
        self.hardware = CategoryFactory(slug="hardware", name="Hardware")
        self.vpn = CatalogueItemFactory(name="VPN", category=self.network)
        self.notebook = CatalogueItemFactory(
            name="Notebook", category=self.hardware, price_once=Decimal("899.99")
        )
        fulfilled = RequestState.FULFILLED
        r1, r2, _r3, _r4 = ServiceRequest.objects.bulk_create(
            [
                make_request(self.vpn, org.alice, self.ks1000, price_once="10.00",
                             price_monthly="2.50", state=fulfilled, submitted=at(2025, 1, 10),
                             closed=at(2025, 1, 15)),
                make_request(self.vpn, org.alice, self.ks1000, price_once="12.40",
                             price_monthly="3.10", state=fulfilled, submitted=at(2025, 2, 3),
                             closed=at(2025, 2, 5)),
                make_request(self.notebook, self.carol, self.ks2000, price_once="899.99",
                             price_monthly="0.00", state=fulfilled, submitted=at(2025, 3, 31),
                             closed=at(2025, 5, 1, 0, 30)),
                make_request(self.notebook, self.carol, self.ks2000, price_once="899.99",
                             price_monthly="0.00", state=RequestState.REJECTED,
                             submitted=at(2025, 3, 10), closed=at(2025, 3, 11)),
            ]
        )  # fmt: skip
        Entitlement.objects.bulk_create(
            [
                Entitlement(
                    holder=org.alice, item=self.vpn, request=r1,
                    state=EntitlementState.REVOKED,
                    granted_at=at(2025, 1, 15), revoked_at=at(2025, 3, 20),
                ),
                Entitlement(
                    holder=org.alice, item=self.vpn, request=r2,
                    state=EntitlementState.ACTIVE, granted_at=at(2025, 2, 5),
                ),
            ]
        )  # fmt: skip


@pytest.fixture
def data(org):
    return Data(org)


@pytest.fixture
def controller(org):
    return UserFactory(username="controller", groups=[org.controlling])


def costs(**filters):
    return {
        (row.month.strftime("%Y-%m"), row.cost_centre_code): (
            row.once,
            row.monthly,
            row.total,
            row.entitlements,
        )
        for row in selectors.costs_per_cost_centre(
            Scope(**filters),
            first=datetime.date(2025, 1, 1),
            last=datetime.date(2025, 6, 1),
        )
    }


def D(value):
    return Decimal(value)


@pytest.mark.django_db
def test_costs_per_cost_centre_by_hand(data):
    assert costs() == {
        ("2025-01", "KS1000"): (D("10.00"), D("2.50"), D("12.50"), 1),
        ("2025-02", "KS1000"): (D("12.40"), D("5.60"), D("18.00"), 2),
        ("2025-03", "KS1000"): (D("0"), D("5.60"), D("5.60"), 2),
        ("2025-04", "KS1000"): (D("0"), D("3.10"), D("3.10"), 1),
        ("2025-05", "KS1000"): (D("0"), D("3.10"), D("3.10"), 1),
        ("2025-05", "KS2000"): (D("899.99"), D("0"), D("899.99"), 0),
        ("2025-06", "KS1000"): (D("0"), D("3.10"), D("3.10"), 1),
    }
    total_ks1000 = sum(v[2] for k, v in costs().items() if k[1] == "KS1000")
    assert total_ks1000 == D("45.40")  # 10.00 + 12.40 + 3 × 2.50 + 5 × 3.10


@pytest.mark.django_db
def test_costs_filter_by_department(data):
    assert costs(department_id=data.other_department.pk) == {
        ("2025-05", "KS2000"): (D("899.99"), D("0"), D("899.99"), 0)
    }


@pytest.mark.django_db
def test_revocation_at_month_start_stops_that_month(data):
    Entitlement.objects.filter(request__price_once=D("10.00")).update(
        revoked_at=at(2025, 3, 1, 0, 0)
    )
    assert costs()[("2025-03", "KS1000")] == (D("0"), D("3.10"), D("3.10"), 1)


def usage(breakdown=selectors.BREAKDOWN_SERVICE):
    return {
        (row.month.strftime("%Y-%m"), row.service, row.group): (row.orders, row.active)
        for row in selectors.usage_per_service(
            ALL,
            first=datetime.date(2025, 1, 1),
            last=datetime.date(2025, 6, 1),
            breakdown=breakdown,
        )
    }


@pytest.mark.django_db
def test_usage_orders_per_month_and_active_at_month_end(data):
    assert usage() == {
        ("2025-01", "VPN", ""): (1, 1),
        ("2025-02", "VPN", ""): (1, 2),
        ("2025-03", "VPN", ""): (0, 1),
        ("2025-03", "Notebook", ""): (2, 0),
        ("2025-04", "VPN", ""): (0, 1),
        ("2025-05", "VPN", ""): (0, 1),
        ("2025-06", "VPN", ""): (0, 1),
    }


@pytest.mark.django_db
def test_usage_by_cost_centre_and_department(data):
    by_cc = usage(selectors.BREAKDOWN_COST_CENTRE)
    assert by_cc[("2025-03", "Notebook", f"KS2000 {FORMULA_NAME}")] == (2, 0)
    assert by_cc[("2025-02", "VPN", "KS1000 Hauptamt")] == (1, 2)
    by_department = usage(selectors.BREAKDOWN_DEPARTMENT)
    department = data.other_department
    assert by_department[("2025-03", "Notebook", f"FB20 {department.name}")] == (2, 0)


@pytest.mark.django_db
def test_cost_page_renders_for_controlling(client, data, controller):
    client.force_login(controller)
    response = client.get("/controlling/", {**PERIOD, "cost_centre": data.ks1000.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<caption>" in body
    assert 'scope="col"' in body
    assert "45.40" not in body  # per-month rows, no grand total
    assert "18.00" in body
    assert "KS2000" not in body.split("<table")[1]


@pytest.mark.django_db
def test_page_without_filters_counts_everything(client, data, controller):
    """Opened without a query string (an unbound filter set): the default period, all data."""
    client.force_login(controller)
    body = client.get("/controlling/").content.decode()
    assert "KS1000" in body and "3.10" in body  # r2's VPN, still active: charged monthly


@pytest.mark.django_db
def test_usage_page_renders(client, data, org):
    client.force_login(org.admin.user)
    response = client.get("/controlling/nutzung/", {**PERIOD, "breakdown": "department"})
    assert response.status_code == 200
    assert "Notebook" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/controlling/", "/controlling/nutzung/", "/controlling/kosten.csv"]
)
def test_ordinary_employee_gets_403(client, data, org, url):
    client.force_login(org.alice.user)
    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_csv_export_read_back(client, data, controller):
    client.force_login(controller)
    response = client.get("/controlling/kosten.csv", PERIOD)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Month"
    by_key = {(r[0], r[1]): r for r in rows[1:]}
    assert by_key[("2025-02", "KS1000")][4:] == ["12,40", "2", "5,60", "18,00"]
    assert by_key[("2025-05", "KS2000")][2] == "'" + FORMULA_NAME
    assert by_key[("2025-05", "KS2000")][7] == "899,99"
    assert len(rows) == 1 + 7


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 600])
def test_csv_streams_in_pieces_of_the_same_bytes_as_line_by_line(count):
    """A few hundred lines per piece, not one piece per line: the same bytes as writing the
    lines one by one, the byte order mark once, at the start."""
    from metrics.controlling import exports

    rows = [
        selectors.CostRow(datetime.date(2025, 1 + i % 12, 1), f"=KS{i}", f"Amt; \"{i}\"\n", i,
                          Decimal("1.50"), i, Decimal(f"{i}.25"))
        for i in range(count)
    ]  # fmt: skip
    pieces = list(exports.costs_csv(rows))
    assert len(pieces) == max(1, -(-count // exports.CSV_LINES))
    expected = "\ufeff" + "".join(
        writer_line(line) for line in [exports._header(), *(cost_line(row) for row in rows)]
    )
    assert b"".join(pieces) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "amount", ["0.00", "-0.00", "1234.50", "-5.25", "1.5", "1.505", "5", "1E+3", "0E-2", "1E-7"]
)
def test_amounts_with_a_decimal_comma_and_two_places(amount):
    from metrics.controlling.exports import _amount_de

    assert _amount_de(Decimal(amount)) == f"{Decimal(amount):.2f}".replace(".", ",")


def writer_line(line) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerow(line)
    return out.getvalue()


def cost_line(row) -> list:
    def de(amount):
        return f"{amount:.2f}".replace(".", ",")

    return [row.month.strftime("%Y-%m"), escape_formula(row.cost_centre_code),
            escape_formula(row.cost_centre_name), row.fulfilled, de(row.once), row.entitlements,
            de(row.monthly), de(row.total)]  # fmt: skip


@pytest.mark.django_db
def test_xlsx_export_read_back(client, data, controller):
    client.force_login(controller)
    response = client.get("/controlling/kosten.xlsx", PERIOD)
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Month"
    by_key = {(r[0], r[1]): r for r in rows[1:]}
    assert Decimal(str(by_key[("2025-01", "KS1000")][7])) == D("12.50")
    assert Decimal(str(by_key[("2025-03", "KS1000")][6])) == D("5.60")
    name_cell = by_key[("2025-05", "KS2000")][2]
    assert name_cell == "'" + FORMULA_NAME
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_escape_formula():
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert escape_formula(value) == "'" + value
    assert escape_formula("Hauptamt") == "Hauptamt"


def add_requests(data, count):
    """Fulfilled VPN requests with active entitlements, spread over the period."""
    org = data.org
    created = ServiceRequest.objects.bulk_create(
        [
            make_request(data.vpn, org.bob, data.ks1000, price_once="1.00",
                         price_monthly="1.00", state=RequestState.FULFILLED,
                         submitted=at(2025, 1 + i % 6, 2), closed=at(2025, 1 + i % 6, 3))
            for i in range(count)
        ]
    )  # fmt: skip
    Entitlement.objects.bulk_create(
        [
            Entitlement(holder=org.bob, item=data.vpn, request=r, granted_at=r.closed_at)
            for r in created
        ]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/controlling/", "/controlling/nutzung/", "/controlling/kosten.xlsx"]
)
def test_query_count_constant(client, data, controller, url):
    client.force_login(controller)
    params = {**PERIOD, "breakdown": "cost_centre"}
    counts = []
    for total in (3, 30):
        add_requests(data, total - ServiceRequest.objects.filter(beneficiary=data.org.bob).count())
        client.get(url, params)  # warm
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_bad_month_shows_error_not_crash(client, data, controller):
    client.force_login(controller)
    response = client.get("/controlling/", {"period_from": "abc"})
    assert response.status_code == 200
    assert client.get("/controlling/kosten.pdf").status_code == 404
