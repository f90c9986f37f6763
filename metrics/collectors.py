"""Gauges read from the database at scrape time, with a fixed number of small queries.

Active entitlements, open requests, failed jobs and failed or uncertain mails are counted
incrementally (``metrics.gauges``: deltas written by triggers in the changing transaction),
the age of the oldest open request is one index look-up per state, and the waiting jobs and
mails are read from indexed states of the few rows of the queues, so a scrape costs the same
at ten thousand and at a million requests (seven queries). Nothing counts what stays behind
(failed jobs and mails wait for an IT admin and pile up with the history).
"""

from __future__ import annotations

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from metrics import gauges
from notifications.selectors import GAUGE_STATES as MAIL_STATES
from notifications.selectors import mail_counts_by_state
from provisioning.choices import JobState
from provisioning.models import ProvisioningJob
from provisioning.selectors import stalled_jobs, stalled_requests
from requests_app.choices import OPEN_STATES
from runs.selectors import last_successes

WAITING_JOB_STATES = (JobState.PENDING, JobState.RUNNING, JobState.RETRYING)


def _age(now, since) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


class DatabaseCollector:
    """Queue sizes and stock figures; correct whichever process serves the scrape."""

    def describe(self):
        return []

    def collect(self):
        now = timezone.now()
        stuck = gauges.counts(gauges.JOBS_FAILED, gauges.MAILS_STUCK)
        yield from self._jobs(now, stuck)
        yield from self._entitlements()
        yield from self._requests(now)
        yield from self._mails(stuck)
        yield from self._runs()

    def _jobs(self, now, stuck):
        # One aggregate over the waiting jobs (the queue, served by job_due_idx): counts per
        # state, the oldest, and what the sweeper would enqueue again.
        stalled = stalled_jobs(now=now)
        row = ProvisioningJob.objects.filter(state__in=WAITING_JOB_STATES).aggregate(
            oldest=Min("created_at"),
            **{state.value: Count("pk", filter=Q(state=state)) for state in WAITING_JOB_STATES},
            **{kind: Count("pk", filter=condition) for kind, condition in stalled.items()},
        )
        waiting = GaugeMetricFamily(
            "itportal_provisioning_jobs_waiting",
            "Provisioning jobs not finished yet, by state.",
            labels=["state"],
        )
        for state in WAITING_JOB_STATES:
            waiting.add_metric([state.value], row[state.value])
        yield waiting
        yield GaugeMetricFamily(
            "itportal_provisioning_oldest_waiting_job_age_seconds",
            "Age of the oldest provisioning job not finished yet (0 when none waits).",
            value=_age(now, row["oldest"]),
        )
        yield GaugeMetricFamily(
            "itportal_provisioning_jobs_failed",
            "Provisioning jobs failed and not yet retried or done by hand.",
            value=stuck.get((gauges.JOBS_FAILED, JobState.FAILED.value), 0),
        )
        family = GaugeMetricFamily(
            "itportal_provisioning_stalled",
            "What the provisioning sweeper would enqueue again now, by kind (overdue_job: "
            "due but not run, its message lost; abandoned_job: its worker died; "
            "approved_request: approved without jobs). Above 0 for long: workers or broker down.",
            labels=["kind"],
        )
        for kind in stalled:
            family.add_metric([kind], row[kind])
        family.add_metric(["approved_request"], stalled_requests(now=now).count())
        yield family

    def _entitlements(self):
        family = GaugeMetricFamily(
            "itportal_entitlements_active",
            "Active entitlements, by catalogue item.",
            labels=["item"],
        )
        for slug, count in gauges.entitlements_active_by_slug():
            family.add_metric([slug], count)
        yield family

    def _requests(self, now):
        rows = {
            state: {"count": count, "oldest": oldest}
            for state, count, oldest in gauges.requests_open([s.value for s in OPEN_STATES])
        }
        count = GaugeMetricFamily(
            "itportal_requests_open", "Open service requests, by state.", labels=["state"]
        )
        age = GaugeMetricFamily(
            "itportal_requests_open_oldest_age_seconds",
            "Time since submission of the oldest open request in each state "
            "(0 when none; drafts are never submitted).",
            labels=["state"],
        )
        for state in OPEN_STATES:
            row = rows.get(state, {})
            count.add_metric([state.value], row.get("count", 0))
            age.add_metric([state.value], _age(now, row.get("oldest")))
        yield count
        yield age

    def _mails(self, stuck):
        family = GaugeMetricFamily(
            "itportal_mails_unsent",
            "Mails not sent, by state (failed and uncertain ones wait for an IT admin "
            "on Postausgang).",
            labels=["state"],
        )
        waiting = [state for state in MAIL_STATES if state not in gauges.STUCK_MAIL_STATES]
        counts = mail_counts_by_state(states=waiting)
        for state in MAIL_STATES:
            if state in gauges.STUCK_MAIL_STATES:
                count = stuck.get((gauges.MAILS_STUCK, state.value), 0)
            else:
                count = counts[state]
            family.add_metric([state], count)
        yield family

    def _runs(self):
        # An alert on this catches a nightly run that stopped running: retention above all,
        # where a silent failure means personal data kept past its period.
        family = GaugeMetricFamily(
            "itportal_run_last_success_timestamp_seconds",
            "End of the last successful run of each long run (retention, directory sync, "
            "reconciliation …), as Unix time.",
            labels=["run"],
        )
        for name, last in last_successes():
            family.add_metric([name], last.timestamp())
        yield family
