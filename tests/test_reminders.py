"""Working days of the configured Land, reminders and escalation of waiting approval steps."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from catalogue.choices import ApproverKind
from itportal import roles
from itportal.workdays import is_working_day, working_days_between
from requests_app import selectors, services, tasks
from requests_app.choices import ApprovalStatus, EventKind, RequestState
from requests_app.models import Approval, RequestEvent
from tests.factories import EmployeeFactory
from tests.workflow_support import EventProbe, addresses, mail_of, make_item

S = RequestState
BERLIN = ZoneInfo("Europe/Berlin")
D = datetime.date


def at(year, month, day, hour=9, minute=0):
    return datetime.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# --- working days -------------------------------------------------------------------------------


@pytest.fixture
def land(settings):
    def _land(code):
        settings.PORTAL_HOLIDAY_SUBDIVISION = code

    _land("NW")
    return _land


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 12, 23), True),  # Wednesday
        (D(2026, 12, 24), True),  # Christmas Eve is not a public holiday
        (D(2026, 12, 25), False),  # Christmas Day
        (D(2026, 12, 26), False),  # Boxing Day (a Saturday as well)
        (D(2026, 12, 28), True),
        (D(2026, 12, 31), True),
        (D(2027, 1, 1), False),  # New Year
        (D(2026, 4, 3), False),  # Good Friday
        (D(2026, 4, 6), False),  # Easter Monday
        (D(2026, 5, 1), False),  # Labour Day
        (D(2026, 6, 4), False),  # Corpus Christi: a holiday in NW
        (D(2026, 10, 3), False),  # German Unity Day (Saturday)
        (D(2026, 3, 6), True),  # Friday
        (D(2026, 3, 7), False),  # Saturday
        (D(2026, 3, 8), False),  # Sunday
    ],
)
def test_working_days_in_nrw(land, day, working):
    assert is_working_day(day) is working


def test_corpus_christi_depends_on_the_land(land):
    corpus_christi = D(2026, 6, 4)
    assert not is_working_day(corpus_christi)
    land("BE")
    assert is_working_day(corpus_christi)
    # International Women's Day is a holiday in Berlin only (2027-03-08 is a Monday).
    assert not is_working_day(D(2027, 3, 8))
    land("NW")
    assert is_working_day(D(2027, 3, 8))
    # An explicit Land wins over the setting.
    assert is_working_day(corpus_christi, "BE")
    assert not is_working_day(corpus_christi, "BY")


def test_working_days_between(land):
    # After the start day, up to and including the end day.
    assert working_days_between(D(2026, 3, 2), D(2026, 3, 2)) == 0
    assert working_days_between(D(2026, 3, 2), D(2026, 3, 1)) == 0
    assert working_days_between(D(2026, 3, 2), D(2026, 3, 3)) == 1
    assert working_days_between(D(2026, 3, 2), D(2026, 3, 9)) == 5  # over a weekend
    assert working_days_between(D(2026, 3, 6), D(2026, 3, 9)) == 1  # Friday → Monday
    # Christmas: only the 24th and the 28th count.
    assert working_days_between(D(2026, 12, 23), D(2026, 12, 28)) == 2
    # Across the turn of the year: 29, 30, 31 December, 4 January.
    assert working_days_between(D(2026, 12, 28), D(2027, 1, 4)) == 4
    assert working_days_between(D(2026, 6, 3), D(2026, 6, 5)) == 1
    land("BE")
    assert working_days_between(D(2026, 6, 3), D(2026, 6, 5)) == 2


# --- reminders and escalation --------------------------------------------------------------------


@pytest.fixture
def periods(settings, land):
    settings.PORTAL_REMINDER_WORKING_DAYS = 3
    settings.PORTAL_ESCALATION_WORKING_DAYS = 5


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run the reminder job at ``now`` and deliver the mails it queues after commit."""

    def _run(now):
        with django_capture_on_commit_callbacks(execute=True):
            return services.approvals_remind_and_escalate(now=now)

    return _run


def waiting_since(service_request, when):
    """Pretend the pending step became pending at ``when``."""
    updated = Approval.objects.filter(
        request=service_request, status=ApprovalStatus.PENDING
    ).update(activated_at=when)
    assert updated == 1


def pending_step(service_request):
    return Approval.objects.select_related("approver", "group").get(
        request=service_request, status=ApprovalStatus.PENDING
    )


NOTHING = {"reminded": 0, "escalated": 0}
REMINDED = {"reminded": 1, "escalated": 0}
ESCALATED = {"reminded": 0, "escalated": 1}


@pytest.fixture
def director(org):
    director = EmployeeFactory(department=org.department, user__username="director")
    org.head.manager = director
    org.head.save()
    return director


@pytest.mark.django_db
def test_one_reminder_then_escalation_to_the_manager(
    org, manual_item, place_order, periods, run, mailoutbox
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 3, 2))  # Monday
    probe = EventProbe(req)

    assert run(at(2026, 3, 4, 23)) == NOTHING  # 2 working days
    probe.assert_none()
    assert mailoutbox == []

    now = at(2026, 3, 5, 7)  # Thursday: 3 working days
    assert run(now) == REMINDED
    probe.assert_one(
        EventKind.REMIND,
        actor=None,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.AWAITING_APPROVAL,
        comment=f"Reminder to {org.manager.display_name} after 3 working days.",
    )
    step = pending_step(req)
    assert step.reminded_at == now
    assert step.escalation_level == 0
    assert addresses(mailoutbox) == mail_of(org.manager)
    assert mailoutbox[0].subject.startswith("[Stadt Musterstadt] Reminder")

    # Not twice: neither the same day nor on the following days before the escalation.
    mailoutbox.clear()
    probe = EventProbe(req)
    assert run(now) == NOTHING
    assert run(at(2026, 3, 6, 18)) == NOTHING
    probe.assert_none()
    assert mailoutbox == []
    assert pending_step(req).reminded_at == now

    # Monday 9 March: 5 working days → the manager's manager takes over.
    now = at(2026, 3, 9, 6)
    assert run(now) == ESCALATED
    probe.assert_one(
        EventKind.ESCALATE,
        actor=None,
        from_state=S.AWAITING_APPROVAL,
        to_state=S.AWAITING_APPROVAL,
        comment=(
            f"Step “Line manager of the beneficiary” passed from {org.manager.display_name} "
            f"to {org.head.display_name} after 5 working days."
        ),
    )
    step = pending_step(req)
    assert step.approver_id == org.head.user.pk
    assert step.group_id is None
    assert step.escalation_level == 1
    assert step.activated_at == now
    assert step.reminded_at is None
    assert step.position == 1
    assert addresses(mailoutbox) == mail_of(org.head)
    assert "Please decide" in mailoutbox[0].subject

    # The escalated step is the new approver's; the old one can no longer decide.
    mailoutbox.clear()
    assert run(now) == NOTHING
    assert mailoutbox == []
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_approve(request_id=req.pk, user=org.head.user)
    req.refresh_from_db()
    assert req.state == S.APPROVED
    assert run(at(2026, 4, 30)) == NOTHING  # decided steps are left alone


@pytest.mark.django_db
def test_escalated_step_is_reminded_and_escalated_again(
    org, director, manual_item, place_order, periods, run, mailoutbox
):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 3, 2))
    assert run(at(2026, 3, 9)) == ESCALATED  # reminder skipped: escalation is due at once
    assert pending_step(req).approver_id == org.head.user.pk
    assert run(at(2026, 3, 11)) == NOTHING  # 2 working days at the new level
    assert run(at(2026, 3, 12)) == REMINDED
    mailoutbox.clear()
    assert run(at(2026, 3, 16)) == ESCALATED
    step = pending_step(req)
    assert step.approver_id == director.user.pk
    assert step.escalation_level == 2
    assert addresses(mailoutbox) == mail_of(director)
    kinds = list(
        req.events.filter(kind__in=[EventKind.REMIND, EventKind.ESCALATE]).values_list(
            "kind", flat=True
        )
    )
    assert kinds == ["escalate", "remind", "escalate"]


@pytest.mark.django_db
def test_weekends_do_not_count(org, manual_item, place_order, periods, run):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 3, 6, 16))  # Friday afternoon
    assert run(at(2026, 3, 10, 17)) == NOTHING  # Mon, Tue
    assert run(at(2026, 3, 11, 8)) == REMINDED  # Mon, Tue, Wed


@pytest.mark.django_db
def test_christmas_does_not_count(org, manual_item, place_order, periods, run):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 12, 23, 10))
    assert run(at(2026, 12, 28, 12)) == NOTHING  # 24th and 28th; 25th and 26th are holidays
    assert run(at(2026, 12, 29, 12)) == REMINDED


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "expected"), [("NW", NOTHING), ("BE", REMINDED)])
def test_holidays_of_the_configured_land(
    org, manual_item, place_order, periods, run, land, code, expected
):
    land(code)
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 6, 2))  # Tuesday before Corpus Christi
    assert run(at(2026, 6, 5)) == expected


@pytest.mark.django_db
def test_pending_since_late_evening_counts_berlin_days(org, manual_item, place_order, periods, run):
    """Activated at 23:30 Berlin time (22:30 UTC): that day is the start day, not the next."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 3, 2, 23, 30).astimezone(datetime.UTC))
    assert run(at(2026, 3, 5, 0, 30)) == REMINDED  # Tue, Wed, Thu


@pytest.fixture
def licences(org):
    group = Group.objects.create(name="Lizenzverwaltung")
    org.outsider.user.groups.add(group)
    return group


@pytest.mark.django_db
def test_group_step_escalates_to_it_admins_and_stops_there(
    org, licences, place_order, periods, run, mailoutbox
):
    item = make_item(org.service_desk, {"approver_kind": ApproverKind.GROUP, "group": licences})
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 3, 2))
    assert run(at(2026, 3, 5)) == REMINDED
    assert addresses(mailoutbox) == mail_of(org.outsider)

    mailoutbox.clear()
    assert run(at(2026, 3, 9)) == ESCALATED
    step = pending_step(req)
    assert step.group.name == roles.IT_ADMIN
    assert step.approver_id is None
    assert step.escalation_level == 1
    assert addresses(mailoutbox) == mail_of(org.admin)
    event = req.events.get(kind=EventKind.ESCALATE)
    assert "Lizenzverwaltung" in event.comment
    assert roles.IT_ADMIN in event.comment

    # The top: IT admins are reminded once more, but the step goes nowhere else.
    mailoutbox.clear()
    assert run(at(2026, 3, 16)) == REMINDED
    assert addresses(mailoutbox) == mail_of(org.admin)
    mailoutbox.clear()
    for now in (at(2026, 3, 23), at(2026, 4, 20), at(2026, 6, 1)):
        assert run(now) == NOTHING
    assert mailoutbox == []
    step = pending_step(req)
    assert step.group.name == roles.IT_ADMIN
    assert step.escalation_level == 1
    assert req.events.filter(kind=EventKind.ESCALATE).count() == 1
    services.request_approve(request_id=req.pk, user=org.admin.user)
    req.refresh_from_db()
    assert req.state == S.APPROVED


@pytest.mark.django_db
def test_manager_chain_ends_with_it_admins(org, manual_item, place_order, periods, run):
    """manager → head (top of the chain) → IT admins → no further."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, at(2026, 3, 2))
    assert run(at(2026, 3, 9)) == ESCALATED
    assert pending_step(req).approver_id == org.head.user.pk
    assert run(at(2026, 3, 16)) == ESCALATED
    step = pending_step(req)
    assert (step.approver_id, step.group.name, step.escalation_level) == (
        None,
        roles.IT_ADMIN,
        2,
    )
    assert run(at(2026, 3, 23)) == REMINDED
    assert run(at(2026, 3, 30)) == NOTHING
    assert pending_step(req).escalation_level == 2


@pytest.mark.django_db
def test_escalation_respects_four_eyes(org, manual_item, place_order, periods, run):
    """The head orders for alice: the manager decides; escalation skips the head."""
    req = place_order(manual_item, org.head.user, beneficiary=org.alice)
    assert pending_step(req).approver_id == org.manager.user.pk
    waiting_since(req, at(2026, 3, 2))
    assert run(at(2026, 3, 9)) == ESCALATED
    step = pending_step(req)
    assert step.approver_id is None
    assert step.group.name == roles.IT_ADMIN


@pytest.mark.django_db
def test_escalation_skips_requester_to_the_next_manager(
    org, director, manual_item, place_order, periods, run
):
    req = place_order(manual_item, org.head.user, beneficiary=org.alice)
    waiting_since(req, at(2026, 3, 2))
    assert run(at(2026, 3, 9)) == ESCALATED
    assert pending_step(req).approver_id == director.user.pk


@pytest.mark.django_db
def test_escalation_skips_inactive_managers(org, director, manual_item, place_order, periods, run):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    org.head.is_active = False
    org.head.save()
    waiting_since(req, at(2026, 3, 2))
    assert run(at(2026, 3, 9)) == ESCALATED
    assert pending_step(req).approver_id == director.user.pk


@pytest.mark.django_db
def test_only_pending_steps_of_open_requests(org, place_order, periods, run):
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER},
        {"approver_kind": ApproverKind.COST_CENTRE_OWNER},
    )
    open_req = place_order(item, org.alice.user, beneficiary=org.bob)
    cancelled = place_order(item, org.alice.user, beneficiary=org.bob)
    waiting_since(open_req, at(2026, 3, 2))
    waiting_since(cancelled, at(2026, 3, 2))
    # The waiting second step is old too, but not pending: it must not be touched.
    Approval.objects.filter(status=ApprovalStatus.WAITING).update(activated_at=at(2026, 1, 5))
    services.request_cancel(request_id=cancelled.pk, user=org.alice.user)
    events_before = RequestEvent.objects.filter(request=cancelled).count()

    assert run(at(2026, 3, 9)) == ESCALATED
    assert RequestEvent.objects.filter(request=cancelled).count() == events_before
    second = open_req.approvals.get(position=2)
    assert second.status == ApprovalStatus.WAITING
    assert second.escalation_level == 0
    assert second.approver_id == org.head.user.pk
    assert pending_step(open_req).position == 1


@pytest.mark.django_db
def test_step_without_activation_time_is_skipped(org, manual_item, place_order, periods, run):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    waiting_since(req, None)
    assert run(at(2030, 1, 1)) == NOTHING


@pytest.mark.django_db
def test_beat_task_runs_the_service(org, manual_item, place_order, periods):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    Approval.objects.filter(request=req).update(
        activated_at=datetime.datetime(2000, 1, 3, 9, tzinfo=BERLIN)
    )
    result = tasks.approvals_remind_and_escalate.delay().get()
    assert result == ESCALATED
    assert pending_step(req).approver_id == org.head.user.pk


def test_escalated_away_approver_still_sees_the_request(org, manual_item, place_order, settings):
    """Escalation passes the decision on; the earlier approver keeps the request in view."""
    from django.utils import timezone

    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    Approval.objects.filter(request=req).update(
        activated_at=timezone.now() - timezone.timedelta(days=30)
    )
    services.approvals_remind_and_escalate()
    step = req.approvals.get()
    assert step.approver == org.head.user
    assert list(step.escalated_from.all()) == [org.manager.user]
    assert selectors.requests_visible_to(org.manager.user).filter(pk=req.pk).exists()
    assert not selectors.requests_awaiting_decision_by(org.manager.user).filter(pk=req.pk).exists()
