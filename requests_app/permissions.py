"""Who may fire which transition. Used as django-fsm ``permission=`` callables.

Each takes ``(service_request, user)``; the buttons a user sees come from
``get_available_user_state_transitions``, so pages and services share one rule.
"""

from __future__ import annotations

from django.utils import timezone

from itportal.roles import group_ids, is_it_admin


def is_requester(request, user) -> bool:
    return user.is_authenticated and request.requester_id == user.pk


def is_admin(request, user) -> bool:
    return is_it_admin(user)


def can_cancel(request, user) -> bool:
    return is_requester(request, user) or is_it_admin(user)


def can_fulfil(request, user) -> bool:
    return (
        user.is_authenticated
        and (request.fulfilment_group_id in group_ids(user) or is_it_admin(user))
        and not barred_from_fulfilment(request, user)
    )


def barred_from_fulfilment(request, user) -> bool:
    """Segregation of duties: for items that ask for it, nobody involved in a request
    (requester, beneficiary, approver) fulfils it — IT admins included."""
    if not request.item_snapshot.get("independent_fulfilment"):
        return False
    return user.pk in excluded_user_ids(request)


_DECIDERS = "_four_eyes_deciders"


def _earlier_deciders(request) -> set[int]:
    """Who decided a step of ``request`` already, in person or as a substitute's principal.

    Kept on the instance: a page asks for every button; ``forget_deciders`` after a decision.
    """
    from requests_app.choices import ApprovalStatus

    cached = request.__dict__.get(_DECIDERS)
    if cached is None:
        cached = set()
        if request.pk is not None:
            decided = request.approvals.filter(
                status__in=[ApprovalStatus.APPROVED, ApprovalStatus.REJECTED]
            ).values_list("decided_by_id", "on_behalf_of_id")
            for pair in decided:
                cached.update(pk for pk in pair if pk is not None)
        request.__dict__[_DECIDERS] = cached
    return cached


def forget_deciders(request) -> None:
    request.__dict__.pop(_DECIDERS, None)


def excluded_user_ids(request) -> set[int]:
    """Four-eyes: who may not decide the open steps of ``request``.

    The requester and the beneficiary never decide; and one person never decides two
    steps of the same request, neither in person nor through another's authority: whoever
    decided an earlier step, and the person they decided for as substitute, are out.
    """
    return {request.requester_id, request.beneficiary.user_id} | _earlier_deciders(request)


def may_decide_directly(approval, user) -> bool:
    if not user.is_active:
        return False
    if approval.approver_id is not None:
        return approval.approver_id == user.pk
    return approval.group_id in group_ids(user)


def current_approval(request):
    from requests_app.choices import ApprovalStatus

    return request.approvals.filter(status=ApprovalStatus.PENDING).first()


def deciding_principal(request, user, *, approval=None, on_date=None):
    """The approver ``user`` decides for on this request's current step, or None.

    That is the user themselves, or an absent approver whose substitute the user
    is on ``on_date`` (today by default). Four-eyes holds for both of them.
    """
    from requests_app.models import Substitution

    if not user.is_authenticated:
        return None
    if user.pk in (request.requester_id, request.beneficiary.user_id):
        return None
    excluded = excluded_user_ids(request)
    if user.pk in excluded:
        return None
    approval = approval or current_approval(request)
    if approval is None:
        return None
    if may_decide_directly(approval, user):
        return user
    on_date = on_date or timezone.localdate()
    substitutions = Substitution.objects.filter(
        substitute=user, starts_on__lte=on_date, ends_on__gte=on_date
    ).select_related("principal")
    for substitution in substitutions:
        principal = substitution.principal
        if principal.pk not in excluded and may_decide_directly(approval, principal):
            return principal
    return None


def barred_by_earlier_decision(request, user, *, approval=None) -> bool:
    """Whether ``user`` could decide ``approval`` but for having decided an earlier step
    (in person or through the principal they substituted): the four-eyes refusal."""
    from requests_app.models import Substitution

    approval = approval or current_approval(request)
    if approval is None or not user.is_authenticated:
        return False
    if user.pk in {request.requester_id, request.beneficiary.user_id}:
        return False
    if may_decide_directly(approval, user):
        return True
    on_date = timezone.localdate()
    return any(
        may_decide_directly(approval, substitution.principal)
        for substitution in Substitution.objects.filter(
            substitute=user, starts_on__lte=on_date, ends_on__gte=on_date
        ).select_related("principal")
    )


def can_decide(request, user) -> bool:
    return deciding_principal(request, user) is not None
