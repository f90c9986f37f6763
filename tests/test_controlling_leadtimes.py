"""Lead times (p50/p90) and the automation rate, checked against figures computed by hand.

Time zone Europe/Berlin, period January 2025 (no daylight-saving change inside it).
PostgreSQL's percentile_cont(f) over n sorted values interpolates linearly at the
0-based position f × (n − 1): value[floor] + (pos − floor) × (value[ceil] − value[floor]).

Notebook (manual; n1–n3 had an approval step, n4 none), all fulfilled in January
(wait = approval waiting, fulfil = fulfilment, total; in days):
      submitted    approved     fulfilled    wait  fulfil  total
  n1  01-06 08:00  01-07 08:00  01-09 08:00   1     2       3
  n2  01-06 08:00  01-08 08:00  01-12 08:00   2     4       6
  n3  01-13 08:00  01-17 08:00  01-18 08:00   4     1       5
  n4  01-20 08:00  01-20 08:00  01-30 08:00   –    10      10   (Carol, another department)
VPN (automated, no approval steps):
  v1 submitted 01-07 10:00, fulfilled 10:05 → 5 min, automatically
  v2 submitted 01-08 10:00, fulfilled 10:01 → 1 min, automatically
  v3 submitted 01-09 10:00, fulfilled 14:00 → 4 h, reopened by hand (Carol's)
Not counted: a Notebook fulfilled 02-01 00:30 Berlin (= 01-31 23:30 UTC, February locally),
a rejected Notebook closed in January, a VPN request still in fulfilment.
"""

import csv
import datetime
import io
from datetime import timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import CostCentre
from metrics.controlling import selectors
from metrics.controlling.rollup import ALL, RELATIVE_ERROR, Scope
from metrics.controlling.tables import format_duration
from provisioning import services as provisioning_services
from provisioning.models import ProvisioningJob
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import (
    CatalogueItemFactory,
    CategoryFactory,
    DepartmentFactory,
    EmployeeFactory,
    UserFactory,
    request_row,
)
from tests.provisioning_support import add_group, add_person, automated_item, group_action

BERLIN = ZoneInfo("Europe/Berlin")
JANUARY = {"first": datetime.date(2025, 1, 1), "last": datetime.date(2025, 1, 1)}
PERIOD = {"period_from": "2025-01", "period_to": "2025-01"}


def at(month, day, hour, minute=0):
    return datetime.datetime(2025, month, day, hour, minute, tzinfo=BERLIN)


def days(value, hours=0, minutes=0):
    return timedelta(days=value, hours=hours, minutes=minutes)


class Data:
    def __init__(self, org):
        self.org = org
        # Own code: the factory's KS sequence must not run towards the fixture's "KS1000".
        cost_centre = CostCentre.objects.create(code="KS3000", name="Ordnungsamt")
        self.other_department = DepartmentFactory(code="FB20", cost_centre=cost_centre)
        self.carol = EmployeeFactory(department=self.other_department, user__username="carol")
        self.hardware = CategoryFactory(slug="hardware", name="Hardware")
        self.network = CategoryFactory(slug="netz", name="Netz")
        self.notebook = CatalogueItemFactory(name="Notebook", category=self.hardware)
        self.vpn = CatalogueItemFactory(name="VPN", category=self.network)
        alice, carol, nb, vpn = org.alice, self.carol, self.notebook, self.vpn
        rows = ServiceRequest.objects.bulk_create(
            [
                request_row(nb, alice, submitted=at(1, 6, 8), approved=at(1, 7, 8),
                            closed=at(1, 9, 8)),
                request_row(nb, alice, submitted=at(1, 6, 8), approved=at(1, 8, 8),
                            closed=at(1, 12, 8)),
                request_row(nb, alice, submitted=at(1, 13, 8), approved=at(1, 17, 8),
                            closed=at(1, 18, 8)),
                request_row(nb, carol, submitted=at(1, 20, 8), approved=at(1, 20, 8),
                            closed=at(1, 30, 8)),
                request_row(vpn, alice, submitted=at(1, 7, 10), approved=at(1, 7, 10),
                            closed=at(1, 7, 10, 5), automatically=True),
                request_row(vpn, alice, submitted=at(1, 8, 10), approved=at(1, 8, 10),
                            closed=at(1, 8, 10, 1), automatically=True),
                request_row(vpn, carol, submitted=at(1, 9, 10), approved=at(1, 9, 10),
                            closed=at(1, 9, 14)),
                # Not counted:
                request_row(nb, alice, submitted=at(1, 27, 8), approved=at(1, 28, 8),
                            closed=at(2, 1, 0, 30)),
                request_row(nb, alice, submitted=at(1, 27, 8), approved=None,
                            closed=at(1, 28, 8), state=RequestState.REJECTED),
                request_row(vpn, alice, submitted=at(1, 27, 8), approved=at(1, 27, 8),
                            closed=None, state=RequestState.IN_FULFILMENT),
            ]
        )  # fmt: skip
        # n1–n3 (and the two not counted) had one approval step.
        with_steps = [rows[0].pk, rows[1].pk, rows[2].pk, rows[7].pk, rows[8].pk]
        ServiceRequest.objects.filter(pk__in=with_steps).update(approval_steps=1)


@pytest.fixture
def data(org):
    return Data(org)


@pytest.fixture
def controller(org):
    return UserFactory(username="controller", groups=[org.controlling])


def near(actual, expected):
    """Percentiles come from histograms: within RELATIVE_ERROR of the exact value; other
    figures (counts, rates) exactly."""
    if isinstance(expected, tuple):
        return len(actual) == len(expected) and all(map(near, actual, expected))
    if isinstance(expected, timedelta):
        return abs(actual - expected) <= expected * RELATIVE_ERROR + timedelta(microseconds=1)
    return actual == expected


def by_service(rows):
    return {row.service or "ALL": row for row in rows}


@pytest.mark.django_db
def test_lead_time_percentiles_by_hand(data):
    rows = selectors.lead_times_per_service(ALL, **JANUARY)
    assert [row.service for row in rows] == ["Notebook", "VPN", ""]  # by name, total last
    assert rows[-1].is_total and rows[-1].item_id is None
    notebook, vpn, total = (by_service(rows)[k] for k in ("Notebook", "VPN", "ALL"))

    # Notebook approval waiting, only n1–n3 (with steps): [1, 2, 4] d.
    # p50: position 1 → 2 d.  p90: position 1.8 → 2 + 0.8 × (4 − 2) = 3.6 d = 3 d 14 h 24 min.
    assert (notebook.fulfilled, notebook.with_approval) == (4, 3)
    assert near(notebook.approval_p50, days(2))
    assert near(notebook.approval_p90, days(3, 14, 24))
    # Fulfilment [1, 2, 4, 10] d. p50: position 1.5 → 2 + 0.5 × 2 = 3 d.
    # p90: position 2.7 → 4 + 0.7 × 6 = 8.2 d = 8 d 4 h 48 min.
    assert near(notebook.fulfilment_p50, days(3))
    assert near(notebook.fulfilment_p90, days(8, 4, 48))
    # Total [3, 5, 6, 10] d. p50: 5 + 0.5 × 1 = 5.5 d. p90: 6 + 0.7 × 4 = 8.8 d = 8 d 19 h 12 min.
    assert near(notebook.total_p50, days(5, 12))
    assert near(notebook.total_p90, days(8, 19, 12))

    # VPN: no approval steps; fulfilment = total = [1 min, 5 min, 240 min].
    # p50: 5 min. p90: position 1.8 → 5 + 0.8 × 235 = 193 min = 3 h 13 min.
    assert (vpn.fulfilled, vpn.with_approval) == (3, 0)
    assert vpn.approval_p50 is None and vpn.approval_p90 is None
    assert near((vpn.fulfilment_p50, vpn.fulfilment_p90), (days(0, 0, 5), days(0, 3, 13)))
    assert near((vpn.total_p50, vpn.total_p90), (days(0, 0, 5), days(0, 3, 13)))

    # All services: approval waiting as the Notebook's (the only one with steps).
    assert (total.fulfilled, total.with_approval) == (7, 3)
    assert near((total.approval_p50, total.approval_p90), (days(2), days(3, 14, 24)))
    # Fulfilment [1 min, 5 min, 4 h, 1 d, 2 d, 4 d, 10 d]: p50 position 3 → 1 d;
    # p90 position 5.4 → 4 + 0.4 × 6 = 6.4 d = 6 d 9 h 36 min.
    assert near((total.fulfilment_p50, total.fulfilment_p90), (days(1), days(6, 9, 36)))
    # Total [1 min, 5 min, 4 h, 3 d, 5 d, 6 d, 10 d]: p50 → 3 d;
    # p90 position 5.4 → 6 + 0.4 × 4 = 7.6 d = 7 d 14 h 24 min.
    assert near((total.total_p50, total.total_p90), (days(3), days(7, 14, 24)))


@pytest.mark.django_db
def test_automation_rate_exact_fraction(data):
    rows = by_service(selectors.lead_times_per_service(ALL, **JANUARY))
    assert (rows["VPN"].automated, rows["VPN"].automation_rate) == (2, Fraction(2, 3))
    assert (rows["Notebook"].automated, rows["Notebook"].automation_rate) == (0, Fraction(0))
    assert (rows["ALL"].automated, rows["ALL"].automation_rate) == (2, Fraction(2, 7))


@pytest.mark.django_db
def test_filters_narrow_the_requests(data):
    """Carol's department: n4 (10 d, no steps) and v3 (4 h, by hand)."""
    requests = Scope(department_id=data.other_department.pk)
    rows = by_service(selectors.lead_times_per_service(requests, **JANUARY))
    assert set(rows) == {"Notebook", "VPN", "ALL"}
    assert (rows["Notebook"].fulfilled, rows["Notebook"].with_approval) == (1, 0)
    assert near(rows["Notebook"].total_p90, days(10))
    assert near((rows["VPN"].total_p50, rows["VPN"].automation_rate), (days(0, 4), Fraction(0)))
    requests = Scope(category_id=data.network.pk)
    assert [r.service for r in selectors.lead_times_per_service(requests, **JANUARY)] == [
        "VPN",
        "",
    ]


@pytest.mark.django_db
def test_period_is_local_months_of_fulfilment(data):
    february = {"first": datetime.date(2025, 2, 1), "last": datetime.date(2025, 2, 1)}
    rows = selectors.lead_times_per_service(ALL, **february)
    # Only the Notebook fulfilled 02-01 00:30 Berlin: 4 d 16.5 h after submission.
    assert [(r.service, r.fulfilled) for r in rows] == [("Notebook", 1), ("", 1)]
    assert near(rows[0].total_p50, days(4, 16, 30))
    assert selectors.lead_times_per_service(Scope(nothing=True), **february) == []
    empty = {"first": datetime.date(2024, 1, 1), "last": datetime.date(2024, 12, 1)}
    assert selectors.lead_times_per_service(ALL, **empty) == []


def test_durations_are_readable(settings):
    settings.LANGUAGE_CODE = "en"
    assert format_duration(timedelta(minutes=4, seconds=40)) == "5 min"
    assert format_duration(timedelta(hours=3, minutes=13)) == "3.2 h"
    assert format_duration(days(3, 14, 24)) == "3.6 days"


# --- pages -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_lead_time_page_shows_both_tables(client, data, controller):
    client.force_login(controller)
    response = client.get("/controlling/durchlaufzeiten/", PERIOD)
    assert response.status_code == 200
    body = response.content.decode()
    # Two tables, and the chart with its own data table.
    assert body.count("<caption>") == 3
    assert 'id="chart-lead-times' in body
    assert "Longest median lead time:" in body  # the chart's text alternative
    assert 'aria-current="page"' in body and "/controlling/zufriedenheit/" in body
    assert "3.6 days" in body  # Notebook approval waiting p90
    assert "3.2 h" in body  # VPN p90 (3 h 13 min)
    assert "66.7 %" in body and "28.6 %" in body  # 2/3 and 2/7
    assert "<strong>All services</strong>" in body


@pytest.mark.django_db
def test_lead_time_page_in_german(client, data, controller):
    client.force_login(controller)
    response = client.get("/controlling/durchlaufzeiten/", PERIOD, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    assert "66,7 %" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/controlling/durchlaufzeiten/", "/controlling/zufriedenheit/"])
def test_roles(client, data, org, controller, url):
    client.force_login(org.alice.user)
    assert client.get(url).status_code == 403
    client.force_login(org.manager.user)
    assert client.get(url).status_code == 403
    client.force_login(controller)
    assert client.get(url).status_code == 200
    client.force_login(org.admin.user)
    assert client.get(url).status_code == 200
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/controlling/durchlaufzeiten/", "/controlling/zufriedenheit/"])
@pytest.mark.parametrize(
    "params",
    [
        {"period_from": "abc"},
        {"period_from": "2025-13"},
        {"department": "x"},
        {"cost_centre": "999999"},
        {"category": "-1", "comments-page": "abc"},
        {"period_from": "2025-06", "period_to": "2025-01"},
        {"period_from": "1900-01", "period_to": "9999-12"},
        {"comments-page": "99999"},
    ],
)
def test_bad_filters_never_500(client, data, controller, url, params):
    client.force_login(controller)
    assert client.get(url, params).status_code == 200


def add_fulfilled(data, count):
    """More fulfilled requests of new services and people, spread over January.

    People join the two existing departments: new cost centres would move the factory's
    KS sequence towards the org fixture's "KS1000" for the tests after these.
    """
    rows = []
    departments = (data.org.department, data.other_department)
    for i in range(count):
        employee = EmployeeFactory(department=departments[i % 2])
        item = CatalogueItemFactory(category=data.hardware)
        submitted = at(1, 1 + i % 20, 9)
        rows.append(
            request_row(item, employee, submitted=submitted, approved=submitted,
                        closed=submitted + timedelta(hours=i + 1), automatically=bool(i % 2))
        )  # fmt: skip
    ServiceRequest.objects.bulk_create(rows)


@pytest.mark.django_db
def test_lead_time_query_count_constant(client, data, controller):
    client.force_login(controller)
    url = "/controlling/durchlaufzeiten/"
    counts = []
    for extra in (2, 40):
        add_fulfilled(data, extra)
        client.get(url, PERIOD)  # warm
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url, PERIOD)
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    assert ServiceRequest.objects.filter(state=RequestState.FULFILLED).count() == 8 + 42


# --- the "fulfilled automatically" flag, set by the services ----------------------------------


@pytest.fixture
def ldap(directory_settings, settings):
    settings.PROVISIONING_RETRY_BASE_SECONDS = 0.01
    settings.PROVISIONING_RETRY_MAX_SECONDS = 0.02
    return directory_settings


def _approve(req, user, callbacks):
    with callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=user)
    req.refresh_from_db()
    return req


@pytest.mark.django_db
def test_clean_automation_is_automatic(org, ldap, place_order, django_capture_on_commit_callbacks):
    add_person(ldap, org.bob)
    item = automated_item(org.service_desk, group_action(add_group(ldap, "vpn-users")))
    req = _approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    assert (req.state, req.fulfilled_automatically) == (RequestState.FULFILLED, True)
    assert req.approval_steps == 1


@pytest.mark.django_db
def test_submission_without_steps_records_none(org, place_order):
    item = CatalogueItemFactory(service_owner=org.service_desk)
    req = place_order(item, org.alice.user)
    assert (req.state, req.approval_steps) == (RequestState.APPROVED, 0)


@pytest.mark.django_db
def test_retry_after_failure_is_manual(org, ldap, place_order, django_capture_on_commit_callbacks):
    add_person(ldap, org.bob)
    item = automated_item(org.service_desk, group_action(ldap.group_dn("late")))
    req = _approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    assert req.state == RequestState.FAILED
    add_group(ldap, "late")
    job = ProvisioningJob.objects.get(request=req)
    with django_capture_on_commit_callbacks(execute=True):
        provisioning_services.job_retry(job_id=job.pk, user=org.admin.user)
    req.refresh_from_db()
    assert (req.state, req.fulfilled_automatically) == (RequestState.FULFILLED, False)


@pytest.mark.django_db
def test_job_marked_done_by_hand_is_manual(
    org, ldap, place_order, django_capture_on_commit_callbacks
):
    """A job marked done while the request is still in fulfilment (it was retrying)."""
    add_person(ldap, org.bob)
    item = automated_item(org.service_desk, group_action(add_group(ldap, "vpn-users")))
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    ldap.stop()
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
        callbacks[0]()  # the mail; provisioning step by step below
        provisioning_services.provision_request(request_id=req.pk)
        job = ProvisioningJob.objects.get(request=req)
        assert provisioning_services.job_run(job_id=job.pk) is not None  # retrying
    finally:
        ldap.start()
    with django_capture_on_commit_callbacks(execute=True):
        provisioning_services.job_mark_done(job_id=job.pk, user=org.admin.user, note="per Hand")
    req.refresh_from_db()
    assert (req.state, req.fulfilled_automatically) == (RequestState.FULFILLED, False)


@pytest.mark.django_db
def test_manual_fulfilment_is_manual(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    assert req.approval_steps == 1  # recorded at submission, for the approval waiting time
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    request_services.request_take(request_id=req.pk, user=org.fulfiller.user)
    request_services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    req.refresh_from_db()
    assert (req.state, req.fulfilled_automatically) == (RequestState.FULFILLED, False)


def test_rate_property_without_requests():
    row = selectors.LeadTimeRow(None, "", 0, 0, None, None, None, None, None, None, 0)
    assert row.automation_rate is None


# --- CSV -----------------------------------------------------------------------------------------


def csv_near(row, expected):
    """Counts and the rate exactly; the hours (columns 2-7) within the percentiles' error."""
    if len(row) != len(expected):
        return False
    for index, (value, wanted) in enumerate(zip(row, expected, strict=True)):
        if 2 <= index <= 7 and value and wanted:
            value, wanted = (float(x.replace(",", ".")) for x in (value, wanted))
            if abs(value - wanted) > wanted * RELATIVE_ERROR + 0.01:
                return False
        elif value != wanted:
            return False
    return True


def read_csv(response):
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


@pytest.mark.django_db
def test_lead_time_csv_read_back(client, data, controller):
    data.vpn.name = "=HYPERLINK(1)"
    data.vpn.save()
    client.force_login(controller)
    rows = read_csv(client.get("/controlling/durchlaufzeiten.csv", PERIOD))
    assert rows[0][:4] == [
        "Service",
        "Fulfilled requests",
        "With approval steps",
        "Approval waiting p50 (hours)",
    ]
    by_service = {r[0]: r[1:] for r in rows[1:]}
    # Notebook: waiting 2 d = 48 h, 3.6 d = 86.4 h; fulfilment 72 h, 196.8 h; total 132 h,
    # 211.2 h; none automatic.
    assert csv_near(by_service["Notebook"], [
        "4", "3", "48,00", "86,40", "72,00", "196,80", "132,00", "211,20", "0", "0,00"
    ])  # fmt: skip
    # VPN: 5 min = 0.0833… h, 193 min = 3.2166… h; 2 of 3 automatic = 66.67 %.
    assert csv_near(by_service["'=HYPERLINK(1)"], [
        "3", "0", "", "", "0,08", "3,22", "0,08", "3,22", "2", "66,67"
    ])  # fmt: skip
    assert by_service["All services"][-2:] == ["2", "28,57"]  # 2 of 7
    assert len(rows) == 4
    client.force_login(data.org.alice.user)
    assert client.get("/controlling/durchlaufzeiten.csv").status_code == 403


@pytest.mark.django_db
def test_satisfaction_csv_bad_filter_is_empty_not_500(client, data, controller):
    client.force_login(controller)
    rows = read_csv(client.get("/controlling/zufriedenheit.csv", {"period_from": "abc"}))
    assert rows[0][:4] == ["Service", "Fulfilled requests", "Ratings", "Average score"]
    assert len(rows) == 1
    rows = read_csv(client.get("/controlling/zufriedenheit.csv", PERIOD))
    assert [r[:4] for r in rows[1:]] == [
        ["Notebook", "4", "0", ""],
        ["VPN", "3", "0", ""],
        ["All services", "7", "0", ""],
    ]
