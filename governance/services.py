"""Writes of governance: recertification campaigns, their stages and decisions."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from governance import mails, outcomes, reviewers
from governance.choices import (
    CampaignScope,
    OutcomeStrategy,
    ReviewerRule,
    TaskDecision,
    UndecidedDefault,
)
from governance.models import Campaign, CampaignStage, Review, ReviewTask
from itportal import workdays
from itportal.exceptions import ActionConflict
from itportal.roles import IT_ADMIN, is_controlling, is_it_admin
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from provisioning.movers import review_done
from provisioning.services import entitlement_revoke
from requests_app.selectors import principals_substituted_by

D = Review.Decision
T = TaskDecision
MAX_STAGES = 3


def _clean_name(name) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or "\x00" in name:
        raise ValidationError(
            {"name": _("Give the recertification a name of up to 200 characters.")}
        )
    return name


def may_run_campaigns(user) -> bool:
    """IT administration or IT controlling start, advance and re-run campaigns."""
    return is_it_admin(user) or is_controlling(user)


@dataclass(frozen=True)
class StageSpec:
    reviewer_rule: str = ReviewerRule.LINE_MANAGER
    outcome_strategy: str = OutcomeStrategy.ONE_ACCEPT_ACCEPTS
    working_days: int = 20


def _clean_stages(stages) -> list[StageSpec]:
    stages = list(stages or [StageSpec()])
    if not 1 <= len(stages) <= MAX_STAGES:
        raise ValidationError({"stages": _("A recertification has one to three stages.")})
    for stage in stages:
        if stage.reviewer_rule not in ReviewerRule.values:
            raise ValidationError({"stages": _("Choose who reviews in each stage.")})
        if stage.outcome_strategy not in OutcomeStrategy.values:
            raise ValidationError({"stages": _("Choose how each stage's decisions combine.")})
        if not isinstance(stage.working_days, int) or not 1 <= stage.working_days <= 250:
            raise ValidationError({"stages": _("Each stage lasts between 1 and 250 working days.")})
    return stages


def _clean_scope(scope, item, department, risk_limit):
    if scope not in CampaignScope.values:
        raise ValidationError({"scope": _("Choose what to review.")})
    if scope == CampaignScope.ITEM and item is None:
        raise ValidationError({"scope_item": _("Choose the service to review.")})
    if scope == CampaignScope.DEPARTMENT and department is None:
        raise ValidationError({"scope_department": _("Choose the department to review.")})
    if scope == CampaignScope.RISK and not (
        isinstance(risk_limit, int) and 1 <= risk_limit <= 100_000
    ):
        raise ValidationError(
            {"risk_limit": _("Say how many of the riskiest accesses to review (1 to 100,000).")}
        )
    return (
        item if scope == CampaignScope.ITEM else None,
        department if scope == CampaignScope.DEPARTMENT else None,
        risk_limit if scope == CampaignScope.RISK else None,
    )


# One statement, whatever the number of entitlements: a review per access in scope.
_START_SQL = (
    "INSERT INTO {review} (campaign_id, entitlement_id, stage, decision, comment) "
    "SELECT %s, scoped.id, 1, 'pending', '' FROM ({scoped}) scoped"
)


@transaction.atomic
def campaign_start(
    *,
    name,
    due_on: datetime.date | None = None,
    user=None,
    scope: str = CampaignScope.ALL,
    item=None,
    department=None,
    risk_limit: int | None = None,
    undecided_default: str = UndecidedDefault.REPORT,
    stages=None,
) -> Campaign:
    """Ask the reviewers of the first stage to confirm or remove the lasting access in
    scope. ``due_on`` (the first stage's due date) defaults to its working days from today."""
    from governance.selectors import campaign_scope

    name = _clean_name(name)
    stages = _clean_stages(stages)
    item, department, risk_limit = _clean_scope(scope, item, department, risk_limit)
    if undecided_default not in UndecidedDefault.values:
        raise ValidationError(
            {"undecided_default": _("Choose what happens to access nobody decided on.")}
        )
    today = timezone.localdate()
    if due_on is None:
        due_on = workdays.add_working_days(today, stages[0].working_days)
    if not isinstance(due_on, datetime.date) or due_on <= today:
        raise ValidationError({"due_on": _("The due date must lie in the future.")})
    if due_on > today + datetime.timedelta(days=366):
        raise ValidationError({"due_on": _("The due date must lie within a year.")})
    campaign = Campaign.objects.create(
        name=name,
        due_on=due_on,
        started_by=user,
        scope=scope,
        scope_item=item,
        scope_department=department,
        risk_limit=risk_limit,
        undecided_default=undecided_default,
    )
    CampaignStage.objects.bulk_create(
        CampaignStage(
            campaign=campaign,
            number=number,
            reviewer_rule=spec.reviewer_rule,
            outcome_strategy=spec.outcome_strategy,
            working_days=spec.working_days,
        )
        for number, spec in enumerate(stages, start=1)
    )
    scoped_sql, scoped_params = campaign_scope(campaign).values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            _START_SQL.format(
                review=connection.ops.quote_name(Review._meta.db_table), scoped=scoped_sql
            ),
            [campaign.pk, *scoped_params],
        )
    _stage_open(campaign, campaign.stages.get(number=1), today=today, due_on=due_on)
    return campaign


def _stage_open(campaign, stage, *, today, due_on=None) -> None:
    """Open ``stage``: its deadlines in working days, its tasks, the reviewers' mail."""
    stage.opened_on = today
    stage.due_on = due_on or workdays.add_working_days(today, stage.working_days)
    stage.closes_on = workdays.add_working_days(
        stage.due_on, settings.RECERTIFICATION_ESCALATION_DAYS
    )
    stage.save()
    campaign.current_stage = stage.number
    campaign.due_on = stage.due_on
    campaign.save(update_fields=["current_stage", "due_on"])
    reviewers.create_tasks(campaign_id=campaign.pk, stage=stage.number, rule=stage.reviewer_rule)
    _mail_reviewers(
        campaign,
        ReviewTask.objects.filter(review__campaign=campaign, stage=stage.number),
        mails.queue_review_requested,
    )


def _mail_reviewers(campaign, tasks, queue) -> None:
    """One mail per reviewer of ``tasks``; IT admins where a task has no reviewer."""
    people = get_user_model().objects.filter(is_active=True)
    queue(campaign, people.filter(review_tasks__in=tasks).distinct())
    if tasks.filter(reviewer__isnull=True).exists():
        queue(campaign, people.filter(groups__name=IT_ADMIN).distinct())


def start_due_campaign(*, today: datetime.date | None = None) -> Campaign | None:
    """The periodic recertification: a new campaign when the last one started
    ``RECERTIFICATION_INTERVAL_DAYS`` ago or more (0 switches it off)."""
    interval = settings.RECERTIFICATION_INTERVAL_DAYS
    if not interval:
        return None
    today = today or timezone.localdate()
    last = Campaign.objects.order_by("-started_at").values_list("started_at", flat=True).first()
    if last is not None and timezone.localdate(last) > today - datetime.timedelta(days=interval):
        return None
    # Two runs at once cannot both start one: the task holds an advisory lock (single_run).
    return campaign_start(
        name=_("Recertification %(date)s") % {"date": today.strftime("%d.%m.%Y")},
        stages=[StageSpec(working_days=settings.RECERTIFICATION_DUE_DAYS)],
        undecided_default=settings.RECERTIFICATION_UNDECIDED_DEFAULT,
    )


def may_decide(task: ReviewTask, user) -> bool:
    """The reviewer, their substitute of today, or IT administration for tasks without a
    reviewer; never the holder themselves (no self-review)."""
    if not user.is_authenticated or task.review.entitlement.holder.user_id == user.pk:
        return False
    if task.reviewer_id is None:
        return is_it_admin(user)
    if task.reviewer_id == user.pk:
        return True
    return principals_substituted_by(user).filter(principal_id=task.reviewer_id).exists()


def _clean_decision(decision, comment, reduce_until, entitlement):
    if decision not in (T.ACCEPT, T.REVOKE, T.REDUCE):
        raise ValidationError({"decision": _("Choose keep, remove or keep for a shorter time.")})
    comment = (comment or "").strip()
    if len(comment) > 500 or "\x00" in comment:
        raise ValidationError(
            {"comment": _("The comment is too long or contains invalid characters.")}
        )
    if decision == T.REVOKE and not comment:
        raise ValidationError({"comment": _("Say why the access is to be removed.")})
    if decision != T.REDUCE:
        return comment, None
    today = timezone.localdate()
    if not isinstance(reduce_until, datetime.date) or reduce_until <= today:
        raise ValidationError({"reduce_until": _("Give a last day in the future.")})
    if entitlement.expires_on is not None and reduce_until >= entitlement.expires_on:
        raise ValidationError(
            {
                "reduce_until": _("The access ends on %(date)s already; choose an earlier day.")
                % {"date": entitlement.expires_on.strftime("%d.%m.%Y")}
            }
        )
    if reduce_until > today + datetime.timedelta(days=3 * 366):
        raise ValidationError({"reduce_until": _("Give a last day within three years.")})
    return comment, reduce_until


@transaction.atomic
def review_task_decide(
    *, task_id: int, user, decision: str, comment: str = "", reduce_until=None
) -> ReviewTask:
    """A reviewer keeps, removes (with a reason) or shortens one access. The decision may
    change until the stage closes; the outcome (and any removal) follows at the close."""
    task = (
        ReviewTask.objects.select_for_update(of=("self",))
        .select_related("review__campaign", "review__entitlement__holder")
        .get(pk=task_id)
    )
    comment, reduce_until = _clean_decision(
        decision, comment, reduce_until, task.review.entitlement
    )
    if not may_decide(task, user):
        raise PermissionDenied(_("You may not decide on this access."))
    if task.locked or task.review.campaign.state != Campaign.State.OPEN:
        raise ActionConflict(_("This stage of the recertification is closed."))
    if (task.decision, task.comment, task.reduce_until) == (decision, comment, reduce_until):
        return task  # a second click, or another tab: already so
    task.decision = decision
    task.comment = comment
    task.reduce_until = reduce_until
    task.decided_by = user
    task.decided_at = timezone.now()
    task.save()
    return task


def _settle_entitlement(entitlement, user, decision, *, reason) -> None:
    """Mark the mover's review of the access done; remove the access where so decided."""
    review_done([entitlement.pk])
    if decision == D.REMOVE and entitlement.state == EntitlementState.ACTIVE:
        entitlement_revoke(entitlement_id=entitlement.pk, user=user, reason=reason, authorised=True)


@transaction.atomic
def flagged_decide(*, entitlement_id: int, user, decision: str) -> Entitlement:
    """A mover's new line manager keeps or removes an access flagged for review."""
    if decision not in (D.KEEP, D.REMOVE):
        raise ValidationError({"decision": _("Choose keep or remove.")})
    entitlement = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("holder__manager")
        .get(pk=entitlement_id)
    )
    manager = entitlement.holder.manager
    allowed = manager is not None and (
        manager.user_id == user.pk
        or principals_substituted_by(user).filter(principal_id=manager.user_id).exists()
    )
    if not allowed or entitlement.holder.user_id == user.pk:
        raise PermissionDenied(_("You may not decide on this access."))
    if not entitlement.review_note:
        raise ActionConflict(_("This access has been decided already."))
    _settle_entitlement(
        entitlement,
        user,
        decision,
        reason=_("Reviewed after a change of department: access no longer needed."),
    )
    return entitlement


# --- stage close, re-run, reminders and escalation ---------------------------------------


def _require_runner(user) -> None:
    if user is not None and not may_run_campaigns(user):
        raise PermissionDenied(_("Only IT administration or IT controlling run recertifications."))


def _campaign_to_close(campaign_id: int, user, stage: int | None) -> Campaign:
    """The campaign, locked, whose stage ``stage`` (the one the caller saw) is to close;
    ActionConflict when it closed meanwhile."""
    _require_runner(user)
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if campaign.state == Campaign.State.CLOSED:
        raise ActionConflict(_("This recertification is closed."))
    if stage is not None and stage != campaign.current_stage:
        raise ActionConflict(_("This stage of the recertification is closed."))
    return campaign


@transaction.atomic
def campaign_stage_close_request(*, campaign_id: int, user, stage: int | None = None) -> Campaign:
    """Start closing the stage under way in the background (a large stage takes longer than
    a page may): its decisions are locked at once, the request is recorded with the campaign
    (the outbox row) and a worker is woken after commit; the sweeper picks up a close whose
    wake-up was lost. A second request while one is under way changes nothing."""
    from governance import tasks

    campaign = _campaign_to_close(campaign_id, user, stage)
    if campaign.closing_requested_at is not None:
        return campaign
    ReviewTask.objects.filter(
        review__campaign=campaign, stage=campaign.current_stage, locked=False
    ).update(locked=True)
    campaign.closing_requested_at = timezone.now()
    campaign.save(update_fields=["closing_requested_at"])
    stage = campaign.current_stage
    transaction.on_commit(
        lambda: tasks.close_recertification_stage.delay(campaign_id=campaign_id, stage=stage)
    )
    return campaign


@transaction.atomic
def campaign_stage_close(*, campaign_id: int, user=None, stage: int | None = None) -> Campaign:
    """Close the stage under way: lock its decisions, work out each access's outcome by the
    stage's strategy, remove what is to go (through the usual deprovisioning jobs), apply
    the campaign's default to what nobody decided, and open the next stage or close the
    campaign. ``user`` None: the beat task at the stage's closing day. ``stage``: the stage
    the caller saw; when another close came first (a second click, the beat task), nothing
    happens twice."""
    campaign = _campaign_to_close(campaign_id, user, stage)
    stage = campaign.stages.get(number=campaign.current_stage)
    ReviewTask.objects.filter(review__campaign=campaign, stage=stage.number, locked=False).update(
        locked=True
    )
    stage.closed_at = timezone.now()
    stage.save(update_fields=["closed_at"])
    following = campaign.stages.filter(number=stage.number + 1).first()
    tasks = defaultdict(list)
    for task in ReviewTask.objects.filter(
        review__campaign=campaign, review__decision=D.PENDING, stage=stage.number
    ).order_by("decided_at", "id"):
        tasks[task.review_id].append(task)
    reviews = list(
        Review.objects.filter(campaign=campaign, stage=stage.number, decision=D.PENDING)
        .select_related("entitlement")
        .order_by("id")
    )
    now = timezone.now()
    onward, removals, settled = [], [], []
    for review in reviews:
        mine = tasks.get(review.pk, [])
        outcome = outcomes.stage_outcome(stage.outcome_strategy, [t.decision for t in mine])
        shorter = [t.reduce_until for t in mine if t.decision == T.REDUCE]
        if outcome == T.ACCEPT and shorter:
            review.reduce_until = min([*shorter, review.reduce_until or max(shorter)])
        if outcome is None:
            if campaign.undecided_default == UndecidedDefault.REMOVE:
                review.decision = D.REMOVE
                review.comment = _("Not confirmed by the deadline: removed as configured.")
                removals.append(review)
            else:
                review.decision = D.UNCONFIRMED
                review.comment = _("Not confirmed by the deadline: reported as configured.")
            review.decided_by, review.decided_at = None, now
            settled.append(review)
        elif outcome == T.REVOKE:
            revoker = next(t for t in mine if t.decision == T.REVOKE)
            review.decision, review.comment = D.REMOVE, revoker.comment
            review.decided_by_id, review.decided_at = revoker.decided_by_id, now
            removals.append(review)
            settled.append(review)
        elif following is not None:
            review.stage = following.number
            onward.append(review)
        else:
            keeper = next(t for t in reversed(mine) if t.decision in (T.ACCEPT, T.REDUCE))
            review.decision = D.REDUCE if review.reduce_until else D.KEEP
            review.comment = keeper.comment
            review.decided_by_id, review.decided_at = keeper.decided_by_id, now
            settled.append(review)
    Review.objects.bulk_update(
        [*settled, *onward],
        ["stage", "decision", "comment", "decided_by", "decided_at", "reduce_until"],
        batch_size=1000,
    )
    _apply_outcomes(campaign, removals, [r for r in settled if r.decision == D.REDUCE])
    if following is not None and onward:
        _stage_open(campaign, following, today=timezone.localdate())
    else:
        campaign.state = Campaign.State.CLOSED
        campaign.closed_at = now
        campaign.save(update_fields=["state", "closed_at"])
    if campaign.closing_requested_at is not None:
        campaign.closing_requested_at = None
        campaign.save(update_fields=["closing_requested_at"])
    return campaign


def stalled_stage_closes(*, older_than_seconds: int = 120) -> list[tuple[int, int]]:
    """Campaigns whose close was asked for but not done (a lost wake-up, a worker gone):
    (campaign id, stage) for the sweeper."""
    before = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    return list(
        Campaign.objects.filter(
            state=Campaign.State.OPEN, closing_requested_at__lt=before
        ).values_list("pk", "current_stage")
    )


def _apply_outcomes(campaign, removals, shortened) -> None:
    for review in removals:
        if review.entitlement.state != EntitlementState.ACTIVE:
            continue  # removed meanwhile (a leaver, a revocation by hand)
        try:
            with transaction.atomic():
                entitlement_revoke(
                    entitlement_id=review.entitlement_id,
                    user=review.decided_by,
                    reason=_("Recertification “%(name)s”: %(reason)s")
                    % {"name": campaign.name, "reason": review.comment},
                    authorised=True,
                )
        except ActionConflict:
            continue  # being revoked since we read it: the same end
    for review in shortened:
        # The expiry run removes it on that day, through the usual jobs.
        Entitlement.objects.filter(pk=review.entitlement_id, state=EntitlementState.ACTIVE).filter(
            Q(expires_on__isnull=True) | Q(expires_on__gt=review.reduce_until)
        ).update(expires_on=review.reduce_until)


@transaction.atomic
def campaign_rerun(*, campaign_id: int, user, working_days: int) -> int:
    """Ask the stage's non-responders again, with a new due date; decisions already made
    stay. Returns the number of tasks asked again."""
    _require_runner(user)
    if not isinstance(working_days, int) or not 1 <= working_days <= 250:
        raise ValidationError({"working_days": _("Give between 1 and 250 working days.")})
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if campaign.state == Campaign.State.CLOSED:
        raise ActionConflict(_("This recertification is closed."))
    if campaign.closing_requested_at is not None:
        raise ActionConflict(_("This stage is being closed; its decisions are locked."))
    stage = campaign.stages.get(number=campaign.current_stage)
    silent = ReviewTask.objects.filter(
        review__campaign=campaign, stage=stage.number, locked=False, decision=T.PENDING
    )
    count = silent.update(iteration=F("iteration") + 1, reminded_at=None)
    if not count:
        raise ActionConflict(_("Every reviewer of this stage has answered."))
    stage.reruns += 1
    stage.due_on = workdays.add_working_days(timezone.localdate(), working_days)
    stage.closes_on = workdays.add_working_days(
        stage.due_on, settings.RECERTIFICATION_ESCALATION_DAYS
    )
    stage.save(update_fields=["reruns", "due_on", "closes_on"])
    campaign.due_on = stage.due_on
    campaign.save(update_fields=["due_on"])
    _mail_reviewers(campaign, silent, mails.queue_review_requested)
    return count


def campaigns_remind_and_escalate(*, today: datetime.date | None = None) -> dict:
    """Daily on working days: remind reviewers ``RECERTIFICATION_REMINDER_DAYS`` working days
    before a stage's due date, escalate what is undecided after it to the reviewer's line
    manager (or IT administration), close stages whose escalation window has passed.
    Idempotent: each task is reminded and escalated once, a closed stage stays closed."""
    today = today or timezone.localdate()
    counts = {"reminded": 0, "escalated": 0, "closed": 0}
    if not workdays.is_working_day(today):
        return counts
    stages = CampaignStage.objects.filter(
        campaign__state=Campaign.State.OPEN,
        # being closed by a worker (asked for on the page): nothing to remind or escalate
        campaign__closing_requested_at__isnull=True,
        number=F("campaign__current_stage"),
        closed_at__isnull=True,
    ).values_list("campaign_id", "number", "due_on", "closes_on")
    for campaign_id, number, due_on, closes_on in stages:
        if today > closes_on:
            try:
                campaign_stage_close(campaign_id=campaign_id, stage=number)
            except ActionConflict:
                continue  # closed by hand meanwhile
            counts["closed"] += 1
        elif today > due_on:
            counts["escalated"] += _escalate(campaign_id)
        elif workdays.working_days_between(today, due_on) <= settings.RECERTIFICATION_REMINDER_DAYS:
            counts["reminded"] += _remind(campaign_id)
    return counts


def _open_silent_tasks(campaign):
    return ReviewTask.objects.select_for_update(of=("self",)).filter(
        review__campaign=campaign,
        stage=campaign.current_stage,
        locked=False,
        decision=T.PENDING,
    )


@transaction.atomic
def _remind(campaign_id: int) -> int:
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    due = _open_silent_tasks(campaign).filter(reminded_at__isnull=True)
    ids = list(due.values_list("id", flat=True))
    if ids:
        tasks = ReviewTask.objects.filter(pk__in=ids)
        tasks.update(reminded_at=timezone.now())
        _mail_reviewers(campaign, tasks, mails.queue_review_reminder)
    return len(ids)


@transaction.atomic
def _escalate(campaign_id: int) -> int:
    from governance.choices import TaskRoute

    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    due = list(
        _open_silent_tasks(campaign)
        .filter(escalated_at__isnull=True, reviewer__isnull=False)
        .select_related("reviewer__employee__manager__user", "review__entitlement__holder")
    )
    now = timezone.now()
    for task in due:
        task.escalated_from_id = task.reviewer_id
        task.reviewer_id = reviewers.escalation_target(task)
        task.route = TaskRoute.ESCALATED if task.reviewer_id else TaskRoute.FALLBACK
        task.escalated_at = now
    ReviewTask.objects.bulk_update(
        due, ["escalated_from", "reviewer", "route", "escalated_at"], batch_size=1000
    )
    if due:
        _mail_reviewers(
            campaign,
            ReviewTask.objects.filter(pk__in=[t.pk for t in due]),
            mails.queue_review_escalated,
        )
    return len(due)
