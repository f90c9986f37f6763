"""SLA response and resolution targets in working time, paused while a request waits for the
requester or a supplier: hold periods as rows, the due date moved by their working time,
warnings at 50 % and 75 % and the breach at 100 % (each once), with the clock moved by hand."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from itportal.exceptions import ActionConflict
from itportal.workdays import add_working_seconds, working_seconds_between
from notifications.models import OutgoingMail
from requests_app import services, sla
from requests_app.choices import EventKind, HoldReason
from requests_app.models import RequestHold, ServiceRequest
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
LINE_MANAGER = {"approver_kind": "line_manager"}


def at(day, hour, minute=0, month=12):
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def land(settings):
    settings.PORTAL_HOLIDAY_SUBDIVISION = "NW"
    settings.PORTAL_SLA_WARNING_WORKING_DAYS = 0
    settings.PORTAL_BUSINESS_HOURS_START = "07:30"
    settings.PORTAL_BUSINESS_HOURS_END = "16:00"


@pytest.fixture
def clock(monkeypatch):
    """Time travel: every ``timezone.now()`` answers the time set here."""

    class Clock:
        now = at(7, 9)  # Monday 7 December 2026, 09:00

        def set(self, value):
            self.now = value

    the_clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: the_clock.now)
    return the_clock


@pytest.fixture
def item(org):
    return make_item(
        org.service_desk,
        LINE_MANAGER,
        name="Monitor",
        sla_target_days=8,
        response_target_hours=4,
    )


@pytest.fixture
def approved(org, item, place_order, clock):
    req = place_order(item, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    return req


# --- working time ------------------------------------------------------------------------


def test_working_seconds_count_business_hours_of_working_days():
    # Friday 4 Dec 15:00 to Monday 7 Dec 08:30: one hour on Friday, one on Monday.
    assert working_seconds_between(at(4, 15), at(7, 8, 30)) == 2 * 3600
    # Before opening and after closing count nothing; a holiday (Christmas) neither.
    assert working_seconds_between(at(7, 6), at(7, 7, 30)) == 0
    assert working_seconds_between(at(24, 16), at(28, 7, 30)) == 0
    assert add_working_seconds(at(4, 15), 2 * 3600) == at(7, 8, 30)
    # Lands on a closing time when it fits exactly, not on the next opening.
    assert add_working_seconds(at(7, 15), 3600) == at(7, 16)
    assert add_working_seconds(at(7, 15), 0) == at(7, 15)


def test_business_hours_are_configurable(settings):
    settings.PORTAL_BUSINESS_HOURS_START = "08:00"
    settings.PORTAL_BUSINESS_HOURS_END = "12:00"
    assert working_seconds_between(at(7, 7), at(8, 23)) == 8 * 3600


# --- targets at approval --------------------------------------------------------------------


def test_both_targets_are_fixed_at_the_approval(approved):
    # Approved Monday 09:00: four working hours later is 13:00; eight working days later
    # is Thursday 17 December.
    assert approved.response_due_at == at(7, 13)
    assert approved.fulfilment_due_on == datetime.date(2026, 12, 17)
    assert approved.responded_at is None
    assert approved.item_snapshot["response_target_hours"] == 4


def test_taking_it_is_the_response(org, approved, clock):
    clock.set(at(7, 10))
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    approved.refresh_from_db()
    assert approved.responded_at == at(7, 10)


def test_a_fulfillers_comment_is_the_response_the_requesters_is_not(org, approved, clock):
    clock.set(at(7, 10))
    services.request_comment(request_id=approved.pk, user=org.alice.user, comment="Eilt!")
    approved.refresh_from_db()
    assert approved.responded_at is None
    clock.set(at(7, 11))
    services.request_comment(request_id=approved.pk, user=org.fulfiller.user, comment="Bin dran")
    approved.refresh_from_db()
    assert approved.responded_at == at(7, 11)
    assert approved.events.filter(kind=EventKind.COMMENT).count() == 2
    with pytest.raises(PermissionDenied):
        services.request_comment(request_id=approved.pk, user=org.bob.user, comment="x")


# --- holds ---------------------------------------------------------------------------------


def test_hold_and_resume_move_the_due_date_by_the_paused_working_time(org, approved, clock):
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    clock.set(at(8, 14))  # Tuesday 14:00
    services.request_hold(
        request_id=approved.pk,
        user=org.fulfiller.user,
        reason=HoldReason.SUPPLIER,
        note="Lieferant liefert am Donnerstag",
    )
    approved.refresh_from_db()
    assert approved.hold_reason == HoldReason.SUPPLIER
    assert approved.state == "in_fulfilment"  # a flag next to the state, no new state
    clock.set(at(10, 10))  # Thursday 10:00: 2 h Tue + 8.5 h Wed + 2.5 h Thu = 13 working hours
    services.request_resume(request_id=approved.pk, user=org.fulfiller.user, comment="Da")
    approved.refresh_from_db()
    hold = RequestHold.objects.get(request=approved)
    assert (hold.started_at, hold.ended_at) == (at(8, 14), at(10, 10))
    assert hold.ended_by == org.fulfiller.user
    assert approved.sla_paused_seconds == 13 * 3600
    # 13 working hours after the close of Thursday 17th: 8.5 h on Friday 18th and 4.5 h on
    # Monday 21st: due Monday 21 December.
    assert approved.fulfilment_due_on == datetime.date(2026, 12, 21)
    assert approved.hold_reason == ""
    kinds = list(approved.events.values_list("kind", flat=True))
    assert kinds[-2:] == [EventKind.HOLD, EventKind.RESUME]
    assert "21.12.2026" in approved.events.get(kind=EventKind.RESUME).comment
    assert "Lieferant" in approved.events.get(kind=EventKind.HOLD).comment


def test_the_requesters_reply_ends_a_hold_that_waits_for_them(org, approved, clock):
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    clock.set(at(7, 15))
    services.request_hold(
        request_id=approved.pk,
        user=org.fulfiller.user,
        reason=HoldReason.REQUESTER,
        note="Welcher Raum?",
    )
    # The requester is asked by mail.
    assert OutgoingMail.objects.filter(kind="request.on_hold", recipient=org.alice.user).exists()
    clock.set(at(8, 8))  # 1 h Monday + 0.5 h Tuesday
    services.request_comment(request_id=approved.pk, user=org.alice.user, comment="Raum 1.23")
    approved.refresh_from_db()
    assert approved.hold_reason == ""
    assert approved.sla_paused_seconds == 90 * 60
    assert approved.fulfilment_due_on == datetime.date(2026, 12, 18)
    hold = RequestHold.objects.get(request=approved)
    assert hold.ended_by == org.alice.user


def test_a_supplier_hold_is_not_ended_by_the_requester(org, approved, clock):
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    services.request_hold(
        request_id=approved.pk, user=org.fulfiller.user, reason=HoldReason.SUPPLIER, note="x"
    )
    services.request_comment(request_id=approved.pk, user=org.alice.user, comment="Und?")
    approved.refresh_from_db()
    assert approved.hold_reason == HoldReason.SUPPLIER


def test_who_may_hold_and_when(org, approved, clock):
    with pytest.raises(ActionConflict):  # not yet in fulfilment
        services.request_hold(
            request_id=approved.pk, user=org.fulfiller.user, reason="supplier", note="x"
        )
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    with pytest.raises(PermissionDenied):
        services.request_hold(
            request_id=approved.pk, user=org.alice.user, reason="supplier", note="x"
        )
    with pytest.raises(Exception, match="wait"):
        services.request_hold(
            request_id=approved.pk, user=org.fulfiller.user, reason="supplier", note="  "
        )
    with pytest.raises(Exception, match="choose"):
        services.request_hold(
            request_id=approved.pk, user=org.fulfiller.user, reason="holiday", note="x"
        )
    services.request_hold(
        request_id=approved.pk, user=org.fulfiller.user, reason="supplier", note="x"
    )
    with pytest.raises(ActionConflict):
        services.request_hold(
            request_id=approved.pk, user=org.fulfiller.user, reason="supplier", note="x"
        )
    # Completing it on hold ends the hold.
    clock.set(at(7, 12))
    services.request_complete(request_id=approved.pk, user=org.fulfiller.user, note="ok")
    approved.refresh_from_db()
    assert approved.hold_reason == "" and approved.state == "fulfilled"
    assert RequestHold.objects.get(request=approved).ended_at == at(7, 12)


def test_due_dates_with_pauses_follow_a_changed_calendar(org, approved, clock, settings):
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    clock.set(at(8, 8))
    services.request_hold(
        request_id=approved.pk, user=org.fulfiller.user, reason="supplier", note="x"
    )
    clock.set(at(8, 10))
    services.request_resume(request_id=approved.pk, user=org.fulfiller.user)
    approved.refresh_from_db()
    assert approved.sla_paused_seconds == 2 * 3600
    assert approved.fulfilment_due_on == datetime.date(2026, 12, 18)
    assert sla.recompute_due_dates() == 0
    # Shorter business hours: the same two wall-clock hours are one working hour.
    settings.PORTAL_BUSINESS_HOURS_START = "09:00"
    assert sla.recompute_due_dates() == 1
    approved.refresh_from_db()
    assert approved.sla_paused_seconds == 3600
    assert approved.response_due_at == at(7, 13)  # 09:00 + 4 h (opening now 09:00)


# --- warnings and breaches ----------------------------------------------------------------


def mails(kind):
    return sorted(m.recipient.username for m in OutgoingMail.objects.filter(kind=kind))


def test_response_warnings_at_half_and_three_quarters_breach_at_full(org, approved, clock):
    """Approved Monday 09:00, response due 13:00: half at 11:00, three quarters at 12:00."""

    def run(hour, minute=0):
        return sla.response_warn_and_escalate(now=at(7, hour, minute))

    assert run(10, 59) == {"half_warned": 0, "warned": 0, "breached": 0}
    assert run(11) == {"half_warned": 1, "warned": 0, "breached": 0}
    assert run(11, 30) == {"half_warned": 0, "warned": 0, "breached": 0}
    assert run(12) == {"half_warned": 0, "warned": 1, "breached": 0}
    assert run(12, 30) == {"half_warned": 0, "warned": 0, "breached": 0}
    assert run(13) == {"half_warned": 0, "warned": 0, "breached": 1}
    assert run(14) == {"half_warned": 0, "warned": 0, "breached": 0}
    approved.refresh_from_db()
    assert approved.response_half_warned_at == at(7, 11)
    assert approved.response_warned_at == at(7, 12)
    assert approved.response_breached_at == at(7, 13)
    assert mails(sla.RESPONSE_WARNING) == ["desk", "desk"]
    assert mails(sla.RESPONSE_BREACHED) == ["admin", "desk"]
    assert approved.events.filter(kind=EventKind.ESCALATE).count() == 1


def test_no_response_warning_once_answered(org, approved, clock):
    clock.set(at(7, 10))
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    assert sla.response_warn_and_escalate(now=at(7, 14)) == {
        "half_warned": 0,
        "warned": 0,
        "breached": 0,
    }


def test_resolution_clock_stands_still_on_hold(org, approved, clock):
    """Due Thursday 17th (eight working days from Monday 7th). On hold from Tuesday 8th
    07:30 to Friday 11th 07:30 (three working days): due Tuesday 22nd, and no warning or
    escalation while on hold."""
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    clock.set(at(8, 7, 30))
    services.request_hold(
        request_id=approved.pk, user=org.fulfiller.user, reason="supplier", note="x"
    )
    assert sla.sla_warn_at_half(now=at(18, 10)) == 0
    assert sla.sla_warn_and_escalate(now=at(18, 10)) == {"warned": 0, "escalated": 0}
    clock.set(at(11, 7, 30))
    services.request_resume(request_id=approved.pk, user=org.fulfiller.user)
    approved.refresh_from_db()
    assert approved.fulfilment_due_on == datetime.date(2026, 12, 22)
    # Half of the (unpaused) target: 4 of 8 working days used by Monday 14th (1 + 3 paused
    # + ... ) is Tuesday 15th: 6 working days passed less 3 paused = 3 of 8 not half yet.
    assert sla.sla_warn_at_half(now=at(15, 10)) == 0
    assert sla.sla_warn_at_half(now=at(16, 10)) == 1  # 7 - 3 = 4 of 8
    assert sla.sla_warn_and_escalate(now=at(18, 10)) == {"warned": 1, "escalated": 0}  # 6 of 8
    assert sla.sla_warn_and_escalate(now=at(22, 10)) == {"warned": 0, "escalated": 0}
    assert sla.sla_warn_and_escalate(now=at(23, 8)) == {"warned": 0, "escalated": 1}


def test_request_page_and_why_explain_the_hold(org, approved, clock, client):
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    clock.set(at(8, 8))
    services.request_hold(
        request_id=approved.pk, user=org.fulfiller.user, reason="requester", note="Welcher Raum?"
    )
    client.force_login(org.alice.user)
    page = client.get(f"/antraege/{approved.pk}/").content.decode()
    assert "Welcher Raum?" in page
    assert f"/antraege/{approved.pk}/kommentar/" in page
    response = client.post(f"/antraege/{approved.pk}/kommentar/", {"text": "Raum 2"})
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.hold_reason == ""
    client.force_login(org.fulfiller.user)
    why = client.get(f"/warum/antrag/{approved.pk}/").content.decode()
    assert "Waiting for the requester" in why
    assert "working hours on hold" in why
    assert "07:30–16:00" in why
    queue = client.get("/antraege/bearbeitung/?tab=on_hold")
    assert queue.status_code == 200
    assert list(queue.context["table"].data.data) == []


def test_hold_views_refuse_the_requester_and_bad_input(org, approved, clock, client):
    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    client.force_login(org.alice.user)
    client.post(f"/antraege/{approved.pk}/anhalten/", {"reason": "supplier", "text": "x"})
    approved.refresh_from_db()
    assert approved.hold_reason == ""
    client.force_login(org.fulfiller.user)
    client.post(f"/antraege/{approved.pk}/anhalten/", {"reason": "supplier", "text": "x" * 5000})
    approved.refresh_from_db()
    assert approved.hold_reason == ""
    client.post(f"/antraege/{approved.pk}/anhalten/", {"reason": "supplier", "text": "Teil"})
    approved.refresh_from_db()
    assert approved.hold_reason == "supplier"
    queue = client.get("/antraege/bearbeitung/?tab=on_hold")
    assert [r.pk for r in queue.context["table"].data.data] == [approved.pk]
    assert "pausiert" in queue.content.decode() or "paused" in queue.content.decode()
    client.post(f"/antraege/{approved.pk}/fortsetzen/", {"text": ""})
    approved.refresh_from_db()
    assert approved.hold_reason == ""


def test_the_exchange_format_and_api_carry_the_response_target(item):
    from catalogue.exchange.fields import ITEM_FIELDS

    assert "response_target_hours" in [f.name for f in ITEM_FIELDS]
    assert ServiceRequest._meta.get_field("sla_paused_seconds").db_default == 0


# --- controlling -------------------------------------------------------------------------


def test_controlling_counts_response_and_resolution_compliance(
    org, item, place_order, clock, client
):
    """Three Monitor requests fulfilled in December: answered in time twice (taken at 10:00,
    and put on hold at 12:00 before the 13:00 deadline), once late (taken at 14:00); the
    fulfilment deadline met twice, once missed."""
    import csv
    import io

    for taken, closed in ((at(7, 10), at(8, 10)), (at(7, 14), at(18, 10)), (None, at(9, 9))):
        clock.set(at(7, 9))
        req = place_order(item, org.alice.user)
        services.request_approve(request_id=req.pk, user=org.manager.user)
        clock.set(taken or at(7, 10))
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
        if taken is None:  # the take at 10:00 is not the first reaction here: reset it
            ServiceRequest.objects.filter(pk=req.pk).update(responded_at=None)
            clock.set(at(7, 12))
            services.request_hold(
                request_id=req.pk, user=org.fulfiller.user, reason="supplier", note="x"
            )
            clock.set(at(8, 12))
            services.request_resume(request_id=req.pk, user=org.fulfiller.user)
        clock.set(closed)
        services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    client.force_login(org.admin.user)
    period = "period_from=2026-12&period_to=2026-12"
    rows = client.get(f"/controlling/sla/?{period}").context["table"].data.data
    # Due 17 December: the one closed on the 18th is late.
    assert [(r.fulfilled, r.met, r.responded, r.response_met) for r in rows] == [
        (3, 2, 3, 2),
        (3, 2, 3, 2),
    ]
    assert rows[0].response_share == "66,7 %" and rows[0].response_missed == 1
    response = client.get(f"/controlling/sla.csv?{period}")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert lines[1][6:] == ["3", "2", "1", "66,7 %"]


def test_the_new_mails_render(org, approved, clock):
    from notifications.services import compose

    services.request_take(request_id=approved.pk, user=org.fulfiller.user)
    services.request_hold(
        request_id=approved.pk, user=org.fulfiller.user, reason="requester", note="Welcher Raum?"
    )
    ServiceRequest.objects.filter(pk=approved.pk).update(responded_at=None)
    sla.response_warn_and_escalate(now=at(7, 14))
    for kind, words in (
        ("request.on_hold", ["Welcher Raum?"]),
        (sla.RESPONSE_BREACHED, ["13:00"]),
    ):
        mail = OutgoingMail.objects.filter(kind=kind).first()
        message = compose(mail)
        text = message.subject + message.body
        assert any(word in text for word in words), (kind, text)
        assert "Welcher Raum?" in text or kind != "request.on_hold"
