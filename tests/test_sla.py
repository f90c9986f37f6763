"""Fulfilment deadlines from an item's SLA target: the due date, the warning before it and
the escalation after it (each once), and SLA compliance in controlling (page and CSV)."""

import csv
import datetime
import io
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from itportal.workdays import add_working_days
from notifications.models import OutgoingMail
from requests_app import services, sla
from requests_app.choices import EventKind
from requests_app.models import ServiceRequest
from tests.factories import EmployeeFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
LINE_MANAGER = {"approver_kind": "line_manager"}


@pytest.fixture(autouse=True)
def land(settings):
    settings.PORTAL_HOLIDAY_SUBDIVISION = "NW"
    settings.PORTAL_SLA_WARNING_WORKING_DAYS = 1


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (datetime.date(2026, 12, 4), 0, datetime.date(2026, 12, 4)),
        (datetime.date(2026, 12, 4), 1, datetime.date(2026, 12, 7)),  # Friday -> Monday
        (datetime.date(2026, 12, 23), 2, datetime.date(2026, 12, 28)),  # over Christmas
        (datetime.date(2026, 6, 2), 3, datetime.date(2026, 6, 8)),  # Corpus Christi (NW), 4 June
    ],
)
def test_add_working_days(start, days, due):
    assert add_working_days(start, days) == due


@pytest.fixture
def item(org):
    return make_item(org.service_desk, LINE_MANAGER, name="Monitor", sla_target_days=3)


def test_due_date_is_set_when_approved(org, item, place_order):
    req = place_order(item, org.alice.user)
    assert req.fulfilment_due_on is None
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.fulfilment_due_on == add_working_days(timezone.localdate(req.approved_at), 3)
    # An item without a target gives no deadline.
    plain = make_item(org.service_desk, LINE_MANAGER, name="Maus", slug="maus")
    other = place_order(plain, org.alice.user)
    services.request_approve(request_id=other.pk, user=org.manager.user)
    other.refresh_from_db()
    assert other.fulfilment_due_on is None


def test_the_target_is_kept_with_the_order(org, item, place_order):
    req = place_order(item, org.alice.user)
    item.sla_target_days = 20
    item.save()
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.fulfilment_due_on == add_working_days(timezone.localdate(req.approved_at), 3)


def approved(org, item, place_order, due_on):
    req = place_order(item, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    ServiceRequest.objects.filter(pk=req.pk).update(fulfilment_due_on=due_on)
    return req


def mails(kind):
    return sorted(m.recipient.username for m in OutgoingMail.objects.filter(kind=kind))


def test_warning_before_and_escalation_after_each_once(org, item, place_order):
    now = datetime.datetime(2026, 12, 7, 9, tzinfo=BERLIN)  # a Monday
    colleague = EmployeeFactory(department=org.department, user__username="desk2")
    colleague.user.groups.add(org.service_desk)
    tomorrow = approved(org, item, place_order, datetime.date(2026, 12, 8))
    later = approved(org, item, place_order, datetime.date(2026, 12, 10))
    overdue = approved(org, item, place_order, datetime.date(2026, 12, 4))
    done = approved(org, item, place_order, datetime.date(2026, 12, 1))
    services.request_take(request_id=done.pk, user=org.fulfiller.user)
    services.request_complete(request_id=done.pk, user=org.fulfiller.user, note="ok")

    assert sla.sla_warn_and_escalate(now=now) == {"warned": 1, "escalated": 1}
    assert mails(sla.WARNING) == ["desk", "desk2"]
    assert mails(sla.BREACHED) == ["admin", "desk", "desk2"]
    tomorrow.refresh_from_db()
    overdue.refresh_from_db()
    assert tomorrow.sla_warned_at == now and overdue.sla_escalated_at == now
    assert overdue.events.filter(kind=EventKind.ESCALATE).count() == 1
    assert "04.12.2026" in overdue.events.get(kind=EventKind.ESCALATE).comment
    # Once: the next runs add nothing, until the other request's turn comes.
    assert sla.sla_warn_and_escalate(now=now) == {"warned": 0, "escalated": 0}
    assert sla.sla_warn_and_escalate(now=now + datetime.timedelta(days=2)) == {
        "warned": 1,
        "escalated": 1,  # "tomorrow" is overdue now; "later" is due on Thursday
    }
    later.refresh_from_db()
    assert later.sla_warned_at is not None


def test_the_assignee_is_told_too(org, item, place_order):
    req = approved(org, item, place_order, datetime.date(2026, 12, 8))
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    org.fulfiller.user.groups.clear()  # moved to another team, still on the request
    sla.sla_warn_and_escalate(now=datetime.datetime(2026, 12, 7, 9, tzinfo=BERLIN))
    assert mails(sla.WARNING) == ["desk"]


def test_the_beat_task_is_routed(settings):
    assert settings.CELERY_TASK_ROUTES["requests_app.tasks.sla_warn_and_escalate"]


# --- controlling ----------------------------------------------------------------------------


@pytest.fixture
def history(org, item, place_order):
    """Three Monitor requests fulfilled in November 2026: two on time, one late."""
    for closed, due in (
        (datetime.datetime(2026, 11, 3, 10, tzinfo=BERLIN), datetime.date(2026, 11, 3)),
        (datetime.datetime(2026, 11, 10, 23, 30, tzinfo=BERLIN), datetime.date(2026, 11, 10)),
        (datetime.datetime(2026, 11, 20, 9, tzinfo=BERLIN), datetime.date(2026, 11, 19)),
    ):
        req = approved(org, item, place_order, due)
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
        services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
        ServiceRequest.objects.filter(pk=req.pk).update(closed_at=closed)
    # Fulfilled without a deadline: not counted.
    plain = make_item(org.service_desk, LINE_MANAGER, name="Maus", slug="maus")
    req = place_order(plain, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")


PERIOD = "period_from=2026-11&period_to=2026-11"


def test_sla_compliance_page(org, history, client):
    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    client.force_login(controller.user)
    page = client.get(f"/controlling/sla/?{PERIOD}")
    assert page.status_code == 200
    rows = page.context["table"].data.data
    assert [(r.service, r.fulfilled, r.met, r.missed) for r in rows] == [
        ("Monitor", 3, 2, 1),
        ("", 3, 2, 1),
    ]
    assert rows[0].share == "66,7 %"
    client.force_login(org.alice.user)
    assert client.get(f"/controlling/sla/?{PERIOD}").status_code == 403


def test_sla_compliance_csv_and_filters(org, history, client):
    client.force_login(org.admin.user)
    response = client.get(f"/controlling/sla.csv?{PERIOD}")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text), delimiter=";"))
    # No response target on this item: its response columns count nothing.
    assert lines[1] == ["2026-11", "Monitor", "3", "2", "1", "66,7 %", "0", "0", "0", ""]
    assert lines[2][2:] == ["3", "2", "1", "66,7 %", "0", "0", "0", ""]
    elsewhere = EmployeeFactory().department  # a department that ordered nothing
    filtered = client.get(f"/controlling/sla/?{PERIOD}&department={elsewhere.pk}")
    assert list(filtered.context["table"].data.data) == []
    ours = client.get(f"/controlling/sla/?{PERIOD}&department={org.department.pk}")
    assert len(ours.context["table"].data.data) == 2
    bad = client.get("/controlling/sla/?period_from=banana")
    assert bad.status_code == 200
    assert list(bad.context["table"].data.data) == []


def test_due_dates_follow_a_changed_calendar(org, item, place_order, settings):
    """Approved on Monday 1 June 2026 with a target of 3 working days: in NW Corpus Christi
    (Thursday 4 June) is a holiday, due Friday; in Berlin it is not, due Thursday. Changing
    the Land moves the open request's deadline, not a closed one's, and the beat task does
    it before it warns."""
    from requests_app import tasks

    monday = datetime.datetime(2026, 6, 1, 9, tzinfo=BERLIN)
    open_req, closed = (approved(org, item, place_order, None) for _n in range(2))
    ServiceRequest.objects.filter(pk__in=[open_req.pk, closed.pk]).update(approved_at=monday)
    for req in (open_req, closed):
        req.refresh_from_db()
        sla.set_due_date(req)
    assert open_req.fulfilment_due_on == datetime.date(2026, 6, 5)
    services.request_take(request_id=closed.pk, user=org.fulfiller.user)
    services.request_complete(request_id=closed.pk, user=org.fulfiller.user, note="ok")
    assert sla.recompute_due_dates() == 0  # nothing changed yet
    settings.PORTAL_HOLIDAY_SUBDIVISION = "BE"
    result = tasks.sla_warn_and_escalate.apply().get()
    assert result["recomputed"] == 1
    open_req.refresh_from_db()
    closed.refresh_from_db()
    assert open_req.fulfilment_due_on == datetime.date(2026, 6, 4)
    assert closed.fulfilment_due_on == datetime.date(2026, 6, 5)
    assert sla.recompute_due_dates() == 0
    # A request needed from a later day stays due on that day.
    ServiceRequest.objects.filter(pk=open_req.pk).update(needed_from=datetime.date(2026, 7, 1))
    assert sla.recompute_due_dates() == 1
    open_req.refresh_from_db()
    assert open_req.fulfilment_due_on == datetime.date(2026, 7, 1)


@pytest.mark.parametrize("target", [None, 0, "", "x", -2])
def test_no_deadline_without_a_usable_target(target):
    assert sla.due_on(timezone.now(), target, None) is None


def test_warnings_at_half_and_three_quarters_breach_after(org, item, place_order):
    """Approved Monday 7 December 2026, due Thursday 17 December: eight working days.
    At half (Friday 11th) the first warning, at three quarters (Tuesday 15th) the second,
    after the due day the escalation; each once."""
    req = approved(org, item, place_order, datetime.date(2026, 12, 17))
    ServiceRequest.objects.filter(pk=req.pk).update(
        approved_at=datetime.datetime(2026, 12, 7, 9, tzinfo=BERLIN)
    )

    def run(day):
        now = datetime.datetime(2026, 12, day, 10, tzinfo=BERLIN)
        counts = sla.sla_warn_and_escalate(now=now)
        return counts["warned"], sla.sla_warn_at_half(now=now), counts["escalated"]

    assert run(9) == (0, 0, 0)  # a quarter
    assert run(11) == (0, 1, 0)  # half
    assert run(11) == (0, 0, 0)
    assert run(14) == (0, 0, 0)
    assert run(15) == (1, 0, 0)  # three quarters
    assert run(16) == (0, 0, 0)
    assert run(18) == (0, 0, 1)  # breached
    req.refresh_from_db()
    assert req.sla_half_warned_at and req.sla_warned_at and req.sla_escalated_at
    assert mails(sla.WARNING) == ["desk", "desk"]
    assert "Half of the time" in req.events.filter(kind=EventKind.REMIND).first().comment
