from django.db import models
from django.utils.translation import gettext_lazy as _


class RequestState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")
    IN_FULFILMENT = "in_fulfilment", _("In fulfilment")
    FULFILLED = "fulfilled", _("Fulfilled")
    FAILED = "failed", _("Failed")


OPEN_STATES = (
    RequestState.DRAFT,
    RequestState.SUBMITTED,
    RequestState.AWAITING_APPROVAL,
    RequestState.APPROVED,
    RequestState.IN_FULFILMENT,
)
CANCELLABLE_STATES = (
    RequestState.DRAFT,
    RequestState.SUBMITTED,
    RequestState.AWAITING_APPROVAL,
    RequestState.APPROVED,
)


class ApprovalStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting for earlier steps")
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class EventKind(models.TextChoices):
    """Audit entries: the transitions plus the events inside one state."""

    CREATE = "create", _("Created")
    SUBMIT = "submit", _("Submitted")
    START_APPROVAL = "start_approval", _("Approval started")
    APPROVE_WITHOUT_STEPS = "approve_without_steps", _("Approved (no approval needed)")
    APPROVE = "approve", _("Approved")
    REJECT = "reject", _("Rejected")
    CANCEL = "cancel", _("Cancelled")
    TAKE = "take", _("Taken into fulfilment")
    START_AUTOMATION = "start_automation", _("Automated fulfilment started")
    COMPLETE = "complete", _("Fulfilled")
    FAIL = "fail", _("Failed")
    REOPEN = "reopen", _("Reopened")
    REMIND = "remind", _("Reminder sent")
    ESCALATE = "escalate", _("Escalated")
    RATE = "rate", _("Rated")
    COMMENT = "comment", _("Comment")
    HOLD = "hold", _("Put on hold")
    RESUME = "resume", _("Resumed")


class HoldReason(models.TextChoices):
    """Why a request in fulfilment waits: its SLA clock is paused meanwhile."""

    REQUESTER = "requester", _("Waiting for the requester")
    SUPPLIER = "supplier", _("Waiting for a supplier")


# Events that mean a person worked on the fulfilment when a person (not the system) is the
# actor: taking it from the queue, completing or failing it by hand, reopening it.
MANUAL_FULFILMENT_EVENTS = (EventKind.TAKE, EventKind.COMPLETE, EventKind.FAIL, EventKind.REOPEN)
