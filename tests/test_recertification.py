"""Recertification campaigns (issue 15): scope, stages with reviewer rules and outcome
strategies, no self-review, decisions keep / remove (with reason) / keep until, locked at the
stage's close, a re-run for non-responders, an explicit default for what nobody decided,
reminders and escalation in working days, the auditors' report (page and CSV).

Removal goes through the usual revocation (the directory test is in
tests/test_recertification_directory.py). A mover's flagged access is decided on the same page.
"""

import csv
import datetime
import io

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalogue.choices import FulfilmentKind
from governance import outcomes, risk, selectors, services, sod_services
from governance.choices import (
    CampaignScope,
    OutcomeStrategy,
    ReviewerRule,
    TaskDecision,
    TaskRoute,
    UndecidedDefault,
)
from governance.models import Campaign, Review, ReviewTask
from governance.services import StageSpec
from itportal import roles, workdays
from itportal.exceptions import ActionConflict
from notifications.models import OutgoingMail
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services as request_services
from tests.factories import DepartmentFactory, EmployeeFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db

D = Review.Decision
T = TaskDecision
LINE_MANAGER = {"approver_kind": "line_manager"}
OWNERS = StageSpec(ReviewerRule.ITEM_OWNER, OutcomeStrategy.ALL_MUST_ACCEPT, 5)


def in_days(n):
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.fixture
def grant(org, place_order):
    def _grant(item, employee, **fields):
        req = place_order(item, employee.user)
        return Entitlement.objects.create(
            request=req, holder=employee, item=item, state=EntitlementState.ACTIVE, **fields
        )

    return _grant


@pytest.fixture
def held(org, grant):
    """alice and bob (manager: the manager) and the manager (manager: the head) hold VPN;
    the head (no manager) holds the file share."""
    vpn = make_item(org.service_desk, LINE_MANAGER, name="VPN", slug="vpn")
    share = make_item(org.service_desk, LINE_MANAGER, name="Laufwerk", slug="laufwerk")
    return {
        "alice": grant(vpn, org.alice),
        "bob": grant(vpn, org.bob),
        "manager": grant(vpn, org.manager),
        "head": grant(share, org.head),
    }


def start(**kwargs):
    kwargs.setdefault("name", "Rezertifizierung 2027")
    return services.campaign_start(**kwargs)


def review_of(campaign, entitlement):
    return Review.objects.get(campaign=campaign, entitlement=entitlement)


def task_of(campaign, entitlement, stage=1, reviewer=None):
    tasks = ReviewTask.objects.filter(review__campaign=campaign, review__entitlement=entitlement)
    tasks = tasks.filter(stage=stage)
    if reviewer is not None:
        tasks = tasks.filter(reviewer=reviewer)
    return tasks.get()


def decide(task, user, decision=T.ACCEPT, comment="", **kwargs):
    if decision == T.REVOKE and not comment:
        comment = "Nicht mehr nötig."
    return services.review_task_decide(
        task_id=task.pk, user=user, decision=decision, comment=comment, **kwargs
    )


def state_of(entitlement):
    return Entitlement.objects.get(pk=entitlement.pk).state


# --- start: scope and reviewers ----------------------------------------------------------------


def test_start_gives_each_access_a_task_for_the_holders_line_manager(org, held):
    Entitlement.objects.filter(pk=held["bob"].pk).update(state=EntitlementState.REVOKED)
    campaign = start(due_on=in_days(28))
    tasks = {
        t.review.entitlement_id: (t.reviewer_id, t.route)
        for t in ReviewTask.objects.filter(review__campaign=campaign).select_related("review")
    }
    assert tasks == {
        held["alice"].pk: (org.manager.user.pk, TaskRoute.LINE_MANAGER),
        held["manager"].pk: (org.head.user.pk, TaskRoute.LINE_MANAGER),
        held["head"].pk: (None, TaskRoute.FALLBACK),  # no manager: IT administration
    }
    mails = OutgoingMail.objects.filter(kind="governance.review_requested")
    assert {m.recipient_id for m in mails} == {
        org.manager.user.pk,
        org.head.user.pk,
        org.admin.user.pk,
    }
    stage = campaign.stages.get()
    assert stage.due_on == campaign.due_on == in_days(28)
    assert stage.closes_on == workdays.add_working_days(in_days(28), 5)


def test_due_date_defaults_to_working_days_of_the_land(org, held):
    campaign = start(stages=[StageSpec(working_days=10)])
    assert campaign.due_on == workdays.add_working_days(timezone.localdate(), 10)


def test_inactive_manager_leaves_the_access_to_it_administration(org, held):
    org.manager.user.is_active = False
    org.manager.user.save()
    campaign = start(due_on=in_days(10))
    task = task_of(campaign, held["alice"])
    assert (task.reviewer_id, task.route) == (None, TaskRoute.FALLBACK)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"due_on": "morgen"}, "due_on"),
        ({"due_on": 0}, "due_on"),
        ({"due_on": -3}, "due_on"),
        ({"due_on": 400}, "due_on"),
        ({"scope": "everything"}, "scope"),
        ({"scope": CampaignScope.ITEM}, "scope_item"),
        ({"scope": CampaignScope.DEPARTMENT}, "scope_department"),
        ({"scope": CampaignScope.RISK}, "risk_limit"),
        ({"scope": CampaignScope.RISK, "risk_limit": 0}, "risk_limit"),
        ({"undecided_default": "forget"}, "undecided_default"),
        ({"stages": [StageSpec("boss")]}, "stages"),
        ({"stages": [StageSpec(outcome_strategy="majority")]}, "stages"),
        ({"stages": [StageSpec(working_days=0)]}, "stages"),
        ({"stages": [StageSpec()] * 4}, "stages"),
    ],
)
def test_start_refuses_bad_input(org, held, kwargs, field):
    if isinstance(kwargs.get("due_on"), int):
        kwargs = {**kwargs, "due_on": in_days(kwargs["due_on"])}
    with pytest.raises(ValidationError) as refused:
        start(**{"due_on": in_days(10), **kwargs})
    assert field in refused.value.message_dict
    assert not Campaign.objects.exists() and not Review.objects.exists()


def test_scope_per_item_and_per_department(org, held, grant):
    vpn = held["alice"].item
    other = EmployeeFactory(department=DepartmentFactory(parent=org.department))
    sub = grant(vpn, other)
    stranger = grant(vpn, org.outsider)
    one_off = make_item(org.service_desk, name="Passwort", slug="pw", grants_access=False)
    grant(one_off, org.alice)
    by_item = start(scope=CampaignScope.ITEM, item=vpn)
    assert set(by_item.reviews.values_list("entitlement", flat=True)) == {
        held["alice"].pk, held["bob"].pk, held["manager"].pk, sub.pk, stranger.pk
    }  # fmt: skip
    by_department = start(scope=CampaignScope.DEPARTMENT, department=org.department)
    assert set(by_department.reviews.values_list("entitlement", flat=True)) == {
        *(e.pk for e in held.values()), sub.pk
    }  # fmt: skip


def test_scope_by_risk_takes_the_riskiest_first(org, held, grant):
    payments = make_item(org.service_desk, name="Zahlungen", slug="zahlungen")
    release = make_item(org.service_desk, name="Freigabe", slug="freigabe")
    sod_services.sod_rule_create(name="Kasse", reason="trennen", first=[payments], second=[release])
    risky = grant(payments, org.bob)
    directory = make_item(
        org.service_desk, name="AD-Gruppe", slug="ad", kind=FulfilmentKind.AUTOMATED
    )
    second = grant(directory, org.alice)
    campaign = start(scope=CampaignScope.RISK, risk_limit=2)
    assert set(campaign.reviews.values_list("entitlement", flat=True)) == {risky.pk, second.pk}
    # assist's reclaim signs count too: access of a holder no longer active ranks higher
    gone = EmployeeFactory(department=org.department)
    left_behind = grant(held["alice"].item, gone)
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)  # left; access still held
    scores = dict(risk.with_risk(Entitlement.objects.all()).values_list("pk", "risk_score"))
    assert scores[risky.pk] > scores[second.pk] > scores[held["alice"].pk]
    assert scores[left_behind.pk] > scores[held["alice"].pk]


def test_item_owner_stage_asks_every_member_but_never_the_holder(org, held, grant):
    desk2 = EmployeeFactory(department=org.department, user__groups=[org.service_desk])
    own = grant(held["alice"].item, org.fulfiller)  # a service desk member holds VPN too
    campaign = start(stages=[OWNERS])
    alice = ReviewTask.objects.filter(review__campaign=campaign, review__entitlement=held["alice"])
    assert {t.reviewer_id for t in alice} == {org.fulfiller.user.pk, desk2.user.pk}
    assert {t.route for t in alice} == {TaskRoute.ITEM_OWNER}
    own_tasks = ReviewTask.objects.filter(review__campaign=campaign, review__entitlement=own)
    assert [t.reviewer_id for t in own_tasks] == [desk2.user.pk]


def test_cost_centre_owner_never_reviews_own_access(org, held):
    campaign = start(stages=[StageSpec(ReviewerRule.COST_CENTRE_OWNER)])
    assert task_of(campaign, held["alice"]).reviewer_id == org.head.user.pk
    head = task_of(campaign, held["head"])  # the head owns the cost centre: no self-review
    assert (head.reviewer_id, head.route) == (None, TaskRoute.FALLBACK)
    with pytest.raises(PermissionDenied):
        decide(head, org.head.user)


# --- outcome strategies ------------------------------------------------------------------------


P, A, R, K = T.PENDING, T.ACCEPT, T.REVOKE, T.REDUCE


@pytest.mark.parametrize(
    ("strategy", "decisions", "outcome"),
    [
        (OutcomeStrategy.ONE_ACCEPT_ACCEPTS, [A, R], A),
        (OutcomeStrategy.ONE_ACCEPT_ACCEPTS, [P, R], R),
        (OutcomeStrategy.ONE_ACCEPT_ACCEPTS, [P, P], None),
        (OutcomeStrategy.ONE_ACCEPT_ACCEPTS, [K, P], A),
        (OutcomeStrategy.ALL_MUST_ACCEPT, [A, A], A),
        (OutcomeStrategy.ALL_MUST_ACCEPT, [A, P], None),
        (OutcomeStrategy.ALL_MUST_ACCEPT, [A, R], R),
        (OutcomeStrategy.ALL_MUST_ACCEPT, [], None),
        (OutcomeStrategy.ONE_REVOKE_REVOKES, [A, R], R),
        (OutcomeStrategy.ONE_REVOKE_REVOKES, [A, P], A),
        (OutcomeStrategy.ONE_REVOKE_REVOKES, [P], None),
        (OutcomeStrategy.ACCEPTED_UNLESS_REVOKED, [P, P], A),
        (OutcomeStrategy.ACCEPTED_UNLESS_REVOKED, [A, R], R),
    ],
)
def test_outcome_strategies(strategy, decisions, outcome):
    assert outcomes.stage_outcome(strategy, decisions) == outcome


# --- decisions ---------------------------------------------------------------------------------


def test_keep_remove_and_keep_until_take_effect_when_the_stage_closes(org, held, grant):
    later = grant(
        held["alice"].item, EmployeeFactory(department=org.department, manager=org.manager)
    )
    campaign = start(due_on=in_days(10))
    decide(task_of(campaign, held["alice"]), org.manager.user, T.ACCEPT)
    decide(task_of(campaign, held["bob"]), org.manager.user, T.REVOKE, "Projekt vorbei.")
    decide(task_of(campaign, later), org.manager.user, T.REDUCE, reduce_until=in_days(60))
    assert state_of(held["bob"]) == EntitlementState.ACTIVE  # not before the close
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    bob = review_of(campaign, held["bob"])
    assert (bob.decision, bob.decided_by_id, bob.comment) == (
        D.REMOVE,
        org.manager.user.pk,
        "Projekt vorbei.",
    )
    entitlement = Entitlement.objects.get(pk=held["bob"].pk)
    assert entitlement.state == EntitlementState.REVOKED  # manual item: no directory job
    assert entitlement.revoked_by_id == org.manager.user.pk
    assert "Projekt vorbei." in entitlement.revoke_reason
    assert review_of(campaign, held["alice"]).decision == D.KEEP
    assert state_of(held["alice"]) == EntitlementState.ACTIVE
    assert review_of(campaign, later).decision == D.REDUCE
    assert Entitlement.objects.get(pk=later.pk).expires_on == in_days(60)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED


def test_decisions_change_until_the_close_then_are_locked(org, held):
    campaign = start(due_on=in_days(10))
    task = task_of(campaign, held["alice"])
    decide(task, org.manager.user, T.REVOKE)
    decide(task, org.manager.user, T.REVOKE)  # a second click: no error
    decide(task, org.manager.user, T.ACCEPT)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    with pytest.raises(ActionConflict):
        decide(task, org.manager.user, T.REVOKE)
    assert ReviewTask.objects.get(pk=task.pk).decision == T.ACCEPT
    assert task not in selectors.tasks_for(org.manager.user)
    assert state_of(held["alice"]) == EntitlementState.ACTIVE


@pytest.mark.parametrize(
    ("decision", "comment", "until", "field"),
    [
        ("maybe", "", None, "decision"),
        ("", "", None, "decision"),
        (T.PENDING, "", None, "decision"),
        (T.ACCEPT, "x" * 501, None, "comment"),
        (T.ACCEPT, "a\x00b", None, "comment"),
        (T.REVOKE, "   ", None, "comment"),  # a removal needs a reason
        (T.REDUCE, "", None, "reduce_until"),
        (T.REDUCE, "", 0, "reduce_until"),
        (T.REDUCE, "", 5000, "reduce_until"),
        (T.REDUCE, "", 90, "reduce_until"),  # not before the access ends anyway
    ],
)
def test_bad_decisions_are_refused(org, held, decision, comment, until, field):
    Entitlement.objects.filter(pk=held["alice"].pk).update(expires_on=in_days(90))
    campaign = start(due_on=in_days(10))
    task = task_of(campaign, held["alice"])
    with pytest.raises(ValidationError) as refused:
        services.review_task_decide(
            task_id=task.pk,
            user=org.manager.user,
            decision=decision,
            comment=comment,
            reduce_until=in_days(until) if until is not None else None,
        )
    assert field in refused.value.message_dict
    assert ReviewTask.objects.get(pk=task.pk).decision == T.PENDING


def test_who_may_decide(org, held):
    campaign = start(due_on=in_days(10))
    alice = task_of(campaign, held["alice"])
    for outsider in (org.alice.user, org.bob.user, org.head.user, org.admin.user):
        with pytest.raises(PermissionDenied):
            decide(alice, outsider)
    carol = EmployeeFactory(department=org.department, user__username="carol")
    request_services.substitution_create(
        principal=org.manager.user,
        substitute=carol.user,
        starts_on=in_days(-1),
        ends_on=in_days(1),
    )
    assert alice in selectors.tasks_for(carol.user)
    decide(alice, carol.user)


def test_it_admin_decides_unassigned_but_never_their_own(org, grant, held):
    """The IT admin has no manager either: their own access needs another IT admin."""
    own = grant(held["head"].item, org.admin)
    campaign = start(due_on=in_days(10))
    head, mine = task_of(campaign, held["head"]), task_of(campaign, own)
    assert head.reviewer_id is None and mine.reviewer_id is None
    assert head in selectors.tasks_for(org.admin.user)
    assert mine not in selectors.tasks_for(org.admin.user)
    with pytest.raises(PermissionDenied):
        decide(mine, org.admin.user)
    decide(head, org.admin.user)


# --- stages, defaults, re-run ------------------------------------------------------------------


def test_what_stage_one_keeps_goes_to_stage_two_where_all_owners_must_keep(org, held):
    desk2 = EmployeeFactory(department=org.department, user__groups=[org.service_desk])
    campaign = start(stages=[StageSpec(working_days=5), OWNERS])
    decide(task_of(campaign, held["alice"]), org.manager.user, T.ACCEPT)
    decide(task_of(campaign, held["bob"]), org.manager.user, T.REVOKE)
    decide(task_of(campaign, held["manager"]), org.head.user, T.ACCEPT)
    decide(task_of(campaign, held["head"]), org.admin.user, T.ACCEPT)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    campaign.refresh_from_db()
    assert (campaign.state, campaign.current_stage) == (Campaign.State.OPEN, 2)
    assert state_of(held["bob"]) == EntitlementState.REVOKED  # removed at stage 1's close
    assert not ReviewTask.objects.filter(review__entitlement=held["bob"], stage=2).exists()
    for key in ("alice", "manager"):
        decide(task_of(campaign, held[key], 2, org.fulfiller.user), org.fulfiller.user)
    decide(task_of(campaign, held["alice"], 2, desk2.user), desk2.user)
    decide(task_of(campaign, held["manager"], 2, desk2.user), desk2.user, T.REVOKE)
    # the head's share: the desk keeps it, desk2 does not answer: not all kept
    decide(task_of(campaign, held["head"], 2, org.fulfiller.user), org.fulfiller.user)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    outcome = dict(campaign.reviews.values_list("entitlement", "decision"))
    assert outcome == {
        held["alice"].pk: D.KEEP,
        held["bob"].pk: D.REMOVE,
        held["manager"].pk: D.REMOVE,
        held["head"].pk: D.UNCONFIRMED,  # the default: report
    }
    assert state_of(held["manager"]) == EntitlementState.REVOKED
    assert state_of(held["head"]) == EntitlementState.ACTIVE
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED


def test_a_second_close_of_the_same_stage_changes_nothing(org, held):
    campaign = start(stages=[StageSpec(working_days=5), OWNERS])
    decide(task_of(campaign, held["alice"]), org.manager.user)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user, stage=1)
    with pytest.raises(ActionConflict):  # a second click, or the beat task behind the page
        services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user, stage=1)
    campaign.refresh_from_db()
    assert (campaign.state, campaign.current_stage) == (Campaign.State.OPEN, 2)
    assert campaign.stages.get(number=2).closed_at is None


def test_undecided_access_is_removed_when_so_configured(org, held):
    campaign = start(undecided_default=UndecidedDefault.REMOVE)
    decide(task_of(campaign, held["alice"]), org.manager.user)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    assert state_of(held["alice"]) == EntitlementState.ACTIVE
    assert state_of(held["bob"]) == EntitlementState.REVOKED
    bob = review_of(campaign, held["bob"])
    assert (bob.decision, bob.decided_by_id) == (D.REMOVE, None)
    assert "Not confirmed" in Entitlement.objects.get(pk=held["bob"].pk).revoke_reason


def test_rerun_asks_only_the_non_responders_again(org, held):
    campaign = start(due_on=in_days(5))
    decide(task_of(campaign, held["alice"]), org.manager.user, T.ACCEPT)
    OutgoingMail.objects.all().delete()
    assert (
        services.campaign_rerun(campaign_id=campaign.pk, user=org.admin.user, working_days=3) == 3
    )
    rounds = dict(
        ReviewTask.objects.filter(review__campaign=campaign).values_list(
            "review__entitlement", "iteration"
        )
    )
    assert rounds == {held["alice"].pk: 1, held["bob"].pk: 2, held["manager"].pk: 2,
                      held["head"].pk: 2}  # fmt: skip
    assert {m.recipient_id for m in OutgoingMail.objects.all()} == {
        org.manager.user.pk, org.head.user.pk, org.admin.user.pk
    }  # fmt: skip
    campaign.refresh_from_db()
    assert campaign.due_on == workdays.add_working_days(timezone.localdate(), 3)
    for key in ("bob", "manager"):
        decide(task_of(campaign, held[key]), org.manager.user if key == "bob" else org.head.user)
    decide(task_of(campaign, held["head"]), org.admin.user)
    with pytest.raises(ActionConflict):
        services.campaign_rerun(campaign_id=campaign.pk, user=org.admin.user, working_days=3)
    with pytest.raises(PermissionDenied):
        services.campaign_rerun(campaign_id=campaign.pk, user=org.manager.user, working_days=3)
    with pytest.raises(ValidationError):
        services.campaign_rerun(campaign_id=campaign.pk, user=org.admin.user, working_days=0)


def test_closed_campaign_takes_no_decisions_and_only_runners_close(org, held):
    campaign = start(due_on=in_days(10))
    with pytest.raises(PermissionDenied):
        services.campaign_stage_close(campaign_id=campaign.pk, user=org.manager.user)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    with pytest.raises(ActionConflict):
        services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    with pytest.raises(ActionConflict):
        decide(task_of(campaign, held["alice"]), org.manager.user)


# --- reminders, escalation, the beat tasks ------------------------------------------------------


def working_day(start, step=1):
    day = start
    while not workdays.is_working_day(day):
        day += datetime.timedelta(days=step)
    return day


def test_reminder_escalation_and_close_follow_working_days(org, held):
    campaign = start(due_on=working_day(in_days(20)))
    stage = campaign.stages.get()
    decide(task_of(campaign, held["manager"]), org.head.user)
    OutgoingMail.objects.all().delete()
    early = working_day(in_days(2))
    assert services.campaigns_remind_and_escalate(today=early)["reminded"] == 0
    weekend = stage.due_on - datetime.timedelta(days=stage.due_on.weekday() + 1)  # a Sunday
    if weekend > timezone.localdate():
        assert services.campaigns_remind_and_escalate(today=weekend) == {
            "reminded": 0, "escalated": 0, "closed": 0
        }  # fmt: skip
    before = working_day(stage.due_on - datetime.timedelta(days=1), step=-1)
    assert services.campaigns_remind_and_escalate(today=before)["reminded"] == 3
    assert services.campaigns_remind_and_escalate(today=before)["reminded"] == 0  # once
    reminded = OutgoingMail.objects.filter(kind="governance.review_reminder")
    assert {m.recipient_id for m in reminded} == {org.manager.user.pk, org.admin.user.pk}
    after = working_day(stage.due_on + datetime.timedelta(days=1))
    assert services.campaigns_remind_and_escalate(today=after)["escalated"] == 2
    assert services.campaigns_remind_and_escalate(today=after)["escalated"] == 0  # once
    alice = task_of(campaign, held["alice"])
    assert (alice.reviewer_id, alice.escalated_from_id, alice.route) == (
        org.head.user.pk,
        org.manager.user.pk,
        TaskRoute.ESCALATED,
    )
    escalated = OutgoingMail.objects.filter(kind="governance.review_escalated")
    assert {m.recipient_id for m in escalated} == {org.head.user.pk}
    decide(alice, org.head.user, T.REVOKE, "Abgelöst.")
    closing = working_day(stage.closes_on + datetime.timedelta(days=1))
    assert services.campaigns_remind_and_escalate(today=closing)["closed"] == 1
    assert state_of(held["alice"]) == EntitlementState.REVOKED
    assert review_of(campaign, held["bob"]).decision == D.UNCONFIRMED
    assert services.campaigns_remind_and_escalate(today=closing)["closed"] == 0


def test_the_three_mails_name_the_campaign_and_what_waits(org, held):
    from notifications.services import compose

    def composed(kind, person):
        mail = OutgoingMail.objects.get(kind=kind, recipient=person.user)
        message = compose(mail)
        assert "Rezertifizierung VPN" in message.subject + message.body
        assert "/zugriffspruefung/" in message.body
        return message.subject + message.body

    campaign = start(name="Rezertifizierung VPN", due_on=working_day(in_days(3)))
    assert "2 accesses wait" in composed("governance.review_requested", org.manager)
    services.campaigns_remind_and_escalate(today=working_day(in_days(1)))
    assert "2 accesses wait" in composed("governance.review_reminder", org.manager)
    after = working_day(campaign.due_on + datetime.timedelta(days=1))
    services.campaigns_remind_and_escalate(today=after)
    text = composed("governance.review_escalated", org.head)
    assert "Escalated to you" in text and "2 accesses wait" in text  # alice's and bob's


def test_escalation_never_reaches_the_holder(org, held):
    """The manager's own access: the head reviews it; the head's manager is nobody, so an
    escalation goes to IT administration; bob's manager's manager is the head."""
    campaign = start(due_on=working_day(in_days(3)))
    after = working_day(campaign.due_on + datetime.timedelta(days=1))
    services.campaigns_remind_and_escalate(today=after)
    manager_task = task_of(campaign, held["manager"])
    assert (manager_task.reviewer_id, manager_task.route) == (None, TaskRoute.FALLBACK)
    with pytest.raises(PermissionDenied):
        decide(manager_task, org.manager.user)


def test_the_beat_tasks_are_routed_and_run(org, held, settings):
    from governance.tasks import recertification_remind_and_escalate, start_due_recertification

    for name in ("start_due_recertification", "recertification_remind_and_escalate"):
        assert settings.CELERY_TASK_ROUTES[f"governance.tasks.{name}"]["queue"] == "reports"
    result = start_due_recertification.apply().get()
    assert Campaign.objects.filter(pk=result["started"]).exists()
    assert set(recertification_remind_and_escalate.apply().get()) == {
        "reminded", "escalated", "closed"
    }  # fmt: skip


def test_periodic_start_is_idempotent(org, held, settings):
    settings.RECERTIFICATION_INTERVAL_DAYS = 365
    first = services.start_due_campaign()
    assert first is not None and first.reviews.count() == 4
    assert first.undecided_default == settings.RECERTIFICATION_UNDECIDED_DEFAULT
    assert services.start_due_campaign() is None
    assert services.start_due_campaign(today=in_days(364)) is None
    Campaign.objects.filter(pk=first.pk).update(
        started_at=timezone.now() - datetime.timedelta(days=365)
    )
    assert services.start_due_campaign() is not None
    settings.RECERTIFICATION_INTERVAL_DAYS = 0
    Campaign.objects.all().delete()
    assert services.start_due_campaign() is None


# --- pages -------------------------------------------------------------------------------------


def test_review_page_saves_several_decisions_at_once(org, held, client):
    campaign = start(due_on=in_days(10))
    alice, bob = task_of(campaign, held["alice"]), task_of(campaign, held["bob"])
    head_row = task_of(campaign, held["manager"])  # the head's: not the manager's to decide
    client.force_login(org.manager.user)
    page = client.get("/zugriffspruefung/")
    assert page.status_code == 200
    body = page.content.decode()
    assert f'name="decision-{alice.pk}"' in body and f'name="decision-{bob.pk}"' in body
    assert f'name="decision-{head_row.pk}"' not in body  # the manager's own access
    response = client.post(
        "/zugriffspruefung/",
        {
            f"decision-{alice.pk}": "reduce",
            f"until-{alice.pk}": in_days(30).isoformat(),
            f"decision-{bob.pk}": "revoke",
            f"comment-{bob.pk}": "Nicht mehr nötig.",
            f"decision-{head_row.pk}": "revoke",
            "decision-abc": "accept",
            f"decision-{alice.pk}9": "accept",
        },
    )
    assert response.status_code == 302
    assert dict(ReviewTask.objects.values_list("pk", "decision")) == {
        alice.pk: T.REDUCE,
        bob.pk: T.REVOKE,
        head_row.pk: T.PENDING,
        task_of(campaign, held["head"]).pk: T.PENDING,
    }
    again = client.get("/zugriffspruefung/").content.decode()
    assert f'value="{in_days(30).isoformat()}"' in again  # decided, changeable until the close


def test_review_page_names_the_row_when_a_removal_has_no_reason(org, held, client):
    campaign = start(due_on=in_days(10))
    bob = task_of(campaign, held["bob"])
    client.force_login(org.manager.user)
    response = client.post("/zugriffspruefung/", {f"decision-{bob.pk}": "revoke"})
    assert response.status_code == 400
    assert "Say why the access is to be removed." in response.content.decode()
    assert ReviewTask.objects.get(pk=bob.pk).decision == T.PENDING


def measure(client, url, expected_status=200):
    assert client.get(url).status_code == expected_status
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == expected_status
    return len(ctx.captured_queries), response


# Pinned: session, user, the user's groups (ids and names, one query), the header's navigation
# counts, then for the review page the substitutions, the tasks and the flagged access (their
# rows, and both counted in one statement); for the campaign page the campaign with its counts,
# its stages and who still has to decide (rows and count); for the report the campaign, the BSI
# check and the decisions (rows and count).
# Equal for few and many rows; a change here must be deliberate.
REVIEW_PAGE_QUERIES = 6
CAMPAIGN_PAGE_QUERIES = 8
REPORT_PAGE_QUERIES = 8


def test_page_queries_are_pinned_and_do_not_grow(org, held, grant, client):
    campaign = start(due_on=in_days(10))
    for key in ("alice", "bob"):
        decide(task_of(campaign, held[key]), org.manager.user)
    client.force_login(org.manager.user)
    review_few, _page = measure(client, "/zugriffspruefung/")
    client.force_login(org.admin.user)
    campaign_few, _page = measure(client, f"/zugriffspruefung/kampagnen/{campaign.pk}/")
    report_few, _page = measure(client, f"/zugriffspruefung/kampagnen/{campaign.pk}/bericht/")
    for _n in range(12):
        grant(
            held["alice"].item,
            EmployeeFactory(department=DepartmentFactory(), manager=org.manager),
        )
    busy = start(due_on=in_days(10), name="R2")
    client.force_login(org.manager.user)
    review_many, page = measure(client, "/zugriffspruefung/")
    assert page.content.decode().count('value="revoke"') >= 14
    client.force_login(org.admin.user)
    campaign_many, _page = measure(client, f"/zugriffspruefung/kampagnen/{busy.pk}/")
    report_many, page = measure(client, f"/zugriffspruefung/kampagnen/{busy.pk}/bericht/")
    assert page.content.decode().count("<tr>") >= 17
    assert (review_few, campaign_few, report_few) == (review_many, campaign_many, report_many)
    assert (review_many, campaign_many, report_many) == (
        REVIEW_PAGE_QUERIES,
        CAMPAIGN_PAGE_QUERIES,
        REPORT_PAGE_QUERIES,
    )


def test_review_counts_are_those_of_the_lists(org, held, grant):
    """The page's one counting statement, compiled once per role with stand-ins for the
    user and the day, counts what tasks_for and flagged_for list: as reviewer, as a
    substitute, as IT admin (the tasks without a reviewer), never one's own access."""
    grant(held["head"].item, org.admin)
    start(due_on=in_days(10))
    Entitlement.objects.filter(pk=held["alice"].pk).update(review_note="moved")
    carol = EmployeeFactory(department=org.department, user__username="carol")
    request_services.substitution_create(
        principal=org.manager.user, substitute=carol.user, starts_on=in_days(-1), ends_on=in_days(1)
    )
    seen = set()
    for user in (org.manager.user, carol.user, org.admin.user, org.alice.user):
        expected = (selectors.tasks_for(user).count(), selectors.flagged_for(user).count())
        assert selectors.review_counts(user, 10_000) == expected
        seen.add(expected)
    assert len(seen) > 2  # the users' lists differ
    tasks = selectors.tasks_for(org.manager.user).count()
    assert tasks > 1
    assert selectors.review_counts(org.manager.user, tasks - 2)[0] == tasks - 1  # bounded


def test_review_page_with_nothing_to_decide_counts_and_reads_no_rows(org, held, client):
    """Between campaigns both lists are empty: counted, but the rows' query (select_related
    five tables deep) is not built; the page is the same empty first page."""
    client.force_login(org.manager.user)
    _queries, page = measure(client, "/zugriffspruefung/?page=3&flagged_page=2")
    assert (page.context["tasks"].object_list, page.context["flagged"].object_list) == ([], [])
    assert (page.context["tasks"].number, page.context["flagged"].number) == (1, 1)
    assert 'name="decision-' not in page.content.decode()


def test_mover_flag_is_decided_and_cleared(org, held, client):
    Entitlement.objects.filter(pk__in=[held["alice"].pk, held["bob"].pk]).update(
        review_note="Wechsel von FB20 nach FB10"
    )
    client.force_login(org.manager.user)
    page = client.get("/zugriffspruefung/")
    assert "Wechsel von FB20 nach FB10" in page.content.decode()
    client.post(
        "/zugriffspruefung/",
        {f"flag-{held['alice'].pk}": "keep", f"flag-{held['bob'].pk}": "remove"},
    )
    alice = Entitlement.objects.get(pk=held["alice"].pk)
    bob = Entitlement.objects.get(pk=held["bob"].pk)
    assert (alice.review_note, alice.state) == ("", EntitlementState.ACTIVE)
    assert (bob.review_note, bob.state) == ("", EntitlementState.REVOKED)
    with pytest.raises(PermissionDenied):
        services.flagged_decide(entitlement_id=alice.pk, user=org.alice.user, decision=D.KEEP)


def review_link(client, url="/antraege/") -> str | None:
    """The header's "Zugriffe prüfen" link, or None where it is hidden."""
    content = client.get(url).content.decode()
    menu = content[content.index('aria-label="Main navigation"') : content.index("</nav>")]
    if 'href="/zugriffspruefung/"' not in menu:
        return None
    link = menu[menu.index('href="/zugriffspruefung/"') :]
    return link[: link.index("</a>")]


def test_the_header_leads_reviewers_to_their_open_items(org, held, client, settings):
    settings.PORTAL_NAV_COUNTS_SECONDS = 0  # count afresh on each page
    client.force_login(org.manager.user)
    assert review_link(client) is None  # nothing to decide: no link
    campaign = start(due_on=in_days(10))
    link = review_link(client)
    assert '<span class="count">2<span class="visually-hidden"> to decide' in link
    # A mover's flagged access counts too; deciding takes it off.
    Entitlement.objects.filter(pk=held["alice"].pk).update(
        review_note="Wechsel", review_due_on=in_days(14)
    )
    assert '<span class="count">3<' in review_link(client)
    decide(task_of(campaign, held["alice"]), org.manager.user)
    services.flagged_decide(entitlement_id=held["alice"].pk, user=org.manager.user, decision=D.KEEP)
    assert '<span class="count">1<' in review_link(client)
    assert 'aria-current="page"' in review_link(client, "/zugriffspruefung/")
    # The holder sees no link for her own access; once all is decided it goes.
    client.force_login(org.alice.user)
    assert review_link(client) is None
    client.force_login(org.manager.user)
    decide(task_of(campaign, held["bob"]), org.manager.user, T.REVOKE)
    assert review_link(client) is None
    # In German.
    client.force_login(org.head.user)
    with_task = review_link(client, "/antraege/")
    assert with_task is not None  # the head reviews the manager's VPN
    response = client.get("/antraege/", HTTP_ACCEPT_LANGUAGE="de")
    assert "Zugriffe prüfen" in response.content.decode()


def start_form(**fields):
    return {
        "name": "Rezertifizierung 2027",
        "scope": "all",
        "rule_1": "line_manager",
        "strategy_1": "one_accept_accepts",
        "days_1": "10",
        "rule_2": "",
        "strategy_2": "one_accept_accepts",
        "days_2": "5",
        "undecided_default": "remove",
        **fields,
    }


def test_campaign_pages_for_it_admins_and_controlling(
    org, held, client, django_capture_on_commit_callbacks
):
    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    for person in (org.manager, org.alice):
        client.force_login(person.user)
        assert client.get("/zugriffspruefung/kampagnen/").status_code == 403
        assert client.post("/zugriffspruefung/kampagnen/", start_form()).status_code == 403
    client.force_login(controller.user)
    for bad in ({"name": ""}, {"scope": "item"}, {"days_1": "0"}, {"rule_2": "boss"},
                {"scope": "risk", "risk_limit": "-1"}, {"undecided_default": ""}):  # fmt: skip
        assert client.post("/zugriffspruefung/kampagnen/", start_form(**bad)).status_code == 400
    assert not Campaign.objects.exists()
    started = client.post(
        "/zugriffspruefung/kampagnen/",
        start_form(rule_2="item_owner", strategy_2="all_must_accept"),
    )
    campaign = Campaign.objects.get()
    assert started.status_code == 302
    assert campaign.started_by == controller.user
    assert list(campaign.stages.values_list("reviewer_rule", "outcome_strategy")) == [
        ("line_manager", "one_accept_accepts"),
        ("item_owner", "all_must_accept"),
    ]
    decide(task_of(campaign, held["bob"]), org.manager.user, T.REVOKE)
    page = client.get(f"/zugriffspruefung/kampagnen/{campaign.pk}/")
    assert page.context["campaign"].pending == 4
    bad_rerun = client.post(
        f"/zugriffspruefung/kampagnen/{campaign.pk}/", {"action": "rerun", "working_days": "x"}
    )
    assert bad_rerun.status_code == 400
    rerun = client.post(
        f"/zugriffspruefung/kampagnen/{campaign.pk}/", {"action": "rerun", "working_days": "4"}
    )
    assert rerun.status_code == 302 and campaign.stages.get(number=1).reruns == 1
    client.post(f"/zugriffspruefung/kampagnen/{campaign.pk}/", {"action": "closing"})
    client.post(f"/zugriffspruefung/kampagnen/{campaign.pk}/", {"action": "close", "stage": "2"})
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.OPEN  # not so
    with django_capture_on_commit_callbacks(execute=True):  # the worker, eager
        client.post(
            f"/zugriffspruefung/kampagnen/{campaign.pk}/", {"action": "close", "stage": "1"}
        )
    campaign.refresh_from_db()
    assert (campaign.state, campaign.current_stage) == (Campaign.State.CLOSED, 1)
    # everything else was undecided and removed as configured; nothing went on to stage 2
    assert state_of(held["alice"]) == EntitlementState.REVOKED
    assert client.get("/zugriffspruefung/kampagnen/999999/").status_code == 404
    assert (
        client.post("/zugriffspruefung/kampagnen/999999/", {"action": "close"}).status_code == 404
    )


def test_closing_a_stage_on_the_page_runs_in_a_worker_and_locks_decisions_at_once(
    org, held, client, django_capture_on_commit_callbacks
):
    """The page only asks: decisions are locked in that transaction, the page says "being
    closed", and the worker (eager, as the other task tests run it) does the close; a
    second request, a redelivery and a lost wake-up (the sweeper) each close it once."""
    from governance import tasks

    campaign = start(due_on=in_days(10), stages=[StageSpec(), OWNERS])
    decide(task_of(campaign, held["bob"]), org.manager.user, T.REVOKE)
    decide(task_of(campaign, held["alice"]), org.manager.user)
    url = f"/zugriffspruefung/kampagnen/{campaign.pk}/"
    client.force_login(org.admin.user)
    with django_capture_on_commit_callbacks() as woken:
        response = client.post(url, {"action": "close", "stage": "1"})
        assert response.status_code == 302
        assert client.post(url, {"action": "close", "stage": "1"}).status_code == 302
    assert len(woken) == 1  # the second click found the close under way
    campaign.refresh_from_db()
    assert campaign.closing_requested_at is not None and campaign.current_stage == 1
    # Locked from now on: no decision changes, no re-run; nothing removed yet.
    assert not ReviewTask.objects.filter(review__campaign=campaign, locked=False).exists()
    with pytest.raises(ActionConflict):
        decide(task_of(campaign, held["alice"]), org.manager.user, T.REVOKE)
    with pytest.raises(ActionConflict, match="being closed"):
        services.campaign_rerun(campaign_id=campaign.pk, user=org.admin.user, working_days=3)
    assert state_of(held["bob"]) == EntitlementState.ACTIVE
    page = client.get(url).content.decode()
    assert "Stage 1 is being closed" in page and 'value="close"' not in page
    with django_capture_on_commit_callbacks(execute=True):
        woken[0]()  # the worker picks the message up
    campaign.refresh_from_db()
    assert (campaign.current_stage, campaign.closing_requested_at) == (2, None)
    assert state_of(held["bob"]) == EntitlementState.REVOKED
    assert "being closed" not in client.get(url).content.decode()
    # A redelivered message: nothing twice.
    assert tasks.close_recertification_stage.apply(
        kwargs={"campaign_id": campaign.pk, "stage": 1}
    ).get() == {"skipped": "closed already"}
    assert Campaign.objects.get(pk=campaign.pk).current_stage == 2
    # Stage 2's close loses its wake-up (the broker was away): the sweeper finds it.
    with django_capture_on_commit_callbacks():  # never run
        services.campaign_stage_close_request(campaign_id=campaign.pk, user=org.admin.user)
    assert tasks.sweep_stage_closes.apply().get() == {"woken": 0}  # not stalled yet
    Campaign.objects.filter(pk=campaign.pk).update(
        closing_requested_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    assert tasks.sweep_stage_closes.apply().get() == {"woken": 1}
    campaign.refresh_from_db()
    assert (campaign.state, campaign.closing_requested_at) == (Campaign.State.CLOSED, None)
    assert tasks.sweep_stage_closes.apply().get() == {"woken": 0}


def test_report_for_auditors_as_page_and_streamed_csv(org, held, client):
    dpo_group, _created = Group.objects.get_or_create(name=roles.DATA_PROTECTION)
    dpo = EmployeeFactory(department=org.department, user__groups=[dpo_group])
    campaign = start(due_on=in_days(10))
    decide(task_of(campaign, held["bob"]), org.manager.user, T.REVOKE, "Projekt vorbei.")
    decide(task_of(campaign, held["alice"]), org.manager.user)
    services.campaign_stage_close(campaign_id=campaign.pk, user=org.admin.user)
    url = f"/zugriffspruefung/kampagnen/{campaign.pk}/bericht/"
    for person in (org.manager, org.alice):
        client.force_login(person.user)
        assert client.get(url).status_code == 403
        assert client.get(url + "?format=csv").status_code == 403
    client.force_login(dpo.user)
    page = client.get(url)
    body = page.content.decode()
    assert "ORP.4.A3" in body and "APP.2.2" not in body  # no directory access in scope
    assert "Projekt vorbei." in body
    export = client.get(url + "?format=csv")
    assert export.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 4
    bob = next(r for r in rows if r["reason"] == "Projekt vorbei.")
    assert (bob["decision"], bob["outcome"], bob["stage"], bob["bsi"]) == (
        "Remove",
        "Remove",
        "1",
        "ORP.4.A3",
    )
    assert bob["decided_by"] == org.manager.user.get_full_name()
    assert bob["decided_at"] and bob["outcome_at"]
    head = next(r for r in rows if r["person"] == org.head.display_name)
    assert (head["reviewer"], head["decision"], head["outcome"]) == (
        "IT administration",
        "Not yet decided",
        "Not confirmed (reported)",
    )
    assert client.get("/zugriffspruefung/kampagnen/999999/bericht/").status_code == 404


def test_report_names_app_2_2_when_directory_access_is_in_scope(org, grant, held):
    directory = make_item(org.service_desk, name="AD", slug="ad", kind=FulfilmentKind.AUTOMATED)
    grant(directory, org.alice)
    campaign = start(scope=CampaignScope.ITEM, item=directory)
    assert [r.code for r in selectors.bsi_requirements(campaign)] == ["ORP.4.A3", "APP.2.2"]


def test_the_data_migration_turns_each_old_reviewer_into_a_task(org, held):
    """Campaigns started before stages: one line-manager stage, each review's reviewer (none:
    IT administration) a task, decided and locked where the review was decided."""
    from django.db.migrations.executor import MigrationExecutor

    with connection.cursor() as cursor:  # the fixtures' rows: checked before ALTER TABLE
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.migrate([("governance", "0002_recertification")])
    rows = [
        (held["alice"], org.manager.user.pk, "remove", ""),
        (held["bob"], org.manager.user.pk, "keep", "passt"),
        (held["head"], None, "pending", ""),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO governance_campaign (name, state, started_at, due_on) "
            "VALUES ('Alt', 'open', now(), %s) RETURNING id",
            [in_days(10)],
        )
        campaign_id = cursor.fetchone()[0]
        for entitlement, reviewer, decision, comment in rows:
            decided = decision != "pending"
            cursor.execute(
                "INSERT INTO governance_review (campaign_id, entitlement_id, reviewer_id, "
                "decision, decided_by_id, decided_at, comment) "
                "VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN now() END, %s)",
                [campaign_id, entitlement.pk, reviewer, decision,
                 reviewer if decided else None, decided, comment],
            )  # fmt: skip
        # Inside the test's transaction: run the deferred checks before the next ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("governance"))
    campaign = Campaign.objects.get(pk=campaign_id)
    stage = campaign.stages.get()
    assert (stage.reviewer_rule, stage.due_on) == (ReviewerRule.LINE_MANAGER, in_days(10))
    tasks = {
        t.review.entitlement_id: (t.reviewer_id, t.route, t.decision, t.locked, bool(t.comment))
        for t in ReviewTask.objects.filter(review__campaign=campaign).select_related("review")
    }
    assert tasks == {
        held["alice"].pk: (org.manager.user.pk, TaskRoute.LINE_MANAGER, T.REVOKE, True, True),
        held["bob"].pk: (org.manager.user.pk, TaskRoute.LINE_MANAGER, T.ACCEPT, True, True),
        held["head"].pk: (None, TaskRoute.FALLBACK, T.PENDING, False, False),
    }
    head = task_of(campaign, held["head"])
    assert head in selectors.tasks_for(org.admin.user)
    decide(head, org.admin.user)
