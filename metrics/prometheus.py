"""Prometheus series of the portal, and the registry ``/metrics`` exposes.

Counters and histograms are fed from events (signal receivers connected in
``MetricsConfig.ready``); gauges are read from the database at scrape time by
``metrics.collectors.DatabaseCollector``.

With several gunicorn or Celery worker processes set ``PROMETHEUS_MULTIPROC_DIR``
to an empty, writable directory shared by all of them (wiped on deploy): every
process then writes its values to files there and ``/metrics`` sums them up with
prometheus-client's ``MultiProcessCollector``. Without it, values live in this
process only (development, single process).

This module imports nothing from Django, so a bare Python process can use it.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The registry of this process's own series (single-process mode).
REGISTRY = CollectorRegistry(auto_describe=True)

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
# Human waiting times: minutes to weeks.
WAIT_BUCKETS = (
    5 * MINUTE,
    15 * MINUTE,
    HOUR,
    2 * HOUR,
    4 * HOUR,
    8 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    5 * DAY,
    WEEK,
    2 * WEEK,
    4 * WEEK,
    8 * WEEK,
)
# Directory operations: sub-second to minutes.
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SYNC_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 2 * HOUR)

REQUESTS_SUBMITTED = Counter(
    "itportal_requests_submitted",
    "Service requests submitted, by catalogue item and category.",
    ["item", "category"],
    registry=REGISTRY,
)
REQUEST_TRANSITIONS = Counter(
    "itportal_request_transitions",
    "State changes of service requests, by state before and after.",
    ["from_state", "to_state"],
    registry=REGISTRY,
)
APPROVAL_WAIT = Histogram(
    "itportal_request_approval_wait_seconds",
    "Time from submission until a request was approved.",
    ["item"],
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
LEAD_TIME = Histogram(
    "itportal_request_lead_time_seconds",
    "Time from submission until a request was fulfilled.",
    ["item"],
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "itportal_provisioning_job_duration_seconds",
    "Duration of the last run of a provisioning job that ended, by action and backend.",
    ["action", "backend"],
    buckets=JOB_BUCKETS,
    registry=REGISTRY,
)
JOB_OUTCOMES = Counter(
    "itportal_provisioning_jobs_finished",
    "Provisioning jobs that ended, by action, backend and outcome "
    "(succeeded, failed, done_by_hand).",
    ["action", "backend", "outcome"],
    registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "itportal_provisioning_job_retries",
    "Retries of provisioning jobs: automatic (after a transient error) or manual (by an admin).",
    ["action", "backend", "trigger"],
    registry=REGISTRY,
)
SWEEPS = Counter(
    "itportal_provisioning_sweeps",
    "Runs of the provisioning sweeper.",
    registry=REGISTRY,
)
SWEPT = Counter(
    "itportal_provisioning_swept",
    "What the provisioning sweeper enqueued again, by kind (overdue_job: its message was "
    "lost; abandoned_job: its worker died; approved_request: approved without jobs).",
    ["kind"],
    registry=REGISTRY,
)
DIRECTORY_ERRORS = Counter(
    "itportal_directory_errors",
    "Errors of directory operations, by kind (transient or permanent) and backend.",
    ["kind", "backend"],
    registry=REGISTRY,
)
SYNC_DURATION = Histogram(
    "itportal_directory_sync_duration_seconds",
    "Duration of directory sync and reconciliation runs, by kind and outcome.",
    ["kind", "outcome"],
    buckets=SYNC_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "itportal_webhook_delivery_attempts",
    "Attempts to deliver a webhook, by event type and outcome "
    "(delivered, retry, failed: failed means the delivery gave up).",
    ["event_type", "outcome"],
    registry=REGISTRY,
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry(*extra_collectors) -> CollectorRegistry:
    """The registry one scrape reads: this process's series, or all processes' files."""
    path = multiprocess_dir()
    if path is None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Forward(REGISTRY))
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
    for collector in extra_collectors:
        registry.register(collector)
    return registry


class _Forward:
    """Exposes another registry's series inside a per-scrape registry."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()

    def describe(self):
        return []
