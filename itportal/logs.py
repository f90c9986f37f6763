"""Structured logs: one JSON object per line, with the correlation fields of the context.

Every log line — the portal's own (``structlog.get_logger``), plain ``logging`` calls of
the code and of libraries (Django, Celery, gunicorn) — goes through one formatter that adds
the fields bound to the context: ``request_id`` (one per web request, set by
django-structlog's middleware and carried in Celery's task headers to every task the request
enqueued), ``user_id``, ``task_id``, ``order`` (the request number an order event was about).
So one search for a request id or an order number shows its path from the click through the
tasks to each directory change and mail (docs/operations.md, "Logs").
"""

from __future__ import annotations

import logging

import structlog

# Fields every line gets, for structlog's own loggers and for plain logging records alike.
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
]


def formatter(fmt: str) -> dict:
    """The ``logging`` formatter: ``json`` (production) or ``console`` (readable, no colours)."""
    if fmt not in ("json", "console"):
        raise ValueError("LOG_FORMAT must be 'json' or 'console'")
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
        # Plain logging records: ``extra={...}`` becomes fields, as structlog's keywords do.
        "foreign_pre_chain": [*_SHARED, structlog.stdlib.ExtraAdder()],
    }


def configure() -> None:
    """structlog hands its events to ``logging``, whose formatter renders them."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class QuietProbes(logging.Filter):
    """Drop the request lines of successful probes: a load balancer asks every few seconds.

    A failed probe (``/readyz`` 503) is still logged, and ``/readyz`` logs what failed.
    """

    PATHS = ("/healthz", "/readyz")

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg if isinstance(record.msg, dict) else {}
        method, _, path = str(event.get("request", "")).partition(" ")
        if method != "GET" or not path.startswith(self.PATHS):
            return True
        return event.get("event") == "request_finished" and event.get("code") != 200
