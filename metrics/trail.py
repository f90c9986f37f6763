"""An order's trail in the logs: one structured line per order event, directory change, mail.

Connected in MetricsConfig.ready, like the Prometheus counters: the apps whose rows these are
know nothing of it. Each line carries ``order`` (the request number) besides the context
that itportal/logs.py adds (``request_id`` of the click, ``task_id``), so a search for either
finds the whole path. A line is written when the row is saved, after the transition that it
reports, in the process that made the change: the web process for a decision, the worker for
a directory change or a mail.
"""

from __future__ import annotations

import structlog

logger = structlog.get_logger("itportal.trail")

# post_transition fires before save(): remember it on the instance, log once it is saved.
_PENDING = "_trail_transition"


def on_request_event(sender, instance, created, **kwargs):
    if not created:
        return
    context = structlog.contextvars.get_contextvars()
    if "request_id" in context or "task_id" in context:
        # Later lines of this web request or task (and the tasks it enqueues) name the order
        # too; elsewhere (a command over many orders) nothing would unbind it again.
        structlog.contextvars.bind_contextvars(order=instance.request_id)
    logger.info(
        "order.event",
        order=instance.request_id,
        kind=instance.kind,
        from_state=instance.from_state,
        to_state=instance.to_state,
        actor_id=instance.actor_id,
    )


def remember_transition(sender, instance, name, source, target, **kwargs):
    setattr(instance, _PENDING, (name, source, target, kwargs.get("method_kwargs") or {}))


_JOB_EVENTS = {
    "succeed": "directory.change",
    "mark_done": "directory.change_by_hand",
    "defer": "directory.retry",
    "fail": "directory.failed",
}


def on_job_saved(sender, instance, **kwargs):
    name, _source, target, arguments = instance.__dict__.pop(_PENDING, (None, None, None, {}))
    event = _JOB_EVENTS.get(name)
    if event is None:
        return
    logger.log(
        30 if name == "fail" else 20,  # WARNING for a failed change, INFO otherwise
        event,
        order=instance.request_id,
        job=instance.pk,
        action=instance.kind,
        direction=instance.direction,
        account=instance.user_uid,
        target=instance.target_dn,
        directory=instance.dialect,
        attempt=instance.attempts,
        state=target,
        note=arguments.get("note", ""),
        error=arguments.get("error", ""),
    )


_MAIL_EVENTS = {"succeed": "mail.sent", "defer": "mail.retry", "fail": "mail.failed"}


def on_mail_saved(sender, instance, **kwargs):
    name, _source, target, arguments = instance.__dict__.pop(_PENDING, (None, None, None, {}))
    event = _MAIL_EVENTS.get(name)
    if event is None:
        return
    # The recipient by id: addresses are personal data and stay in the outbox row.
    logger.log(
        30 if name == "fail" else 20,
        event,
        order=(instance.params or {}).get("request_id"),
        mail=str(instance.pk),
        kind=instance.kind,
        recipient_id=instance.recipient_id,
        attempt=instance.attempts,
        state=target,
        error=arguments.get("error", ""),
    )
