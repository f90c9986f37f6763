"""Where a request stands: the steps from submission to the end, and who is on it now.

Used by the start page, the lists and the request page. Reads only what the caller loaded:
the request (with ``fulfilment_group`` and ``assignee``) and its pending approval, if any.
"""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from requests_app.choices import RequestState

S = RequestState

# The colour family of each state's badge (CSS class ``badge-<tone>``; text always says it).
TONES = {
    S.DRAFT: "neutral",
    S.SUBMITTED: "info",
    S.AWAITING_APPROVAL: "waiting",
    S.APPROVED: "info",
    S.IN_FULFILMENT: "info",
    S.FULFILLED: "ok",
    S.REJECTED: "bad",
    S.FAILED: "bad",
    S.CANCELLED: "neutral",
}


@dataclass(frozen=True)
class Step:
    label: str
    status: str  # "done", "current", "todo" or "stopped"


def tone(state: str) -> str:
    return TONES.get(state, "neutral")


def now_with(service_request, pending_approval=None) -> str:
    """One sentence: who is on the request now, or how it ended."""
    state = service_request.state
    group = service_request.fulfilment_group.name
    if state == S.AWAITING_APPROVAL and pending_approval is not None:
        return _("Waiting for approval by %(approver)s.") % {
            "approver": pending_approval.approver_display
        }
    if state in (S.DRAFT, S.SUBMITTED, S.AWAITING_APPROVAL):
        return _("Submitted; the approval is being prepared.")
    if state == S.APPROVED:
        if not service_request.is_manual:
            return _("Approved; automated fulfilment starts shortly.")
        return _("Approved; waiting to be taken by %(group)s.") % {"group": group}
    if state == S.IN_FULFILMENT:
        if service_request.assignee_id is None:
            return _("Being fulfilled automatically.")
        who = service_request.assignee.get_full_name() or service_request.assignee.get_username()
        return _("%(person)s (%(group)s) is fulfilling it.") % {"person": who, "group": group}
    return {
        S.FULFILLED: _("Fulfilled."),
        S.REJECTED: _("Rejected."),
        S.CANCELLED: _("Cancelled."),
        S.FAILED: _("Could not be fulfilled."),
    }.get(state, "")


def steps(service_request, pending_approval=None) -> list[Step]:
    """submitted → approval (by whom) → fulfilment (by which group) → done."""
    state = service_request.state
    group = service_request.fulfilment_group.name
    position = {
        S.DRAFT: 0,
        S.SUBMITTED: 0,
        S.AWAITING_APPROVAL: 1,
        S.APPROVED: 2,
        S.IN_FULFILMENT: 2,
        S.FULFILLED: 4,
    }
    if pending_approval is not None:
        approval = _("Approval by %(approver)s") % {"approver": pending_approval.approver_display}
    elif service_request.approval_steps == 0 and state not in (S.DRAFT, S.SUBMITTED):
        approval = _("No approval needed")
    else:
        approval = _("Approval")
    if service_request.is_manual:
        fulfilment = _("Fulfilment by %(group)s") % {"group": group}
    else:
        fulfilment = _("Automated fulfilment")
    labels = [_("Submitted"), approval, fulfilment, _("Done")]
    stopped_at = {S.REJECTED: 1, S.CANCELLED: None, S.FAILED: 2}
    if state in stopped_at:
        # Ended early: the steps reached are done, the one it ended at says how.
        at = stopped_at[state]
        if at is None:
            at = 2 if service_request.approved_at else (1 if service_request.approval_steps else 0)
        result = [Step(labels[i], "done") for i in range(at)]
        ended = {
            S.REJECTED: _("Rejected"),
            S.CANCELLED: _("Cancelled"),
            S.FAILED: _("Failed"),
        }[state]
        result.append(Step(f"{labels[at]}: {ended}", "stopped"))
        return result
    current = position.get(state, 0)
    result = []
    for index, label in enumerate(labels):
        if index < current or state == S.FULFILLED:
            status = "done"
        elif index == current:
            status = "current"
        else:
            status = "todo"
        result.append(Step(label, status))
    return result
