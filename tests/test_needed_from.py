"""Issue 11: date fields with bounds, and a "needed from" date that schedules automated
provisioning for that day, end to end against the private slapd.

The job is recorded with the approval (the outbox) and released by the sweeper from the
start of the day in Europe/Berlin; the day is simulated by moving ``not_before`` into the
past, never by waiting.
"""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.formats import date_format

from catalogue.choices import FieldType
from catalogue.forms import OrderForm
from provisioning import services
from provisioning.choices import ActionKind, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app import services as request_services
from requests_app.choices import EventKind, RequestState
from requests_app.models import ServiceRequest
from tests.factories import CatalogueItemFactory, FormFieldFactory
from tests.provisioning_support import (
    add_group,
    add_person,
    attribute,
    automated_item,
    group_action,
    members,
)

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def days(n):
    return today() + datetime.timedelta(days=n)


def short(day):
    return date_format(day, "SHORT_DATE_FORMAT")


# --- bounds of date fields -------------------------------------------------------------------


@pytest.fixture
def dated(org):
    item = CatalogueItemFactory(slug="lieferung", service_owner=org.service_desk)
    FormFieldFactory(
        item=item, key="ab", label="Benötigt ab", field_type=FieldType.DATE, needed_from=True
    )
    FormFieldFactory(
        item=item,
        key="liefertermin",
        label="Liefertermin",
        field_type=FieldType.DATE,
        earliest_days=5,
        latest_days=90,
        required=False,
        position=2,
    )
    return item


def form_for(item, org, **answers):
    data = {"item_version": str(item.version)}
    data.update({f"f_{key}": value for key, value in answers.items()})
    return OrderForm(data, item=item, requester_employee=org.alice)


def test_a_needed_from_date_cannot_lie_in_the_past(org, dated):
    form = form_for(dated, org, ab="2020-12-07")
    assert not form.is_valid()
    assert form.errors["f_ab"] == [
        f"The date cannot lie in the past; please choose {short(today())} or later."
    ]
    assert form_for(dated, org, ab=today().isoformat()).is_valid()


def test_a_lead_time_and_a_latest_date_are_named_in_help_error_and_picker(org, dated):
    form = form_for(dated, org, ab=days(1).isoformat(), liefertermin=days(2).isoformat())
    assert not form.is_valid()
    assert form.errors["f_liefertermin"] == [
        f"Please choose {short(days(5))} or later: this needs 5 days of lead time."
    ]
    form = form_for(dated, org, ab=days(1).isoformat(), liefertermin=days(91).isoformat())
    assert form.errors["f_liefertermin"] == [f"Please choose {short(days(90))} or earlier."]
    assert form_for(dated, org, ab=days(1).isoformat(), liefertermin=days(5).isoformat()).is_valid()
    # Said before anyone types: the help text, and the browser's picker limits.
    blank = OrderForm(item=dated, requester_employee=org.alice)
    field = blank["f_liefertermin"]
    assert field.help_text == f"A date from {short(days(5))} to {short(days(90))}."
    html = str(field)
    assert f'min="{days(5).isoformat()}"' in html and f'max="{days(90).isoformat()}"' in html
    assert f'min="{today().isoformat()}"' in str(blank["f_ab"])
    with translation.override("de"):
        form = form_for(dated, org, ab="2020-12-07")
        form.is_valid()
        assert form.errors["f_ab"] == [
            "Das Datum darf nicht in der Vergangenheit liegen; bitte wählen Sie "
            f"{today():%d.%m.%Y} oder später."
        ]


def test_the_order_page_refuses_a_past_date_and_shows_the_bound(client, org, dated):
    client.force_login(org.alice.user)
    response = client.post(
        f"/leistung/{dated.slug}/bestellen/",
        {"item_version": dated.version, "f_ab": "2020-12-07", "justification": ""},
    )
    assert response.status_code == 400
    assert "The date cannot lie in the past" in response.content.decode()
    assert not ServiceRequest.objects.exists()


def test_bounds_only_on_date_fields_and_one_needed_from_date(org, dated):
    text = FormFieldFactory.build(
        item=dated, key="notiz", label="Notiz", field_type=FieldType.TEXT, earliest_days=1
    )
    with pytest.raises(ValidationError) as caught:
        text.full_clean()
    assert "earliest_days" in caught.value.message_dict
    second = FormFieldFactory.build(
        item=dated, key="bis", label="Bis", field_type=FieldType.DATE, needed_from=True
    )
    with pytest.raises(ValidationError) as caught:
        second.full_clean()
    assert "Only one field of a form can be the 'needed from' date." in str(caught.value)
    backwards = FormFieldFactory.build(
        item=dated, key="bis", label="Bis", field_type=FieldType.DATE, earliest_days=9,
        latest_days=3,
    )  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        backwards.full_clean()
    assert "latest_days" in caught.value.message_dict


# --- scheduled provisioning ------------------------------------------------------------------


@pytest.fixture
def ldap(provisioning_directory):
    return provisioning_directory


@pytest.fixture
def scheduled_item(org, ldap):
    """An automated item of two actions (account attribute, then group) with a 'needed
    from' date field: the second job must follow the first on the day, as always."""
    group = add_group(ldap, "fachverfahren-users")
    item = automated_item(
        org.service_desk,
        (ActionKind.SET_ATTRIBUTES, "", "title = Sachbearbeitung"),
        group_action(group),
        name="Fachverfahren",
        slug="fachverfahren",
    )
    FormFieldFactory(
        item=item,
        key="beginn",
        label="Benötigt ab",
        field_type=FieldType.DATE,
        needed_from=True,
        required=False,
    )
    return item, group


def order(client, item, user, **answers):
    client.force_login(user)
    data = {"item_version": item.version, "justification": ""}
    data.update({f"f_{key}": value for key, value in answers.items()})
    response = client.post(f"/leistung/{item.slug}/bestellen/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ServiceRequest.objects.latest("pk")


def test_needed_from_a_later_day_provisions_on_that_day(
    client, org, ldap, scheduled_item, django_capture_on_commit_callbacks
):
    item, group = scheduled_item
    alice_dn = add_person(ldap, org.alice).lower()
    day = days(2)
    req = order(client, item, org.alice.user, beginn=day.isoformat())
    assert req.needed_from == day
    page = client.get(f"/antraege/{req.pk}/").content.decode()
    assert f"<dt>Needed from</dt><dd>{short(day)}</dd>" in page

    # Approval: the jobs are recorded in its transaction, and nothing is sent to a worker.
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.state == RequestState.IN_FULFILMENT
    jobs = list(ProvisioningJob.objects.filter(request=req).order_by("position"))
    assert [job.state for job in jobs] == [JobState.PENDING, JobState.PENDING]
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    assert jobs[0].not_before == start and jobs[0].due_at is None
    assert jobs[1].not_before is None and jobs[1].due_at is None
    assert alice_dn not in members(ldap, group)
    assert attribute(ldap, alice_dn, "title") == []
    event = req.events.get(kind=EventKind.START_AUTOMATION)
    assert event.comment == f"Directory provisioning scheduled for {short(day)}."

    # Before the day: the sweeper leaves it, a stray message does not run it.
    with django_capture_on_commit_callbacks(execute=True):
        services.pipeline_sweep()
        assert services.job_run(job_id=jobs[0].pk) is None
    jobs[0].refresh_from_db()
    assert (jobs[0].state, jobs[0].attempts) == (JobState.PENDING, 0)
    assert alice_dn not in members(ldap, group)

    # The day has come (simulated): the sweeper (beat, every 30 s) releases the first job,
    # the worker runs it, its success enqueues the second.
    ProvisioningJob.objects.filter(pk=jobs[0].pk).update(
        not_before=timezone.now() - datetime.timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.pipeline_sweep()
    assert alice_dn in members(ldap, group)
    assert attribute(ldap, alice_dn, "title") == ["Sachbearbeitung"]
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    assert set(ProvisioningJob.objects.filter(request=req).values_list("state", flat=True)) == {
        JobState.SUCCEEDED
    }
    assert Entitlement.objects.get(request=req).state == EntitlementState.ACTIVE
    # Released once: a second sweep finds nothing to do.
    assert services.release_scheduled() == []


def test_needed_from_today_or_not_given_provisions_at_once(
    client, org, ldap, scheduled_item, django_capture_on_commit_callbacks
):
    item, group = scheduled_item
    alice_dn = add_person(ldap, org.alice).lower()
    for answer in (today().isoformat(), ""):
        req = order(client, item, org.alice.user, beginn=answer)
        with django_capture_on_commit_callbacks(execute=True):
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
        req.refresh_from_db()
        assert req.state == RequestState.FULFILLED, answer
        assert not ProvisioningJob.objects.filter(request=req, not_before__isnull=False).exists()
    assert alice_dn in members(ldap, group)


def test_the_scheduled_job_survives_a_lost_message(
    client, org, ldap, scheduled_item, django_capture_on_commit_callbacks
):
    """The release's enqueue is lost (broker away after the commit): the job is due now and
    the ordinary overdue sweep delivers it later, as any lost job."""
    item, group = scheduled_item
    alice_dn = add_person(ldap, org.alice).lower()
    req = order(client, item, org.alice.user, beginn=days(1).isoformat())
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    first = ProvisioningJob.objects.filter(request=req).order_by("position").first()
    ProvisioningJob.objects.filter(pk=first.pk).update(
        not_before=timezone.now() - datetime.timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=False):  # the message never leaves
        assert services.release_scheduled() == [first.pk]
    first.refresh_from_db()
    assert first.state == JobState.PENDING and first.due_at is not None
    later = timezone.now() + datetime.timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.pipeline_sweep(now=later)
    assert counts["overdue_job"] == 1
    assert alice_dn in members(ldap, group)


def test_the_api_orders_with_the_date_bounds_and_shows_needed_from(org, dated, api_as):
    alice = api_as(org.alice)
    body = {"item": dated.slug, "item_version": dated.version, "justification": ""}
    past = alice.post("/api/v1/requests/", {**body, "answers": {"ab": "2020-12-07"}}, format="json")
    assert past.status_code == 400
    assert "The date cannot lie in the past" in str(past.json())
    day = days(3)
    placed = alice.post(
        "/api/v1/requests/", {**body, "answers": {"ab": day.isoformat()}}, format="json"
    )
    assert placed.status_code == 201, placed.json()
    detail = alice.get(f"/api/v1/requests/{placed.json()['id']}/").json()
    assert detail["needed_from"] == day.isoformat()


def test_a_later_needed_from_date_moves_the_sla_deadline(org, place_order, manual_item):
    manual_item.sla_target_days = 2
    manual_item.save()
    FormFieldFactory(
        item=manual_item, key="ab", label="Benötigt ab", field_type=FieldType.DATE,
        needed_from=True,
    )  # fmt: skip
    manual_item.refresh_from_db()
    far = days(60)
    req = place_order(manual_item, org.alice.user, answers={"ab": far.isoformat()})
    assert req.needed_from == far
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.fulfilment_due_on == far
    with translation.override("de"):
        assert short(far) == f"{far:%d.%m.%Y}"
