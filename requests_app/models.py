"""Service requests, their approvals, substitutes and the append-only audit trail."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, FSMField, transition

from catalogue.choices import ApproverKind, FulfilmentKind
from itportal.fsm import ConcurrentStateMixin
from itportal.lookups import IsTrue
from itportal.reversing import reverse_number
from requests_app import fulfilment, permissions
from requests_app.choices import (
    CANCELLABLE_STATES,
    OPEN_STATES,
    ApprovalStatus,
    EventKind,
    HoldReason,
    RequestState,
)

S = RequestState

# Open in the fulfilment queue: approved, or in fulfilment by a person (without an assignee
# an automation runs it). Shared by the queue selector and its partial indexes, wrapped
# (IsTrue) so that only they serve it: plain, it also proved the indexes of all open
# requests usable, whose bitmaps the planner combined on a wrong estimate (IsTrue's note).
QUEUE_CONDITION = models.Q(
    IsTrue(models.Q(state=S.APPROVED) | models.Q(state=S.IN_FULFILMENT, assignee__isnull=False))
)


class Submission(models.Model):
    """Requests placed together: one cart or one bundle sent at once (Sammelbestellung).

    The requester gets one confirmation for all of them, and an approver who decides
    several of its requests sees them side by side.
    """

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requester"),
        on_delete=models.PROTECT,
        related_name="submissions",
    )
    created_at = models.DateTimeField(_("submitted"), default=timezone.now)
    bundle = models.ForeignKey(
        "catalogue.Bundle",
        verbose_name=_("bundle"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="submissions",
        help_text=_("The bundle ordered, if the requests came from one."),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("joint order")
        verbose_name_plural = _("joint orders")

    def __str__(self) -> str:
        return _("Joint order #%(number)s") % {"number": self.pk}

    def get_absolute_url(self) -> str:
        return reverse("ordering:submission", kwargs={"pk": self.pk})


class ServiceRequest(ConcurrentStateMixin, models.Model):
    """One order of one catalogue item for one beneficiary (Antrag).

    The state changes only through the transitions below; services in
    ``requests_app.services`` call them, save, and write the audit record.
    """

    # No index of their own: the list indexes below lead with either (and every query by
    # requester or beneficiary, the deletion checks included, reads them).
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requester"),
        on_delete=models.PROTECT,
        related_name="placed_requests",
        db_index=False,
    )
    beneficiary = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("beneficiary"),
        on_delete=models.PROTECT,
        related_name="requests",
        db_index=False,
    )
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("item"),
        on_delete=models.PROTECT,
        related_name="requests",
    )
    item_version = models.PositiveIntegerField(_("item version"))
    item_snapshot = models.JSONField(_("item as ordered"), default=dict)
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    cost_centre = models.ForeignKey(
        "catalogue.CostCentre",
        verbose_name=_("cost centre"),
        on_delete=models.PROTECT,
        related_name="requests",
    )
    justification = models.TextField(_("justification"), max_length=2000, blank=True)
    price_once = models.DecimalField(_("one-off price (EUR)"), max_digits=10, decimal_places=2)
    price_monthly = models.DecimalField(_("monthly price (EUR)"), max_digits=10, decimal_places=2)
    fulfilment_group = models.ForeignKey(
        Group,
        verbose_name=_("fulfilling group"),
        on_delete=models.PROTECT,
        related_name="fulfilment_requests",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_requests",
    )
    resolution_note = models.TextField(_("fulfilment note"), blank=True)
    # When the beneficiary needs it, e.g. a joiner's first working day (joiner bundle).
    needed_from = models.DateField(_("needed from"), null=True, blank=True)
    submission = models.ForeignKey(
        Submission,
        verbose_name=_("joint order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
        help_text=_("Set when the request was placed together with others (cart, bundle)."),
    )

    state = FSMField(_("state"), default=S.DRAFT, choices=S.choices, protected=True, db_index=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    fulfilment_started_at = models.DateTimeField(_("fulfilment started"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # The item's SLA target (working days from approval), fixed when approved; the warning
    # before and the escalation after it are each sent once (requests_app/sla.py).
    fulfilment_due_on = models.DateField(_("fulfilment due"), null=True, blank=True)
    sla_warned_at = models.DateTimeField(_("deadline warning sent"), null=True, blank=True)
    # Half of the time from approval to the deadline used: a first, earlier warning.
    sla_half_warned_at = models.DateTimeField(_("half-time warning sent"), null=True, blank=True)
    sla_escalated_at = models.DateTimeField(_("deadline escalated"), null=True, blank=True)
    # Response target (working hours from approval, requests_app/sla.py): the deadline for
    # the first reaction, the reaction itself, and its warnings (50 %, 75 %) and breach.
    response_due_at = models.DateTimeField(_("response due"), null=True, blank=True)
    responded_at = models.DateTimeField(_("first response"), null=True, blank=True)
    response_half_warned_at = models.DateTimeField(
        _("response half-time warning sent"), null=True, blank=True
    )
    response_warned_at = models.DateTimeField(_("response warning sent"), null=True, blank=True)
    response_breached_at = models.DateTimeField(_("response breached"), null=True, blank=True)
    # On hold: a flag (the reason; empty when not on hold) next to the state rather than a
    # state of its own, so the many queries and indexes on "in fulfilment" stay as they are.
    # The periods are rows (RequestHold); holds and resumptions are timeline events.
    hold_reason = models.CharField(
        _("on hold"), max_length=20, choices=HoldReason, blank=True, default="", db_default=""
    )
    # Working seconds of the finished holds: the resolution due date moved by them.
    sla_paused_seconds = models.PositiveIntegerField(
        _("paused working time (s)"), default=0, db_default=0
    )
    approval_steps = models.PositiveSmallIntegerField(
        _("approval steps"),
        default=0,
        help_text=_("Number of approval steps the request got when it was submitted."),
    )
    fulfilled_automatically = models.BooleanField(
        _("fulfilled automatically"),
        default=False,
        help_text=_(
            "Fulfilled by an automation without anyone taking, completing, failing or "
            "reopening it by hand, and without a provisioning job marked done by hand."
        ),
    )
    # Set by the retention run (privacy/retention.py): answers, justification and notes
    # are gone, the people are placeholders; prices, dates and cost centre stay.
    anonymised_at = models.DateTimeField(_("anonymised"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("service request")
        verbose_name_plural = _("service requests")
        indexes = [
            # "My requests" in two parts (selectors.requests_of_parts): what the user placed
            # and what others placed for them, each read in the order of the list from its
            # own index; the pager counts either from the index alone (id and state
            # included, and the requester, which the second part excludes), the search
            # filters on the item and the beneficiary in it (RequestFilterSet.search).
            models.Index(
                fields=["requester", "-created_at"],
                include=["id", "state", "item", "beneficiary"],
                name="request_requester_idx",
            ),
            models.Index(
                fields=["beneficiary", "-created_at"],
                include=["id", "state", "requester", "item"],
                name="request_beneficiary_idx",
            ),
            # The lists' default order (newest first, the id breaking ties): deep pages pick
            # their ids from this index alone (BoundedPaginator.page), where the plain
            # created_at index fetched each skipped row for its id.
            models.Index(fields=["created_at", "id"], name="request_created_id_idx"),
            models.Index(fields=["fulfilment_group", "state"], name="request_queue_idx"),
            # The fulfilment queue, oldest first: only the few thousand open rows of a
            # million, so the queue's ORDER BY … LIMIT walks no closed request. The
            # condition is the queue selector's, word for word (the planner must prove it).
            models.Index(
                fields=["created_at", "id"],
                condition=QUEUE_CONDITION,
                name="request_open_queue_idx",
            ),
            # The HTML queue lists the newest approvals first (QueueTable): 25 index entries,
            # where sorting the joined open queue took 150 ms at a million requests. The
            # columns its tabs and sorts read are included: sorted by service (or person,
            # group, due date) its ids come from the index alone, not from 2,800 rows each
            # on its own page of the table (at 1M: 17 -> 9 ms for the queue sorted by
            # service; the index of the ~2,700 open rows grew from 168 to 272 kB).
            models.Index(
                fields=["approved_at"],
                include=[
                    "id",
                    "state",
                    "item",
                    "beneficiary",
                    "requester",
                    "assignee",
                    "fulfilment_group",
                    "fulfilment_due_on",
                    "hold_reason",
                ],
                condition=QUEUE_CONDITION,
                name="request_queue_approved_idx",
            ),
            # Sorted by service, a page's ids walk the items by name and read each one's
            # entries newest first from here (selectors.item_name_rank): 25 entries, not
            # all ~2,000 sorted. The tabs' and groups' columns are included, so their
            # pages read the index alone too.
            models.Index(
                fields=["item", "id"],
                include=["state", "assignee", "fulfilment_group", "hold_reason"],
                condition=QUEUE_CONDITION,
                name="request_queue_item_idx",
            ),
            # Controlling: requests fulfilled (or closed) in a period, orders in a period.
            # The reports read only the included columns: an index-only scan instead of the
            # wide rows (item snapshot, answers). Costs join entitlements to the fulfilled
            # requests through this index as well.
            models.Index(
                fields=["state", "closed_at"],
                include=[
                    "id",
                    "item",
                    "cost_centre",
                    "beneficiary",
                    "price_once",
                    "price_monthly",
                    "submitted_at",
                    "approved_at",
                    "approval_steps",
                    "fulfilled_automatically",
                ],
                name="request_state_closed_idx",
            ),
            models.Index(
                fields=["submitted_at"],
                include=["item", "beneficiary", "cost_centre", "state"],
                name="request_submitted_idx",
            ),
            # The retention run finds closed requests past their period that still hold
            # personal data; anonymised rows drop out of this index.
            models.Index(
                fields=["closed_at"],
                condition=models.Q(anonymised_at__isnull=True, closed_at__isnull=False),
                name="request_to_anonymise_idx",
            ),
            # Controlling, rarely ordered services: each one's last order, in the page's
            # scope (beneficiary's department, cost centre) from the index alone. Without the
            # included columns the planner walked request_submitted_idx (which has them)
            # backward instead, through all million rows for a service never ordered.
            models.Index(
                fields=["item", "submitted_at"],
                include=["beneficiary", "cost_centre"],
                name="request_item_last_order_idx",
            ),
            # The SLA sweep: open requests with a due date, the few thousand of a million.
            models.Index(
                fields=["fulfilment_due_on"],
                condition=models.Q(
                    state__in=[S.APPROVED, S.IN_FULFILMENT], fulfilment_due_on__isnull=False
                ),
                name="request_sla_due_idx",
            ),
            # The response sweep: open requests nobody has reacted to yet.
            models.Index(
                fields=["response_due_at"],
                condition=models.Q(
                    state__in=[S.APPROVED, S.IN_FULFILMENT],
                    response_due_at__isnull=False,
                    responded_at__isnull=True,
                ),
                name="request_response_due_idx",
            ),
            # /metrics: the oldest open request per state, one index step each.
            models.Index(
                fields=["state", "submitted_at"],
                condition=models.Q(state__in=OPEN_STATES),
                name="request_open_submitted_idx",
            ),
            # The header's "my open requests" on every page: the user's open rows only,
            # not their thousands of closed ones (26 ms at 1M requests with the full
            # requester and beneficiary indexes, BitmapAnd'ed with the state index).
            models.Index(
                fields=["requester"],
                condition=models.Q(state__in=OPEN_STATES),
                name="request_open_requester_idx",
            ),
            models.Index(
                fields=["beneficiary"],
                condition=models.Q(state__in=OPEN_STATES),
                name="request_open_beneficiary_idx",
            ),
            # Licence pools: an item's approved requests and those in fulfilment (licences
            # reserved), not a bitmap of every open request filtered by item (15 ms an item
            # at a million requests).
            models.Index(
                fields=["item"],
                condition=models.Q(state__in=[S.APPROVED, S.IN_FULFILMENT]),
                name="request_item_reserved_idx",
            ),
            # Decision support (assist): last year's approvals and rejections of an item.
            models.Index(
                fields=["item", "approved_at"],
                include=["id"],
                condition=models.Q(approval_steps__gt=0),
                name="request_item_approved_idx",
            ),
            models.Index(
                fields=["item", "closed_at"],
                include=["id"],
                condition=models.Q(state=S.REJECTED),
                name="request_item_rejected_idx",
            ),
        ]

    def __str__(self) -> str:
        return _("Request #%(number)s") % {"number": self.pk}

    def get_absolute_url(self) -> str:
        # Once per row of every request list: the reversed URL is kept (itportal/reversing.py).
        return reverse_number("requests:detail", "pk", self.pk)

    @property
    def item_name(self) -> str:
        # Lists read the snapshot's name alone (requests_app.selectors.listed), not the
        # whole snapshot.
        if "listed_item_name" in self.__dict__:
            return self.listed_item_name or self.item.name
        return self.item_snapshot.get("name") or self.item.name

    @property
    def is_manual(self) -> bool:
        return self.item_snapshot.get("fulfilment_kind", FulfilmentKind.MANUAL) == (
            FulfilmentKind.MANUAL
        )

    def has_pending_approvals(self) -> bool:
        return self.approvals.filter(
            status__in=[ApprovalStatus.PENDING, ApprovalStatus.WAITING]
        ).exists()

    # --- transitions: bodies change this row's fields only -----------------

    @transition(
        field=state, source=S.DRAFT, target=S.SUBMITTED, permission=permissions.is_requester
    )
    def submit(self):
        self.submitted_at = timezone.now()

    @transition(field=state, source=S.SUBMITTED, target=S.AWAITING_APPROVAL)
    def start_approval(self):
        """The approval steps exist; the first one is pending."""

    @transition(field=state, source=S.SUBMITTED, target=S.APPROVED)
    def approve_without_steps(self):
        self.approved_at = timezone.now()

    @transition(
        field=state,
        source=S.AWAITING_APPROVAL,
        target=RETURN_VALUE(S.AWAITING_APPROVAL, S.APPROVED),
        permission=permissions.can_decide,
    )
    def approve(self):
        """Records one step's approval; the request is approved after the last step."""
        if self.has_pending_approvals():
            return S.AWAITING_APPROVAL
        self.approved_at = timezone.now()
        return S.APPROVED

    @transition(
        field=state,
        source=S.AWAITING_APPROVAL,
        target=S.REJECTED,
        permission=permissions.can_decide,
    )
    def reject(self):
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=CANCELLABLE_STATES,
        target=S.CANCELLED,
        permission=permissions.can_cancel,
    )
    def cancel(self):
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=S.APPROVED,
        target=S.IN_FULFILMENT,
        conditions=[fulfilment.needs_manual_fulfilment],
        permission=permissions.can_fulfil,
    )
    def take(self, *, assignee):
        self.assignee = assignee
        self.fulfilment_started_at = timezone.now()
        self.responded_at = self.responded_at or self.fulfilment_started_at

    @transition(field=state, source=S.APPROVED, target=S.IN_FULFILMENT)
    def start_automation(self):
        """An automation (directory provisioning) claimed the request and runs it."""
        self.fulfilment_started_at = timezone.now()
        self.responded_at = self.responded_at or self.fulfilment_started_at

    @transition(
        field=state, source=S.IN_FULFILMENT, target=S.FULFILLED, permission=permissions.can_fulfil
    )
    def complete(self, *, note: str):
        self.resolution_note = note
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=[S.APPROVED, S.IN_FULFILMENT],
        target=S.FAILED,
        permission=permissions.can_fulfil,
    )
    def fail(self, *, reason: str):
        self.resolution_note = reason
        self.closed_at = timezone.now()

    @transition(field=state, source=S.FAILED, target=S.APPROVED, permission=permissions.is_admin)
    def reopen(self):
        """IT admins put a failed request back into the queue after fixing the cause."""
        self.assignee = None
        self.closed_at = None


class RequestHold(models.Model):
    """One period a request in fulfilment waited for the requester or a supplier: its SLA
    clock stood still. Rows, not a sum, so the paused working time stays exact and can be
    counted again when the calendar changes; "Warum?" lists them."""

    request = models.ForeignKey(
        ServiceRequest, verbose_name=_("request"), on_delete=models.CASCADE, related_name="holds"
    )
    reason = models.CharField(_("reason"), max_length=20, choices=HoldReason)
    note = models.TextField(_("note"), max_length=2000)
    started_at = models.DateTimeField(_("on hold since"), default=timezone.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("put on hold by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    ended_at = models.DateTimeField(_("resumed"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("resumed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["started_at", "id"]
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        constraints = [
            models.UniqueConstraint(
                fields=["request"],
                condition=models.Q(ended_at__isnull=True),
                name="hold_one_open_per_request",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="hold_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.reason} {self.started_at:%Y-%m-%d %H:%M}"


class Approval(models.Model):
    """One approval step of one request, resolved to a person or a group."""

    request = models.ForeignKey(
        ServiceRequest,
        verbose_name=_("request"),
        on_delete=models.CASCADE,
        related_name="approvals",
    )
    position = models.PositiveIntegerField(_("position"))
    approver_kind = models.CharField(_("approver"), max_length=30, choices=ApproverKind)
    label = models.CharField(_("label"), max_length=200)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approver"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approvals",
    )
    group = models.ForeignKey(
        Group,
        verbose_name=_("approving group"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approvals",
    )
    routing_note = models.CharField(_("routing note"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=ApprovalStatus, default=ApprovalStatus.WAITING
    )
    activated_at = models.DateTimeField(_("pending since"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    escalated_from = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("escalated from"),
        blank=True,
        related_name="+",
        help_text=_("Earlier approvers of this step; they keep seeing the request."),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decisions",
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("on behalf of"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        ordering = ["request", "position"]
        verbose_name = _("approval")
        verbose_name_plural = _("approvals")
        constraints = [
            models.UniqueConstraint(
                fields=["request", "position"], name="approval_unique_position"
            ),
            models.CheckConstraint(
                condition=models.Q(approver__isnull=False) | models.Q(group__isnull=False),
                name="approval_has_approver_or_group",
            ),
            models.UniqueConstraint(
                fields=["request"],
                condition=models.Q(status="pending"),
                name="approval_one_pending_per_request",
            ),
        ]
        indexes = [
            models.Index(fields=["approver", "status"], name="approval_approver_idx"),
            models.Index(fields=["group", "status"], name="approval_group_idx"),
            # "Waiting for my decision" (the header on every page, the approvals list):
            # the pending steps only, a few hundred of a million approvals.
            models.Index(
                fields=["approver"],
                condition=models.Q(status="pending"),
                name="approval_pending_approver_idx",
            ),
            models.Index(
                fields=["group"],
                condition=models.Q(status="pending"),
                name="approval_pending_group_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}/{self.position} {self.label}"

    @property
    def approver_display(self) -> str:
        if self.approver_id:
            return self.approver.get_full_name() or self.approver.get_username()
        return _("any member of %(group)s") % {"group": self.group.name}


class Substitution(models.Model):
    """An approver's substitute for a date range (Vertretung), both days included."""

    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("absent approver"),
        on_delete=models.CASCADE,
        related_name="substitutions_given",
    )
    substitute = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("substitute"),
        on_delete=models.CASCADE,
        related_name="substitutions_taken",
    )
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-starts_on"]
        verbose_name = _("substitution")
        verbose_name_plural = _("substitutions")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="substitution_dates_ordered",
                violation_error_message=_("The end date must not be before the start date."),
            ),
            models.CheckConstraint(
                condition=~models.Q(principal=models.F("substitute")),
                name="substitution_not_self",
                violation_error_message=_("You cannot be your own substitute."),
            ),
        ]
        indexes = [models.Index(fields=["substitute", "starts_on", "ends_on"], name="subst_idx")]

    def __str__(self) -> str:
        return f"{self.substitute} ↔ {self.principal} {self.starts_on}–{self.ends_on}"

    def clean(self) -> None:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": _("The end date must not be before the start date.")})


class ImmutableError(RuntimeError):
    pass


PSEUDONYMISE_SQL = """
UPDATE requests_app_requestevent AS e
SET comment = '',
    actor_id = COALESCE(a.new, e.actor_id),
    on_behalf_of_id = COALESCE(b.new, e.on_behalf_of_id)
FROM requests_app_requestevent AS s
LEFT JOIN unnest(%s::bigint[], %s::bigint[]) AS a(old, new) ON a.old = s.actor_id
LEFT JOIN unnest(%s::bigint[], %s::bigint[]) AS b(old, new) ON b.old = s.on_behalf_of_id
WHERE e.id = s.id AND s.id = ANY(%s)
"""


def _mapped(people: dict[int, int]) -> dict:
    """actor and on_behalf_of through ``people`` (other databases than PostgreSQL)."""
    if not people:
        return {}

    def mapped(field):
        whens = [models.When(**{field: old}, then=models.Value(new)) for old, new in people.items()]
        return models.Case(*whens, default=models.F(field), output_field=models.IntegerField())

    return {"actor_id": mapped("actor_id"), "on_behalf_of_id": mapped("on_behalf_of_id")}


class RequestEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableError("Audit records are never changed.")

    def pseudonymise(self, *, people: dict[int, int]) -> int:
        """The one allowed change (DSGVO Art. 5 storage limitation): actors replaced by
        pseudonyms (``people`` maps user id → pseudonym user id) and comments emptied.

        On PostgreSQL the append-only trigger lets exactly this through, and only inside
        a transaction that announced it (``itportal.audit_pseudonymise``); the pseudonym
        users must be listed in privacy's placeholder table (privacy migration 0002).
        """

        db = connections[self.db]
        with transaction.atomic(using=self.db):
            if db.vendor != "postgresql":
                return super().update(comment="", **_mapped(people))
            with db.cursor() as cursor:
                cursor.execute("SELECT set_config('itportal.audit_pseudonymise', 'on', true)")
                # A join on the mapping, not a CASE with a branch per person: one pass.
                ids = list(self.values_list("pk", flat=True))
                old, new = list(people), list(people.values())
                cursor.execute(PSEUDONYMISE_SQL, [old, new, old, new, ids])
                changed = cursor.rowcount
                cursor.execute("SELECT set_config('itportal.audit_pseudonymise', '', true)")
        return changed

    def delete(self):
        raise ImmutableError("Audit records are never deleted.")


class RequestEvent(models.Model):
    """Append-only audit record of a request: who did what, when, from which state to which.

    The application never edits or deletes these rows; on PostgreSQL a trigger
    enforces the same for anyone with SQL access.
    """

    request = models.ForeignKey(
        ServiceRequest, verbose_name=_("request"), on_delete=models.PROTECT, related_name="events"
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("on behalf of"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    kind = models.CharField(_("action"), max_length=30, choices=EventKind)
    from_state = models.CharField(_("from"), max_length=30, choices=S.choices, blank=True)
    to_state = models.CharField(_("to"), max_length=30, choices=S.choices)
    comment = models.TextField(_("comment"), blank=True)

    objects = RequestEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")

    def __str__(self) -> str:
        return f"{self.request_id} {self.kind} {self.from_state}→{self.to_state}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("Audit records are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Audit records are never deleted.")


RATING_MIN = 1
RATING_MAX = 5
RATING_COMMENT_MAX_LENGTH = 1000
# Ratings can be given and changed until this many days after fulfilment; then they are fixed,
# so the figures of a past period stop moving.
RATING_WINDOW_DAYS = 30


class Rating(models.Model):
    """The requester's satisfaction with a fulfilled request (Bewertung): 1 to 5, a comment.

    One per request. IT controlling sees the averages and the comments without the name.
    """

    request = models.OneToOneField(
        ServiceRequest, verbose_name=_("request"), on_delete=models.CASCADE, related_name="rating"
    )
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.CharField(
        _("comment"), max_length=RATING_COMMENT_MAX_LENGTH, blank=True, default=""
    )
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rated by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    rated_at = models.DateTimeField(_("rated"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-rated_at", "-id"]
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        indexes = [
            # Controlling's comments, latest first: the few ratings with a comment, walked
            # in the list's order from the index alone (request included for the period).
            models.Index(
                fields=["-rated_at", "-id"],
                include=["request"],
                condition=~models.Q(comment=""),
                name="rating_comment_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=RATING_MIN, score__lte=RATING_MAX),
                name="rating_score_1_to_5",
                violation_error_message=_("The score must be between 1 and 5."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.score}"


# A cart is a short list; the limit keeps a submission (one transaction) small.
CART_MAX_LINES = 20


class CartLine(models.Model):
    """One item in an employee's cart with its order form as posted (Warenkorb).

    Kept in the database per user, not in the session: the cart survives logging out and
    in and a session that expires, and is the same cart in every browser of its owner.
    The posted form is kept so that submitting validates it again with the item's form of
    that moment, exactly as the order page would.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        related_name="cart_lines",
    )
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("item"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    beneficiary = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("beneficiary"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    form_data = models.JSONField(_("posted order form"), default=dict)
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    created_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("cart line")
        verbose_name_plural = _("cart lines")
        indexes = [models.Index(fields=["owner", "created_at"], name="cartline_owner_idx")]

    def __str__(self) -> str:
        return f"{self.owner_id}: {self.item_id}"

    @property
    def item_version(self) -> int | None:
        """The item version the posted form was written for."""
        values = self.form_data.get("item_version") or [None]
        try:
            return int(values[0])
        except (TypeError, ValueError):
            return None


class FulfilmentTask(models.Model):
    """Work for a service group that nobody ordered: the portal opens it when a person
    leaves (or loses a service that only a person can take away). "Collect the notebook"
    for a device delivered to a leaver, "remove the access by hand" for a manual
    entitlement revoked. Listed in the group's fulfilment queue until someone marks it done.

    One per delivery and kind: a second sync finds the task there and opens none.
    """

    class Kind(models.TextChoices):
        COLLECT = "collect", _("Collect the device")
        REMOVE_ACCESS = "remove_access", _("Remove the access by hand")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")

    kind = models.CharField(_("task"), max_length=20, choices=Kind)
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.OPEN)
    request = models.ForeignKey(
        ServiceRequest,
        verbose_name=_("delivered by request"),
        on_delete=models.PROTECT,
        related_name="tasks",
    )
    person = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("person"),
        on_delete=models.PROTECT,
        related_name="fulfilment_tasks",
    )
    fulfilment_group = models.ForeignKey(
        Group,
        verbose_name=_("fulfilling group"),
        on_delete=models.PROTECT,
        related_name="fulfilment_tasks",
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("opened"), default=timezone.now)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("done by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("fulfilment task")
        verbose_name_plural = _("fulfilment tasks")
        constraints = [
            models.UniqueConstraint(fields=["request", "kind"], name="task_once_per_delivery"),
            models.CheckConstraint(
                condition=models.Q(state="open", done_at__isnull=True)
                | models.Q(state="done", done_at__isnull=False),
                name="task_done_has_time",
            ),
        ]
        indexes = [
            # The queue: a group's open tasks, oldest first (IT admins: everyone's).
            models.Index(
                fields=["fulfilment_group", "created_at"],
                condition=models.Q(state="open"),
                name="task_open_group_idx",
            ),
            models.Index(
                fields=["created_at"], condition=models.Q(state="open"), name="task_open_idx"
            ),
            # The API's list of all tasks, open and done, oldest first (Meta.ordering).
            models.Index(fields=["created_at", "id"], name="task_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.request.item_name} ({self.person})"
