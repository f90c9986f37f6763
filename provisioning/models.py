"""Provisioning: what an automated item does in the directory, the jobs that do it,
and the entitlements that remember who holds what."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from itportal.fsm import ConcurrentStateMixin
from provisioning.choices import REVERSE, ActionKind, Direction, EntitlementState, JobState
from provisioning.joblog import in_log_language, log_line

J = JobState


class ProvisioningAction(models.Model):
    """One directory action of a catalogue item, configured in the admin without code.

    ``target`` is the group DN for group actions; ``attributes`` lists
    ``name = template`` lines for account actions. Templates may use
    ``{{ beneficiary.uid }}``, ``{{ beneficiary.first_name }}``, ``{{ beneficiary.last_name }}``,
    ``{{ beneficiary.mail }}``, ``{{ beneficiary.department }}`` and ``{{ answers.<key> }}``.
    """

    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("item"),
        on_delete=models.CASCADE,
        related_name="provisioning_actions",
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    kind = models.CharField(_("action"), max_length=30, choices=ActionKind)
    target = models.CharField(
        _("group"),
        max_length=500,
        blank=True,
        help_text=_(
            "Group DN for group actions, e.g. cn=vpn-users,ou=groups,dc=example or "
            "{{ answers.share_group }} for a group chosen in the order form."
        ),
    )
    attributes = models.TextField(
        _("attributes"),
        blank=True,
        help_text=_("For account actions: one 'attribute = template' per line."),
    )

    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["item", "position", "id"]
        verbose_name = _("provisioning action")
        verbose_name_plural = _("provisioning actions")
        constraints = [
            models.UniqueConstraint(
                fields=["item", "position"], name="provisioningaction_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.target}".strip()

    @property
    def reverse_kind(self):
        return REVERSE.get(self.kind)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from provisioning.templating import parse_attribute_lines

        group_kinds = (ActionKind.ADD_TO_GROUP, ActionKind.REMOVE_FROM_GROUP)
        if self.kind in group_kinds and not self.target.strip():
            raise ValidationError({"target": _("Group actions need a group.")})
        try:
            parse_attribute_lines(self.attributes)
        except ValueError as exc:
            raise ValidationError({"attributes": str(exc)}) from exc


class ProvisioningJob(ConcurrentStateMixin, models.Model):
    """One directory change for one request (or one revocation), run by a Celery task.

    The spec (kind, target, user, attributes) is resolved when the job is created,
    so a retry or a second run does exactly the same thing.
    """

    request = models.ForeignKey(
        "requests_app.ServiceRequest",
        verbose_name=_("request"),
        on_delete=models.PROTECT,
        related_name="provisioning_jobs",
    )
    entitlement = models.ForeignKey(
        "provisioning.Entitlement",
        verbose_name=_("entitlement"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="jobs",
    )
    direction = models.CharField(_("direction"), max_length=10, choices=Direction)
    position = models.PositiveIntegerField(_("position"), default=0)
    kind = models.CharField(_("action"), max_length=30, choices=ActionKind)
    user_uid = models.CharField(_("account"), max_length=200)
    target_dn = models.CharField(_("group"), max_length=1000, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    dialect = models.CharField(_("directory"), max_length=20)

    state = FSMField(_("state"), default=J.PENDING, choices=J.choices, protected=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    log = models.TextField(_("log"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The sweeper's view of the job (pipeline_sweep): a pending or retrying job should run from
    # due_at on (empty: it waits for the job before it); a running job belongs to the worker
    # that started it until lease_until. Past either, its message was lost or its worker
    # died, and the sweeper enqueues it again; wakes counts how often it had to.
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    wakes = models.PositiveIntegerField(_("re-enqueued by the sweeper"), default=0)
    # A request needed from a later day: its first job waits (due_at empty) until then; the
    # sweeper releases it from not_before on (pipeline_sweep).
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    finished_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("marked done by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "position"]
        verbose_name = _("provisioning job")
        verbose_name_plural = _("provisioning jobs")
        indexes = [
            models.Index(fields=["state", "updated_at"], name="job_state_idx"),
            # The API's list, in Meta.ordering (newest first) with the key last, as its
            # pages and the next link's cursor read it; and filtered by action (the rarer
            # ones a few entries, not a walk through all jobs; also what the count reads).
            models.Index(fields=["-created_at", "position", "-id"], name="job_created_idx"),
            models.Index(
                fields=["kind", "-created_at", "position", "-id"], name="job_kind_created_idx"
            ),
            models.Index(fields=["state", "due_at"], name="job_due_idx"),
            models.Index(
                fields=["not_before"],
                condition=models.Q(state="pending", due_at=None, not_before__isnull=False),
                name="job_scheduled_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.user_uid} {self.target_dn}".strip()

    def add_log(self, line: str) -> None:
        # Local time and the portal's language, as the pages it is read next to.
        self.log = f"{self.log}{log_line(line)}"

    # --- transitions: this row only ------------------------------------------------

    @transition(field=state, source=[J.PENDING, J.RETRYING, J.RUNNING], target=J.RUNNING)
    def start(self, *, lease_seconds: float):
        # RUNNING → RUNNING: the worker that held the lease died and the job came back.
        now = timezone.now()
        self.attempts += 1
        self.started_at = now
        self.lease_until = now + timedelta(seconds=lease_seconds)

    def _end(self) -> None:
        self.finished_at = timezone.now()
        self.due_at = None
        self.lease_until = None

    @transition(field=state, source=J.RUNNING, target=J.SUCCEEDED)
    def succeed(self, *, note: str):
        self._end()
        self.last_error = ""
        self.add_log(note)

    @transition(field=state, source=J.RUNNING, target=J.RETRYING)
    def defer(self, *, error: str, countdown: float):
        self.last_error = error
        self.due_at = timezone.now() + timedelta(seconds=countdown)
        self.lease_until = None
        with in_log_language():
            self.add_log(_("transient error, will retry: %(error)s") % {"error": error})

    @transition(field=state, source=[J.PENDING, J.RUNNING, J.RETRYING], target=J.FAILED)
    def fail(self, *, error: str):
        self.last_error = error
        self._end()
        with in_log_language():
            self.add_log(_("failed: %(error)s") % {"error": error})

    @transition(field=state, source=J.FAILED, target=J.PENDING)
    def retry(self, *, user=None):
        with in_log_language():
            if user is not None:
                self.add_log(_("retry requested by %(user)s") % {"user": user.get_username()})
            else:
                self.add_log(_("retry requested"))
        self.finished_at = None
        self.due_at = timezone.now()

    @transition(field=state, source=[J.FAILED, J.RETRYING, J.PENDING], target=J.SUCCEEDED)
    def mark_done(self, *, user, note: str):
        self.finished_by = user
        self._end()
        with in_log_language():
            self.add_log(
                _("marked done by hand by %(user)s: %(note)s")
                % {"user": user.get_username(), "note": note}
            )


class EntitlementQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state=EntitlementState.ACTIVE)


class Entitlement(models.Model):
    """A service an employee holds, since when, through which request, maybe until when."""

    holder = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("holder"),
        on_delete=models.PROTECT,
        related_name="entitlements",
    )
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("service"),
        on_delete=models.PROTECT,
        related_name="entitlements",
        # entitlement_item_granted_idx leads with the item: it serves every query by item
        # (the PROTECT check too); a plain index beside it only tempted the planner into
        # reading the heap for the state.
        db_index=False,
    )
    request = models.OneToOneField(
        "requests_app.ServiceRequest",
        verbose_name=_("granted by request"),
        on_delete=models.PROTECT,
        related_name="entitlement",
    )
    state = models.CharField(
        _("state"), max_length=20, choices=EntitlementState, default=EntitlementState.ACTIVE
    )
    granted_at = models.DateTimeField(_("since"), default=timezone.now)
    expires_on = models.DateField(_("until"), null=True, blank=True)
    expiry_notice_sent_at = models.DateTimeField(_("expiry notice sent"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoke_reason = models.TextField(_("reason for revocation"), blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    review_note = models.CharField(
        _("to review"),
        max_length=300,
        blank=True,
        help_text=_("Set when the holder moved department: does the access still fit?"),
    )
    # A mover's review (provisioning/movers.py): the new line manager keeps or removes the
    # access by this day (working days of the Land), is reminded once before, and what is
    # still undecided after it is removed through the usual revocation.
    review_due_on = models.DateField(_("review due"), null=True, blank=True)
    review_reminded_at = models.DateTimeField(_("review reminder sent"), null=True, blank=True)
    review_old_department = models.BooleanField(
        _("access of the old department"),
        default=False,
        help_text=_(
            "Ordered for or charged to the department the holder left: most likely no "
            "longer needed."
        ),
    )

    objects = EntitlementQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at", "-id"]
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        indexes = [
            models.Index(fields=["holder", "state"], name="entitlement_holder_idx"),
            # Decision support and recommendations: does this person hold (or did they hold)
            # this item — one probe, not a walk through the holder's thousands of rows.
            models.Index(fields=["holder", "item", "state"], name="entitlement_holder_item_idx"),
            # Reclaim candidates (assist.reclaim): the holder and service pairs with an active
            # entitlement the sync flagged after a move; the few of 900,000, one probe each.
            models.Index(
                fields=["holder", "item"],
                condition=models.Q(state=EntitlementState.ACTIVE) & ~models.Q(review_note=""),
                name="entitlement_reclaim_moved_idx",
            ),
            # The lists, newest first: a holder's (page, API); everyone's (IT admins, the
            # admin site) read entitlement_granted_idx backwards. ORDER BY … LIMIT reads 25
            # index entries instead of sorting.
            models.Index(
                fields=["holder", "-granted_at", "-id"], name="entitlement_holder_granted_idx"
            ),
            models.Index(fields=["state", "expires_on"], name="entitlement_expiry_idx"),
            # The movers' sweep: the few flagged rows with a due date, not every entitlement.
            models.Index(
                fields=["review_due_on"],
                condition=models.Q(state="active", review_due_on__isnull=False)
                & ~models.Q(review_note=""),
                name="entitlement_review_due_idx",
            ),
            # Licence pools (selectors.with_licence_usage, the controlling pools page): an
            # item's held entitlements and its grants and revocations of the trend window,
            # index-only from the item's entries. The item's foreign-key index alone needs the
            # heap for state and dates, and the planner, expecting 8,000 rows an item at a
            # million requests, walked a whole index instead (5-16 ms an item).
            models.Index(
                fields=["item", "granted_at"],
                include=["state", "revoked_at"],
                name="entitlement_item_granted_idx",
            ),
            # Controlling roll-ups: the grants and revocations since the last rolled-up month.
            models.Index(
                fields=["granted_at"], include=["request"], name="entitlement_granted_idx"
            ),
            models.Index(
                fields=["revoked_at"], include=["request"], name="entitlement_revoked_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.holder} – {self.item}"


class SyncRun(models.Model):
    """One run of the directory sync or the reconciliation, with what it found."""

    class Kind(models.TextChoices):
        FULL = "full", _("Full sync")
        INCREMENTAL = "incremental", _("Incremental sync")
        RECONCILE = "reconcile", _("Reconciliation")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    report = models.TextField(_("report"), blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M}"


class DriftFinding(models.Model):
    """A difference between entitlements and the directory found by reconciliation."""

    class Kind(models.TextChoices):
        MISSING = "missing", _("Granted but missing in the directory")
        UNEXPECTED = "unexpected", _("In the directory without a grant")

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    group_dn = models.CharField(_("group"), max_length=1000)
    member = models.CharField(_("member"), max_length=1000)
    entitlement = models.ForeignKey(
        Entitlement, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    repaired_by_job = models.ForeignKey(
        ProvisioningJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["run", "group_dn", "member"]
        verbose_name = _("drift finding")
        verbose_name_plural = _("drift findings")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.member} in {self.group_dn}"


class ManualMembership(models.Model):
    """A group membership the directory has without a grant of the portal (given by hand),
    as reconciliation found it. It counts as one more holder of the membership: revoking
    an entitlement to the same group leaves the member in it. Forgotten when
    reconciliation no longer finds the member in the group."""

    group_dn = models.CharField(_("group"), max_length=1000)
    member_dn = models.CharField(_("member"), max_length=1000)
    member_uid = models.CharField(_("account"), max_length=200, blank=True)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now)

    class Meta:
        ordering = ["group_dn", "member_dn"]
        verbose_name = _("membership given by hand")
        verbose_name_plural = _("memberships given by hand")
        constraints = [
            models.UniqueConstraint(
                fields=["group_dn", "member_dn"],
                name="manualmembership_unique",
                violation_error_message=_("This membership is already recorded."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_uid or self.member_dn} in {self.group_dn}"
