"""How the decisions of one stage's reviewers make the stage's outcome for one access."""

from __future__ import annotations

from collections.abc import Iterable

from governance.choices import OutcomeStrategy, TaskDecision

ACCEPT, REVOKE, REDUCE, PENDING = (
    TaskDecision.ACCEPT,
    TaskDecision.REVOKE,
    TaskDecision.REDUCE,
    TaskDecision.PENDING,
)


def stage_outcome(strategy: str, decisions: Iterable[str]) -> str | None:
    """ACCEPT, REVOKE or None (nobody decided enough: the campaign's default applies).
    A "keep for a shorter time" counts as a keep; the caller shortens the validity.

    - one keep keeps: any keep wins; else any removal removes;
    - all must keep: any removal removes; kept only when every reviewer kept;
    - one removal removes: any removal removes; else any keep keeps;
    - kept unless removed: any removal removes; otherwise kept, answered or not.
    """
    decisions = list(decisions)
    keeps = any(d in (ACCEPT, REDUCE) for d in decisions)
    revokes = REVOKE in decisions
    if strategy == OutcomeStrategy.ONE_ACCEPT_ACCEPTS:
        return ACCEPT if keeps else REVOKE if revokes else None
    if strategy == OutcomeStrategy.ALL_MUST_ACCEPT:
        if revokes:
            return REVOKE
        return ACCEPT if decisions and all(d in (ACCEPT, REDUCE) for d in decisions) else None
    if strategy == OutcomeStrategy.ONE_REVOKE_REVOKES:
        return REVOKE if revokes else ACCEPT if keeps else None
    if strategy == OutcomeStrategy.ACCEPTED_UNLESS_REVOKED:
        return REVOKE if revokes else ACCEPT
    raise ValueError(f"unknown outcome strategy {strategy!r}")
