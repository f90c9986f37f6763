"""Issue 11, order forms that guide and formats people read: the person picker speaks of
what was typed, amounts and dates in the active language's format, English day-first,
the job log in the portal's language and local time, charts with many bars readable."""

import datetime
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone, translation
from django.utils.formats import date_format

from catalogue.choices import FieldType
from catalogue.forms import OrderForm
from metrics.charts import Series, bar_chart
from provisioning.choices import ActionKind, Direction, JobState
from provisioning.models import ProvisioningJob
from tests.factories import CatalogueItemFactory, EmployeeFactory, FormFieldFactory

SVG = "{http://www.w3.org/2000/svg}"


# --- the person picker ---------------------------------------------------------------------


@pytest.fixture
def person_item(org):
    item = CatalogueItemFactory(slug="ablage", service_owner=org.service_desk)
    FormFieldFactory(item=item, key="owner", label="Verantwortlich", field_type=FieldType.PERSON)
    return item


def picked(item, org, value):
    form = OrderForm(
        {"item_version": str(item.version), "f_owner": value},
        item=item,
        requester_employee=org.alice,
    )
    valid = form.is_valid()
    return valid, form


@pytest.mark.django_db
def test_a_typed_name_is_found_or_the_error_speaks_of_the_name(org, person_item):
    anna = EmployeeFactory(
        department=org.department, user__first_name="Anna", user__last_name="Schmidt"
    )
    valid, form = picked(person_item, org, "anna  schmidt")
    assert valid, form.errors
    assert form.cleaned_data["f_owner"] == anna

    valid, form = picked(person_item, org, "Berta Nirgendwo")
    assert not valid
    assert form.errors["f_owner"] == [
        "No active employee is called “Berta Nirgendwo”. Please pick a person from the list "
        "or enter their personnel number."
    ]
    assert "personnel number “" not in form.errors["f_owner"][0]

    EmployeeFactory(department=org.department, user__first_name="Anna", user__last_name="Schmidt")
    valid, form = picked(person_item, org, "Anna Schmidt")
    assert not valid
    assert form.errors["f_owner"][0].startswith("Several employees are called “Anna Schmidt”.")


@pytest.mark.django_db
def test_a_typed_number_still_speaks_of_the_personnel_number(org, person_item):
    valid, form = picked(person_item, org, "p99999")
    assert not valid
    assert form.errors["f_owner"] == ["No active employee with the personnel number “p99999”."]
    with translation.override("de"):
        valid, form = picked(person_item, org, "Berta Nirgendwo")
        assert (
            "Keine aktive beschäftigte Person heißt „Berta Nirgendwo“" in form.errors["f_owner"][0]
        )


@pytest.mark.django_db
def test_an_expert_pattern_error_repeats_the_fields_explanation(org):
    item = CatalogueItemFactory(slug="aktenzeichen")
    FormFieldFactory(
        item=item,
        key="az",
        label="Aktenzeichen",
        pattern=r"[0-9]{2}\.[0-9]{3}",
        help_text="Zwei Ziffern, Punkt, drei Ziffern, z. B. 32.101",
    )
    form = OrderForm(
        {"item_version": str(item.version), "f_az": "32101"},
        item=item,
        requester_employee=org.alice,
    )
    assert not form.is_valid()
    assert form.errors["f_az"] == [
        "The answer does not have the required format: Zwei Ziffern, Punkt, drei Ziffern, "
        "z. B. 32.101"
    ]


# --- amounts and dates ---------------------------------------------------------------------


def render(source, **context):
    return Template("{% load portal %}" + source).render(Context(context))


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", "1.149,00 €"), ("en", "€1,149.00")],
)
def test_money_has_grouped_thousands_and_the_euro_sign_in_place(language, expected):
    with translation.override(language):
        assert render("{{ v|money }}", v=Decimal("1149")) == expected
        assert render("{{ v|money }}", v=Decimal("0.5")).replace("\xa0", " ") in (
            "0,50 €",
            "€0.50",
        )


@pytest.mark.django_db
def test_the_price_on_the_item_page_is_german(client, org):
    CatalogueItemFactory(slug="teuer", price_once=Decimal("1149.00"), price_monthly=Decimal("0"))
    client.force_login(org.alice.user)
    with translation.override("de"):
        body = client.get("/leistung/teuer/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "1.149,00 € einmalig" in body
    assert "1149,00" not in body


def test_dates_german_and_english_day_first():
    day = datetime.date(2026, 12, 7)
    with translation.override("de"):
        assert date_format(day, "SHORT_DATE_FORMAT") == "07.12.2026"
        assert render('{{ v|answer_display:"date" }}', v="2026-12-07") == "07.12.2026"
    with translation.override("en"):
        assert date_format(day, "SHORT_DATE_FORMAT") == "07/12/2026"
        assert date_format(day, "DATE_FORMAT") == "7 Dec 2026"
        moment = datetime.datetime(2026, 12, 4, 20, 54)
        assert date_format(moment, "SHORT_DATETIME_FORMAT") == "04/12/2026 20:54"
        assert render('{{ v|answer_display:"date" }}', v="2026-12-07") == "07/12/2026"
    # A text answer that looks like a date stays as typed; a broken stored date too.
    assert render('{{ v|answer_display:"text" }}', v="2026-12-07") == "2026-12-07"
    assert render('{{ v|answer_display:"date" }}', v="kein Datum") == "kein Datum"


@pytest.mark.django_db
def test_english_form_reads_day_first_dates(org):
    item = CatalogueItemFactory(slug="termin")
    FormFieldFactory(item=item, key="day", label="Day", field_type=FieldType.DATE)
    with translation.override("en"):
        form = OrderForm(
            {"item_version": str(item.version), "f_day": "07/12/2030"},
            item=item,
            requester_employee=org.alice,
        )
        assert form.is_valid(), form.errors
    assert form.cleaned_data["f_day"] == datetime.date(2030, 12, 7)  # 7 December, not 12 July


# --- the job log ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_job_log_lines_in_german_and_local_time(org, settings, place_order, manual_item):
    """The log is written in the portal's language whoever triggers the line, stamped in
    Europe/Berlin (20:54 where UTC says 19:54)."""
    settings.LANGUAGE_CODE = "de"
    request = place_order(manual_item, org.alice.user)
    job = ProvisioningJob.objects.create(
        request=request,
        direction=Direction.GRANT,
        kind=ActionKind.ADD_TO_GROUP,
        user_uid="p1",
        target_dn="cn=vpn",
        dialect="openldap",
    )
    winter_evening = datetime.datetime(2026, 12, 4, 19, 54, 7, tzinfo=datetime.UTC)
    # An English-speaking admin's request; the log stays German.
    with translation.override("en"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: winter_evening)
        job.fail(error="Gruppe fehlt")
        job.retry(user=org.admin.user)
    lines = job.log.splitlines()
    assert lines == [
        "04.12.2026 20:54:07 fehlgeschlagen: Gruppe fehlt",
        f"04.12.2026 20:54:07 Wiederholung angefordert von {org.admin.user.get_username()}",
    ]
    assert job.state == JobState.PENDING


# --- charts with many bars -------------------------------------------------------------------


def test_many_services_become_horizontal_rows_with_every_name():
    names = [f"Leistung mit langem Namen Nummer {i}" for i in range(35)]
    chart = bar_chart(
        chart_id="lead",
        title="Durchlaufzeit",
        x_labels=names,
        series=[Series("p50", [i / 2 for i in range(35)]), Series("p90", list(range(35)))],
        y_label="Tage",
        decimals=1,
        horizontal=True,
    )
    root = ET.fromstring(str(chart.svg))  # noqa: S314 - the portal's own markup
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for name in names:
        assert name in texts  # every label written out, none dropped or cut
    assert len(root.findall(f"{SVG}rect")) >= 70  # one bar per service and series
    _width, height = (float(v) for v in root.get("viewBox").split()[2:])
    assert height > 35 * 2 * 12  # the chart grows with its rows instead of squeezing them
    assert root.find(f"{SVG}title").text == "Durchlaufzeit"


def test_lead_time_chart_is_horizontal():
    from metrics.controlling.figures import lead_time_chart
    from metrics.controlling.selectors import LeadTimeRow

    fields = LeadTimeRow.__dataclass_fields__
    rows = []
    for i in range(35):
        values = dict.fromkeys(fields)
        values.update(item_id=i + 1, service=f"Dienst {i}")
        values.update(total_p50=datetime.timedelta(days=i), total_p90=datetime.timedelta(days=i))
        rows.append(LeadTimeRow(**values))
    chart = lead_time_chart(rows)
    assert chart.kind == "hbar"
    assert re.search(r"Dienst 34<", str(chart.svg))
    assert chart.x_labels[:2] == ["Dienst 34", "Dienst 33"]  # the longest median first


@pytest.mark.django_db
def test_favicon_ico_is_no_404(client):
    """Pages name the SVG icon; a client asking for /favicon.ico, logged in or not, gets it."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response.url.endswith("favicon.svg")


def test_the_demand_chart_starts_with_the_first_orders_not_with_zero_months():
    from metrics.controlling.figures import demand_chart
    from metrics.controlling.forecast import Forecast
    from metrics.controlling.selectors import ForecastRow

    forecast = Forecast(
        months=[datetime.date(2026, 12, 1), datetime.date(2027, 1, 1)],
        values=[4.0, 5.0],
        slope=0.5,
        intercept=1.0,
        seasonal=False,
        indices={},
    )
    row = ForecastRow(
        item_id=1,
        service="Notebook",
        category="Hardware",
        first_month=datetime.date(2025, 11, 1),
        history=[0] * 9 + [2, 3, 4, 0],  # nine empty months before the first order
        forecast=forecast,
    )
    chart = demand_chart([row], datetime.date(2025, 11, 1), datetime.date(2026, 11, 1))
    assert chart.x_labels[0] == "08/2026"  # the first month with orders
    assert chart.x_labels[-2:] == ["12/2026", "01/2027"]
    assert chart.series[0].values[:4] == [2, 3, 4, 0]  # a month without orders after the start
