"""Mechanics shared by the portal's transactional outboxes (webhook deliveries, mail).

An outbox row is written in the transaction of whatever happened, so it commits or rolls
back with it. After commit a Celery task gets the row's id (``enqueue_after_commit``);
the task claims the row with ``SELECT … FOR UPDATE SKIP LOCKED`` (``claim``), so two
workers never work on it at once; transient failures wait with exponential backoff and
jitter (``backoff_seconds``), and a sweeper re-enqueues rows whose message got lost
(``overdue_ids``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Model, QuerySet


def backoff_seconds(
    attempt: int, *, base: float, cap: float, at_least: float | None = None
) -> float:
    """Wait after attempt ``attempt`` (1, 2, …): base·2^(attempt-1), capped, with jitter.

    ``at_least`` (e.g. a receiver's Retry-After) lengthens the wait, up to the cap.
    """
    countdown = min(base * 2 ** max(attempt - 1, 0), cap)
    countdown *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    if at_least is not None:
        countdown = max(countdown, min(at_least, cap))
    return countdown


def enqueue_after_commit(task, ids: Iterable) -> None:
    """Wake a worker for each row once the transaction that wrote the rows commits.

    ``robust``: a broker that is down must not break the action that committed; the rows
    are in the outbox and the sweeper enqueues them later.
    """
    ids = [str(pk) for pk in ids]

    def enqueue():
        for pk in ids:
            task.delay(pk)

    if ids:
        transaction.on_commit(enqueue, robust=True)


def claim(queryset: QuerySet, pk, states: Iterable[str]) -> Model | None:
    """Lock the row ``pk`` if it is in one of ``states`` and no other worker holds it.

    Call inside ``transaction.atomic()``; None when another worker has it or it is settled.
    """
    return (
        queryset.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=pk, state__in=list(states))
        .first()
    )


def overdue_ids(queryset: QuerySet, *, states: Iterable[str], before: datetime, limit: int) -> list:
    """Ids of open rows that were due before ``before``, oldest first: their message was lost."""
    return list(
        queryset.filter(state__in=list(states), next_attempt_at__lt=before)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def task_options(*, soft_time_limit: int) -> dict:
    """Celery options of a task that sends one outbox row.

    Acknowledged late and rejected (so redelivered) when its worker dies: the row decides
    whether anything is left to do, so a second run of the message is harmless. The row
    counts the attempts, so Celery's own retry limit is off.
    """
    return {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "soft_time_limit": soft_time_limit,
        "time_limit": soft_time_limit + 30,
        "max_retries": None,
    }
