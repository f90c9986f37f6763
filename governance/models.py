"""Segregation of duties (services one person must not hold together) and recertification
campaigns (who still needs what)."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from governance.choices import (
    CampaignScope,
    OutcomeStrategy,
    ReviewerRule,
    TaskDecision,
    TaskRoute,
    UndecidedDefault,
)


class SodRule(models.Model):
    """Two catalogue items no one may hold (or have ordered) at the same time, e.g. creating
    payments in the finance system and releasing them."""

    name = models.CharField(_("name"), max_length=200)
    reason = models.TextField(
        _("reason"),
        max_length=2000,
        help_text=_("Shown to whoever orders or approves a conflicting service."),
    )
    first_item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("service"),
        on_delete=models.CASCADE,
        related_name="sod_first",
    )
    second_item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("must not be held together with"),
        on_delete=models.CASCADE,
        related_name="sod_second",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("segregation-of-duties rule")
        verbose_name_plural = _("segregation-of-duties rules")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(first_item=F("second_item")), name="sod_rule_two_items"
            ),
            # One rule per pair, in either order.
            models.UniqueConstraint(
                Least("first_item", "second_item"),
                Greatest("first_item", "second_item"),
                name="sod_rule_one_per_pair",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.first_item_id and self.first_item_id == self.second_item_id:
            raise ValidationError({"second_item": _("Choose two different services.")})
        if self.first_item_id and self.second_item_id:
            pair = Q(first_item=self.first_item_id, second_item=self.second_item_id) | Q(
                first_item=self.second_item_id, second_item=self.first_item_id
            )
            if SodRule.objects.filter(pair).exclude(pk=self.pk).exists():
                raise ValidationError(_("A rule for these two services exists already."))

    def other(self, item_id: int) -> int:
        return self.second_item_id if item_id == self.first_item_id else self.first_item_id


class Campaign(models.Model):
    """A recertification: reviewers confirm or remove the lasting access people hold (access
    review, "Rezertifizierung"), in one or more stages, each with its reviewer rule and
    outcome strategy. BSI IT-Grundschutz ORP.4.A3: rights are checked regularly."""

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=200)
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.OPEN)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    started_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("started by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The due date of the stage under way (of the last stage once closed).
    due_on = models.DateField(_("due"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    scope = models.CharField(
        _("scope"), max_length=20, choices=CampaignScope, default=CampaignScope.ALL
    )
    scope_item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("service"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    scope_department = models.ForeignKey(
        "catalogue.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    risk_limit = models.PositiveIntegerField(
        _("number of riskiest accesses"), null=True, blank=True
    )
    undecided_default = models.CharField(
        _("access nobody decided on"),
        max_length=10,
        choices=UndecidedDefault,
        default=UndecidedDefault.REPORT,
    )
    current_stage = models.PositiveSmallIntegerField(_("stage"), default=1)

    class Meta:
        verbose_name = _("recertification")
        verbose_name_plural = _("recertifications")
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(scope="item") | Q(scope_item__isnull=False),
                name="campaign_item_scope_names_item",
                violation_error_message=_("Choose the service to review."),
            ),
            models.CheckConstraint(
                condition=~Q(scope="department") | Q(scope_department__isnull=False),
                name="campaign_department_scope_names_department",
                violation_error_message=_("Choose the department to review."),
            ),
            models.CheckConstraint(
                condition=~Q(scope="risk") | Q(risk_limit__gt=0),
                name="campaign_risk_scope_has_limit",
                violation_error_message=_("Say how many of the riskiest accesses to review."),
            ),
        ]

    def __str__(self):
        return self.name


class CampaignStage(models.Model):
    """One stage of a campaign: who reviews (the rule), how their decisions combine (the
    strategy), and its deadlines in working days of the Land."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("recertification"), on_delete=models.CASCADE, related_name="stages"
    )
    number = models.PositiveSmallIntegerField(_("stage"))
    reviewer_rule = models.CharField(_("reviewers"), max_length=20, choices=ReviewerRule)
    outcome_strategy = models.CharField(
        _("outcome"),
        max_length=30,
        choices=OutcomeStrategy,
        default=OutcomeStrategy.ONE_ACCEPT_ACCEPTS,
    )
    working_days = models.PositiveSmallIntegerField(
        _("working days to decide"), validators=[MinValueValidator(1), MaxValueValidator(250)]
    )
    opened_on = models.DateField(_("opened"), null=True, blank=True)
    due_on = models.DateField(_("due"), null=True, blank=True)
    # After the due date the open tasks go to the reviewers' managers; the stage closes here.
    closes_on = models.DateField(_("closes"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    reruns = models.PositiveSmallIntegerField(_("re-runs for non-responders"), default=0)

    class Meta:
        verbose_name = _("recertification stage")
        verbose_name_plural = _("recertification stages")
        ordering = ["campaign", "number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="stage_once_per_campaign"),
        ]

    def __str__(self):
        return f"{self.campaign} – {self.number}"


class Review(models.Model):
    """One held access in a campaign (midPoint's case) and its outcome; the reviewers'
    decisions are its tasks."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("Not yet decided")
        KEEP = "keep", _("Keep")
        REMOVE = "remove", _("Remove")
        REDUCE = "reduce", _("Kept for a shorter time")
        UNCONFIRMED = "unconfirmed", _("Not confirmed (reported)")

    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("recertification"),
        on_delete=models.CASCADE,
        related_name="reviews",
    )
    entitlement = models.ForeignKey(
        "provisioning.Entitlement",
        verbose_name=_("entitlement"),
        on_delete=models.CASCADE,
        related_name="reviews",
    )
    stage = models.PositiveSmallIntegerField(_("stage"), default=1)
    decision = models.CharField(
        _("decision"), max_length=12, choices=Decision, default=Decision.PENDING
    )
    # Who made the outcome: the reviewer whose decision settled it; empty for the default.
    decided_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    reduce_until = models.DateField(_("kept until"), null=True, blank=True)

    class Meta:
        verbose_name = _("access review")
        verbose_name_plural = _("access reviews")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "entitlement"], name="review_once_per_campaign"
            ),
        ]

    def __str__(self):
        return f"{self.campaign}: {self.entitlement_id}"


class ReviewTask(models.Model):
    """One reviewer's decision on one access in one stage (midPoint's work item). Locked
    when the stage closes; a re-run asks the non-responders again on the same row."""

    review = models.ForeignKey(
        Review, verbose_name=_("access review"), on_delete=models.CASCADE, related_name="tasks"
    )
    stage = models.PositiveSmallIntegerField(_("stage"))
    iteration = models.PositiveSmallIntegerField(_("round"), default=1)
    # Empty: IT administration decides (no reviewer found, or the fallback).
    reviewer = models.ForeignKey(
        "auth.User",
        verbose_name=_("reviewer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_tasks",
    )
    route = models.CharField(_("why this reviewer"), max_length=20, choices=TaskRoute)
    escalated_from = models.ForeignKey(
        "auth.User",
        verbose_name=_("escalated from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decision = models.CharField(
        _("decision"), max_length=10, choices=TaskDecision, default=TaskDecision.PENDING
    )
    reduce_until = models.DateField(_("keep until"), null=True, blank=True)
    comment = models.CharField(_("reason"), max_length=500, blank=True)
    decided_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    locked = models.BooleanField(_("locked"), default=False)

    class Meta:
        verbose_name = _("review task")
        verbose_name_plural = _("review tasks")
        ordering = ["review", "stage", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision="reduce", reduce_until__isnull=False)
                | (~Q(decision="reduce") & Q(reduce_until__isnull=True)),
                name="review_task_reduce_has_date",
                violation_error_message=_("Keeping for a shorter time needs the last day."),
            ),
            models.CheckConstraint(
                condition=~Q(decision="revoke") | ~Q(comment=""),
                name="review_task_revoke_has_reason",
                violation_error_message=_("A removal needs a reason."),
            ),
        ]
        indexes = [
            # "Waiting for me": the reviewer's open tasks.
            models.Index(
                fields=["reviewer", "stage"],
                condition=Q(locked=False),
                name="review_task_open_by_reviewer",
            ),
        ]

    def __str__(self):
        return f"{self.review}: {self.stage}/{self.reviewer_id}"
