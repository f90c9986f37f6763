"""Segregation of duties (services one person must not hold together) and recertification
campaigns (who still needs what)."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
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


class SodMatch(models.TextChoices):
    """How one side of a rule is met: by holding any one of its members, or all of them."""

    ANY = "any", _("any of")
    ALL = "all", _("all of")


class SodSide(models.TextChoices):
    FIRST = "first", _("first side")
    SECOND = "second", _("second side")


class SodRule(models.Model):
    """Two sets of services or directory groups no one may hold at the same time, e.g.
    creating payments in the finance system and releasing them.

    Each side is met by holding any one of its members, or all of them (``first_match``,
    ``second_match``). A directory group is held through any service that adds its holder
    to it or to a group nested in it, and through a membership given by hand. Holdings
    conflict only where their validity periods overlap. ``version`` counts the changes;
    each version's content is kept in ``SodRuleVersion``.
    """

    name = models.CharField(_("name"), max_length=200)
    reason = models.TextField(
        _("reason"),
        max_length=2000,
        help_text=_("Shown to whoever orders or approves a conflicting service."),
    )
    requirement = models.CharField(
        _("requirement"),
        max_length=100,
        default="BSI IT-Grundschutz ORP.4.A4",
        help_text=_("The audit requirement the rule implements, for the auditors' report."),
    )
    first_match = models.CharField(
        _("first side is met by"), max_length=3, choices=SodMatch, default=SodMatch.ANY
    )
    second_match = models.CharField(
        _("second side is met by"), max_length=3, choices=SodMatch, default=SodMatch.ANY
    )
    is_active = models.BooleanField(_("active"), default=True)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    changed_at = models.DateTimeField(_("changed"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("segregation-of-duties rule")
        verbose_name_plural = _("segregation-of-duties rules")
        ordering = ["name"]
        indexes = [
            # The report's order starts with the rule's name: read the rules in that order and
            # each rule's open findings through its index, so a page sorts one rule's findings
            # instead of all of them (BENCHMARKS.md, "Segregation of duties").
            models.Index(fields=["name"], name="sod_rule_name"),
        ]

    def __str__(self):
        return self.name


class SodRuleMember(models.Model):
    """One service or directory group on one side of a rule."""

    rule = models.ForeignKey(
        SodRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="members"
    )
    side = models.CharField(_("side"), max_length=6, choices=SodSide)
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("service"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sod_members",
    )
    group_dn = models.CharField(
        _("directory group"),
        max_length=1000,
        blank=True,
        help_text=_("The group's DN; members of groups nested in it count too."),
    )

    class Meta:
        verbose_name = _("rule member")
        verbose_name_plural = _("rule members")
        ordering = ["rule", "side", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(item__isnull=False) & Q(group_dn=""))
                | (Q(item__isnull=True) & ~Q(group_dn="")),
                name="sod_member_item_or_group",
                violation_error_message=_("Choose either a service or a directory group."),
            ),
            # A member sits on one side of a rule only, once.
            models.UniqueConstraint(
                fields=["rule", "item"],
                condition=Q(item__isnull=False),
                name="sod_member_item_once",
                violation_error_message=_("This service is in the rule already."),
            ),
            models.UniqueConstraint(
                fields=["rule", "group_dn"],
                condition=~Q(group_dn=""),
                name="sod_member_group_once",
                violation_error_message=_("This group is in the rule already."),
            ),
        ]
        indexes = [
            models.Index(fields=["group_dn"], condition=~Q(group_dn=""), name="sod_member_group")
        ]

    def __str__(self):
        return self.item.name if self.item_id else self.group_dn

    def clean(self):
        if bool(self.item_id) == bool(self.group_dn):
            raise ValidationError(_("Choose either a service or a directory group."))


class SodRuleVersion(models.Model):
    """What a rule said in one of its versions: the "Warum?" pages name the version a
    decision or finding was made under."""

    rule = models.ForeignKey(
        SodRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="versions"
    )
    version = models.PositiveIntegerField(_("version"))
    content = models.JSONField(_("content"), default=dict)
    changed_at = models.DateTimeField(_("changed"), default=timezone.now)
    changed_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("rule version")
        verbose_name_plural = _("rule versions")
        ordering = ["rule", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="sod_rule_version_once")
        ]

    def __str__(self):
        return f"{self.rule_id} v{self.version}"


class GroupNesting(models.Model):
    """A directory group that is a member of another (``child`` in ``parent``), as last
    read from the directory. Whoever is in the child reaches the parent. DNs in one
    spelling (``provisioning.holders.dn_key``)."""

    parent_dn = models.CharField(_("group"), max_length=1000)
    child_dn = models.CharField(_("nested group"), max_length=1000)
    seen_at = models.DateTimeField(_("last seen"), default=timezone.now)

    class Meta:
        verbose_name = _("nested group")
        verbose_name_plural = _("nested groups")
        ordering = ["parent_dn", "child_dn"]
        constraints = [
            models.UniqueConstraint(fields=["parent_dn", "child_dn"], name="group_nesting_once")
        ]
        indexes = [models.Index(fields=["child_dn"], name="group_nesting_child")]

    def __str__(self):
        return f"{self.child_dn} in {self.parent_dn}"


class SodFinding(models.Model):
    """A person who holds both sides of a rule at overlapping times, as the last scan
    found: one open row per rule and person; closed (``resolved_at``) when no longer found.
    ``evidence`` names the holdings on each side (service, entitlement or request, group
    path, period), for the report and its "Warum?" page."""

    rule = models.ForeignKey(
        SodRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="findings"
    )
    rule_version = models.PositiveIntegerField(_("rule version"))
    holder = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("person"),
        on_delete=models.CASCADE,
        related_name="sod_findings",
    )
    overlap_from = models.DateField(_("together from"), null=True, blank=True)
    overlap_until = models.DateField(_("together until"), null=True, blank=True)
    evidence = models.JSONField(_("evidence"), default=dict)
    first_found_at = models.DateTimeField(_("first found"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("segregation-of-duties finding")
        verbose_name_plural = _("segregation-of-duties findings")
        ordering = ["rule", "holder"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "holder"],
                condition=Q(resolved_at__isnull=True),
                name="sod_finding_open_once",
            )
        ]
        indexes = [
            # The report: open findings by rule and person.
            models.Index(
                fields=["rule", "holder"],
                condition=Q(resolved_at__isnull=True),
                name="sod_finding_open",
            ),
            models.Index(
                fields=["holder"], condition=Q(resolved_at__isnull=True), name="sod_finding_holder"
            ),
        ]

    def __str__(self):
        return f"{self.rule}: {self.holder_id}"


class SodException(models.Model):
    """An approved exception: this person may hold both sides of the rule until
    ``valid_until``, with a justification and a compensating control. Nobody approves an
    exception that concerns themselves or that they asked for; at expiry it has to be
    asked for and approved again (re-certified)."""

    class State(models.TextChoices):
        REQUESTED = "requested", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        REVOKED = "revoked", _("Revoked")
        # Ran out without a renewal: the conflict counts again from the day after.
        EXPIRED = "expired", _("Expired")

    rule = models.ForeignKey(
        SodRule, verbose_name=_("rule"), on_delete=models.PROTECT, related_name="exceptions"
    )
    holder = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("person"),
        on_delete=models.PROTECT,
        related_name="sod_exceptions",
    )
    justification = models.TextField(_("justification"), max_length=2000)
    compensating_control = models.TextField(
        _("compensating control"),
        max_length=2000,
        help_text=_("What makes up for the missing separation, e.g. a monthly spot check."),
    )
    valid_until = models.DateField(_("valid until"))
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.REQUESTED)
    requested_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("requested by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    decided_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_comment = models.CharField(_("comment"), max_length=500, blank=True)
    rule_version = models.PositiveIntegerField(_("rule version"))
    # How many of the reminders before expiry (SOD_EXCEPTION_REMINDER_WORKING_DAYS) went out.
    reminders_sent = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    renews = models.ForeignKey(
        "self",
        verbose_name=_("renews"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="renewals",
    )

    class Meta:
        verbose_name = _("segregation-of-duties exception")
        verbose_name_plural = _("segregation-of-duties exceptions")
        ordering = ["valid_until", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="approved") | Q(decided_by__isnull=False),
                name="sod_exception_approved_by_someone",
            ),
            # Whoever asked does not approve (the holder is checked by the service: the
            # holder's user is on another table).
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="sod_exception_not_by_requester",
            ),
        ]
        indexes = [
            models.Index(
                fields=["holder", "rule", "valid_until"],
                condition=Q(state="approved"),
                name="sod_exception_effective",
            ),
        ]

    def __str__(self):
        return f"{self.rule}: {self.holder}"

    def is_effective(self, on_date=None) -> bool:
        on_date = on_date or timezone.localdate()
        return self.state == self.State.APPROVED and self.valid_until >= on_date


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
    # Set while a worker closes the stage (its decisions are locked from then on): the
    # outbox row of the close, cleared by the close itself.
    closing_requested_at = models.DateTimeField(_("closing since"), null=True, blank=True)

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
            # The header's "Zugriffe prüfen" count on every page: only what is undecided.
            models.Index(
                fields=["reviewer"],
                condition=Q(locked=False, decision="pending"),
                name="review_task_undecided",
            ),
        ]

    def __str__(self):
        return f"{self.review}: {self.stage}/{self.reviewer_id}"
