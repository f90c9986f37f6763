"""/metrics: series after a scripted scenario, access rules, scrape cost, multiprocess mode."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from metrics.collectors import DatabaseCollector
from provisioning import services as provisioning_services
from provisioning.backends.errors import PermanentDirectoryError, TransientDirectoryError
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob, SyncRun
from requests_app import services
from requests_app.models import ServiceRequest

TOKEN = "test-metrics-token"
BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True)
def _metrics_settings(settings, monkeypatch):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "::1"]
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def scrape_text(client, **extra) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def samples(text: str) -> dict:
    """{(sample name, frozenset of labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(data: dict, name: str, **labels) -> float:
    return data.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_scenario_counts_orders_transitions_and_lead_times(client, org, manual_item, place_order):
    before = samples(scrape_text(client))
    alice = org.alice.user
    request = place_order(manual_item, alice)
    services.request_approve(request_id=request.pk, user=org.manager.user)
    services.request_take(request_id=request.pk, user=org.fulfiller.user)
    services.request_complete(request_id=request.pk, user=org.fulfiller.user, note="done")
    second = place_order(manual_item, alice)  # stays open, awaiting approval
    after = samples(scrape_text(client))

    category = manual_item.category.name
    submitted = "itportal_requests_submitted_total"
    assert delta(before, after, submitted, item="notebook", category=category) == 2
    transitions = "itportal_request_transitions_total"
    for from_state, to_state, count in [
        ("none", "draft", 2),
        ("draft", "submitted", 2),
        ("submitted", "awaiting_approval", 2),
        ("awaiting_approval", "approved", 1),
        ("approved", "in_fulfilment", 1),
        ("in_fulfilment", "fulfilled", 1),
    ]:
        assert delta(before, after, transitions, from_state=from_state, to_state=to_state) == count

    request.refresh_from_db()
    wait = (request.approved_at - request.submitted_at).total_seconds()
    lead = (request.closed_at - request.submitted_at).total_seconds()
    approval = "itportal_request_approval_wait_seconds"
    assert delta(before, after, f"{approval}_count", item="notebook") == 1
    assert delta(before, after, f"{approval}_sum", item="notebook") == pytest.approx(wait)
    lead_time = "itportal_request_lead_time_seconds"
    assert delta(before, after, f"{lead_time}_count", item="notebook") == 1
    assert delta(before, after, f"{lead_time}_sum", item="notebook") == pytest.approx(lead)
    assert delta(before, after, f"{lead_time}_bucket", item="notebook", le="300.0") == 1

    # Gauges: this test's database only.
    assert value(after, "itportal_requests_open", state="awaiting_approval") == 1
    assert value(after, "itportal_requests_open", state="in_fulfilment") == 0
    assert value(after, "itportal_requests_open_oldest_age_seconds", state="awaiting_approval") >= 0
    assert value(after, "itportal_entitlements_active", item="notebook") == 1
    assert second.state == "awaiting_approval"


def _job(request, **fields) -> ProvisioningJob:
    return ProvisioningJob.objects.create(
        request=request,
        direction=Direction.GRANT,
        kind=ActionKind.ADD_TO_GROUP,
        user_uid="alice",
        target_dn="cn=vpn,ou=groups,dc=example",
        dialect="openldap",
        **fields,
    )


def test_provisioning_jobs_errors_retries_and_sync(
    client, org, manual_item, place_order, monkeypatch
):
    request = place_order(manual_item, org.alice.user)
    before = samples(scrape_text(client))
    labels = {"action": "add_to_group", "backend": "openldap"}
    monkeypatch.setattr(provisioning_services, "_settle", lambda job: None)

    # A transient error: deferred (automatic retry), then a permanent one: failed.
    job = _job(request)
    monkeypatch.setattr(
        provisioning_services,
        "execute",
        lambda job: (_ for _ in ()).throw(TransientDirectoryError("busy", code=51)),
    )
    assert provisioning_services.job_run(job_id=job.pk) is not None
    monkeypatch.setattr(
        provisioning_services,
        "execute",
        lambda job: (_ for _ in ()).throw(PermanentDirectoryError("no such object", code=32)),
    )
    assert provisioning_services.job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    provisioning_services.job_retry(job_id=job.pk, user=org.admin.user)  # manual retry

    # Another job succeeds.
    monkeypatch.setattr(provisioning_services, "execute", lambda job: "added to group")
    other = place_order(manual_item, org.alice.user)
    done = _job(other)  # first job of its request: nothing earlier to wait for
    # On its own: coalescing would take the retried job on the same group along, through the
    # batch's directory path rather than the stubbed execute (tests/test_provisioning_batch.py).
    provisioning_services.job_run(job_id=done.pk, coalesce=False)
    done.refresh_from_db()
    assert done.state == JobState.SUCCEEDED

    # One that is never run stays waiting, an hour old.
    _job(request, position=3, created_at=timezone.now() - timedelta(hours=1))

    # A finished sync run.
    run = SyncRun.objects.create(kind=SyncRun.Kind.FULL)
    run.finished_at = run.started_at + timedelta(seconds=42)
    run.succeeded = True
    run.save()
    run.save()  # saved again: observed once

    after = samples(scrape_text(client))
    finished = "itportal_provisioning_jobs_finished_total"
    assert delta(before, after, finished, **labels, outcome="failed") == 1
    assert delta(before, after, finished, **labels, outcome="succeeded") == 1
    retries = "itportal_provisioning_job_retries_total"
    assert delta(before, after, retries, **labels, trigger="automatic") == 1
    assert delta(before, after, retries, **labels, trigger="manual") == 1
    errors = "itportal_directory_errors_total"
    assert delta(before, after, errors, kind="transient", backend="openldap") == 1
    assert delta(before, after, errors, kind="permanent", backend="openldap") == 1
    duration = "itportal_provisioning_job_duration_seconds_count"
    assert delta(before, after, duration, **labels) == 2
    sync = "itportal_directory_sync_duration_seconds"
    assert delta(before, after, f"{sync}_count", kind="full", outcome="succeeded") == 1
    assert delta(before, after, f"{sync}_sum", kind="full", outcome="succeeded") == 42

    # The retried job (pending) and the one never run wait; the oldest is an hour old.
    assert value(after, "itportal_provisioning_jobs_waiting", state="pending") == 2
    assert value(after, "itportal_provisioning_jobs_waiting", state="running") == 0
    assert value(after, "itportal_provisioning_jobs_failed") == 0
    age = value(after, "itportal_provisioning_oldest_waiting_job_age_seconds")
    assert 3600 <= age < 3700


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # no token, from 127.0.0.1 (allowed address)
        ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, True),
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, False),  # a wrong token is never accepted
        ({"REMOTE_ADDR": "10.1.2.3"}, False),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, True),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_AUTHORIZATION": "Basic abc"}, False),
    ],
)
def test_access(client, db, headers, allowed):
    response = client.get("/metrics", **headers)
    assert response.status_code == (200 if allowed else 403)


def test_access_by_network_and_token_only(client, db, settings):
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.METRICS_ALLOWED_IPS = []
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_the_token_is_required_by_default(client, db, settings):
    import itportal.settings as defaults

    assert defaults.METRICS_ALLOWED_IPS == []  # no address is trusted unless configured
    settings.METRICS_ALLOWED_IPS = defaults.METRICS_ALLOWED_IPS
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 403
    ok = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200


def test_metrics_needs_no_login_and_only_get(client, db):
    assert client.post("/metrics").status_code == 405


def _grow(org, manual_item, place_order, count: int) -> None:
    for _ in range(count):
        request = place_order(manual_item, org.alice.user)
        _job(request)
        _job(request, position=2)
        Entitlement.objects.create(
            holder=org.alice, item=manual_item, request=request, state=EntitlementState.ACTIVE
        )


@pytest.mark.parametrize("rows", [1, 25])
def test_gauges_cost_constant_queries(
    client, org, manual_item, place_order, django_assert_max_num_queries, rows
):
    _grow(org, manual_item, place_order, rows)
    # jobs, stalled jobs, stalled requests (with a directory), entitlements, requests, mails,
    # runs
    with django_assert_max_num_queries(7):
        families = list(DatabaseCollector().collect())
    by_name = {family.name: family for family in families}
    open_requests = {s.labels["state"]: s.value for s in by_name["itportal_requests_open"].samples}
    assert open_requests["awaiting_approval"] == rows
    assert by_name["itportal_entitlements_active"].samples[0].value == rows
    waiting = {
        s.labels["state"]: s.value for s in by_name["itportal_provisioning_jobs_waiting"].samples
    }
    assert waiting["pending"] == 2 * rows
    # The whole scrape: the seven aggregates and nothing per row.
    with django_assert_max_num_queries(7):
        scrape_text(client)
    assert ServiceRequest.objects.count() == rows


WRITER = """
from metrics import prometheus as m
m.REQUESTS_SUBMITTED.labels(item="vpn", category="Netz").inc({n})
m.JOB_DURATION.labels(action="add_to_group", backend="ad").observe(0.3)
"""


def test_multiprocess_two_writers(client, db, tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER.format(n=n)], cwd=BASE_DIR, env=env)
        for n in (2, 3)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    total = registry.get_sample_value(
        "itportal_requests_submitted_total", {"item": "vpn", "category": "Netz"}
    )
    assert total == 5
    count = registry.get_sample_value(
        "itportal_provisioning_job_duration_seconds_count",
        {"action": "add_to_group", "backend": "ad"},
    )
    assert count == 2

    # The view in multiprocess mode sums the processes' files, plus the database gauges.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    data = samples(scrape_text(client))
    assert value(data, "itportal_requests_submitted_total", item="vpn", category="Netz") == 5
    assert value(data, "itportal_requests_open", state="awaiting_approval") == 0


def _grafana_series() -> set[str]:
    dashboard = json.loads((BASE_DIR / "deploy" / "grafana" / "itportal.json").read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert exprs
    return {name for expr in exprs for name in re.findall(r"\bitportal_[a-z_]+", expr)}


SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def test_grafana_dashboard_uses_only_exposed_series(client, db):
    exposed = set()
    for family in text_string_to_metric_families(scrape_text(client)):
        exposed.update(family.name + suffix for suffix in SUFFIXES[family.type])
    missing = _grafana_series() - exposed
    assert not missing


def test_alert_rules_use_only_exposed_series(client, db):
    rules = (BASE_DIR / "deploy" / "prometheus" / "alerts.yml").read_text()
    exposed = set()
    for family in text_string_to_metric_families(scrape_text(client)):
        exposed.update(family.name + suffix for suffix in SUFFIXES[family.type])
    used = set(re.findall(r"\bitportal_[a-z_]+", rules))
    assert used
    assert not used - exposed
