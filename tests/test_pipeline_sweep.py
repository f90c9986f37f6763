"""No approved request left behind: the provisioning jobs commit with the approval, a broker
that is down never turns the decision into an error, and the sweeper enqueues again what
stalled (a lost message, a worker that died holding a job, an approval without jobs).

Real PostgreSQL with real commits (transaction=True: the after-commit path is what is
tested), the private slapd read back with ldapsearch. "Broker down" is the Celery app
pointed at a closed port; "later" is the sweeper's ``now`` moved forward.
"""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from metrics import prometheus as m
from metrics.collectors import DatabaseCollector
from provisioning import receivers, services
from provisioning.choices import JobState
from provisioning.models import ProvisioningJob
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.signals import request_approved
from tests.api_support import token_client
from tests.broker_support import broker_down
from tests.provisioning_support import add_group, add_person, automated_item, group_action, members

pytestmark = pytest.mark.django_db(transaction=True)

SWEEP_AFTER = 60


@pytest.fixture
def ldap(directory_settings, settings):
    settings.PROVISIONING_SWEEP_AFTER_SECONDS = SWEEP_AFTER
    settings.PROVISIONING_LEASE_SECONDS = 120
    return directory_settings


@pytest.fixture
def vpn(org, ldap):
    group = add_group(ldap, "vpn-users")
    return automated_item(org.service_desk, group_action(group), name="VPN", slug="vpn"), group


def _stalled() -> dict[str, float]:
    family = next(
        f for f in DatabaseCollector().collect() if f.name == "itportal_provisioning_stalled"
    )
    return {sample.labels["kind"]: sample.value for sample in family.samples}


def _swept(kind: str) -> float:
    return m.REGISTRY.get_sample_value("itportal_provisioning_swept_total", {"kind": kind}) or 0


def _later(seconds: float = SWEEP_AFTER + 1):
    return timezone.now() + timedelta(seconds=seconds)


def _approve_through(through, org, service_request, client):
    if through == "api":
        response = token_client(org.manager.user).post(
            f"/api/v1/requests/{service_request.pk}/approve/", {}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["state"] == RequestState.IN_FULFILMENT
    else:
        client.force_login(org.manager.user)
        url = reverse("requests:action", args=[service_request.pk, "approve"])
        response = client.post(url, {"state": service_request.state}, follow=True)
        assert response.status_code == 200
        assert "You approved the request." in response.content.decode()


@pytest.mark.parametrize("through", ["api", "page"])
def test_broker_down_approval_answers_normally_and_the_sweeper_provisions(
    org, ldap, vpn, place_order, settings, client, through, caplog
):
    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    service_request = place_order(item, org.alice.user, beneficiary=org.bob)
    with broker_down(settings), caplog.at_level(logging.WARNING, "provisioning.services"):
        _approve_through(through, org, service_request, client)
        assert "could not enqueue provisioning job" in caplog.text  # the broker refused
        # The job committed with the approval; its message (and the mail's) never left.
        job = ProvisioningJob.objects.get(request=service_request)
        assert (job.state, job.attempts, job.wakes) == (JobState.PENDING, 0, 0)
        assert job.due_at is not None
        service_request.refresh_from_db()
        assert service_request.state == RequestState.IN_FULFILMENT
        assert _stalled()["overdue_job"] == 0  # not overdue yet: the message may be queued
        # The sweeper runs while the broker is still down: it marks the wake, sends nothing.
        assert services.pipeline_sweep(now=_later())["overdue_job"] == 1
    assert bob_dn.lower() not in members(ldap, group)
    job.refresh_from_db()
    assert (job.state, job.wakes) == (JobState.PENDING, 1)
    # The broker is back (tasks run in-process here); the next sweep after the backoff
    # enqueues the job, and the worker adds Bob to the group.
    swept = _swept("overdue_job")
    assert services.pipeline_sweep(now=_later(SWEEP_AFTER / 2))["overdue_job"] == 0  # too soon
    assert services.pipeline_sweep(now=_later(3 * SWEEP_AFTER))["overdue_job"] == 1
    assert _swept("overdue_job") == swept + 1
    job.refresh_from_db()
    assert (job.state, job.attempts, job.wakes) == (JobState.SUCCEEDED, 1, 2)
    assert bob_dn.lower() in members(ldap, group)
    service_request.refresh_from_db()
    assert service_request.state == RequestState.FULFILLED
    client.force_login(org.admin.user)  # IT admins see what the sweeper did
    page = client.get(reverse("provisioning:job", args=[job.pk])).content.decode()
    assert "Re-enqueued by the sweeper</dt><dd>2</dd>" in page


def test_job_of_a_dead_worker_is_swept_once_its_lease_ends(org, ldap, vpn, place_order, settings):
    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    service_request = place_order(item, org.alice.user, beneficiary=org.bob)
    with broker_down(settings):
        request_services.request_approve(request_id=service_request.pk, user=org.manager.user)
    job = ProvisioningJob.objects.get(request=service_request)
    # A worker claims the job and is killed before writing anything.
    ProvisioningJob.objects.filter(pk=job.pk).update(due_at=timezone.now() - timedelta(hours=1))
    job.refresh_from_db()
    job.start(lease_seconds=settings.PROVISIONING_LEASE_SECONDS)
    job.save()
    # While the lease runs, nobody else runs it: a duplicate message changes nothing.
    assert services.job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.RUNNING, 1)
    assert services.pipeline_sweep()["abandoned_job"] == 0
    assert _stalled()["abandoned_job"] == 0
    # The lease ends (120 s after the claim, far above a run's time limit): the sweeper hands
    # the job to a live worker, which runs it to the end.
    ProvisioningJob.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert _stalled()["abandoned_job"] == 1
    counts = services.pipeline_sweep()
    assert counts == {"overdue_job": 0, "abandoned_job": 1, "approved_request": 0}
    job.refresh_from_db()
    assert (job.state, job.attempts, job.wakes) == (JobState.SUCCEEDED, 2, 1)
    assert job.lease_until is None and job.due_at is None
    assert bob_dn.lower() in members(ldap, group)
    # Settled: later sweeps leave it alone.
    assert services.pipeline_sweep(now=_later(3600)) == {
        "overdue_job": 0,
        "abandoned_job": 0,
        "approved_request": 0,
    }


def test_approved_request_without_jobs_gets_them(org, ldap, vpn, place_order):
    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    service_request = place_order(item, org.alice.user, beneficiary=org.bob)
    # Approved while provisioning was not listening (before jobs were recorded with the
    # approval, or recording them failed and was logged).
    request_approved.disconnect(receivers.start_provisioning)
    try:
        request_services.request_approve(request_id=service_request.pk, user=org.manager.user)
    finally:
        request_approved.connect(receivers.start_provisioning)
    service_request.refresh_from_db()
    assert service_request.state == RequestState.APPROVED
    assert not ProvisioningJob.objects.filter(request=service_request).exists()
    assert services.pipeline_sweep()["approved_request"] == 0  # just approved: not stalled
    assert _stalled()["approved_request"] == 0
    swept = _swept("approved_request")
    assert services.pipeline_sweep(now=_later())["approved_request"] == 1
    assert _swept("approved_request") == swept + 1
    job = ProvisioningJob.objects.get(request=service_request)
    assert job.state == JobState.SUCCEEDED
    assert bob_dn.lower() in members(ldap, group)
    service_request.refresh_from_db()
    assert service_request.state == RequestState.FULFILLED
    assert services.pipeline_sweep(now=_later())["approved_request"] == 0


def test_jobs_waiting_for_the_one_before_are_not_stalled(org, ldap, place_order, settings):
    first, second = add_group(ldap, "first"), add_group(ldap, "second")
    item = automated_item(org.service_desk, group_action(first), group_action(second))
    add_person(ldap, org.bob)
    service_request = place_order(item, org.alice.user, beneficiary=org.bob)
    with broker_down(settings):
        request_services.request_approve(request_id=service_request.pk, user=org.manager.user)
    jobs = list(ProvisioningJob.objects.filter(request=service_request).order_by("position"))
    assert jobs[0].due_at is not None and jobs[1].due_at is None  # the second waits
    later = _later()
    with broker_down(settings):
        assert services.pipeline_sweep(now=later)["overdue_job"] == 1  # the first only
    assert _stalled() == {"overdue_job": 0, "abandoned_job": 0, "approved_request": 0}
    services.pipeline_sweep(now=_later(3 * SWEEP_AFTER))  # broker back: both run in order
    states = set(ProvisioningJob.objects.filter(request=service_request).values_list("state"))
    assert states == {(JobState.SUCCEEDED,)}


def test_two_sweeps_at_once_wake_each_job_once(org, ldap, vpn, place_order, settings):
    item, _group = vpn
    people = [org.alice, org.bob, org.alice]  # Alice twice: two requests, two jobs
    add_person(ldap, org.alice)
    add_person(ldap, org.bob)
    with broker_down(settings):
        for person in people:
            service_request = place_order(item, person.user, beneficiary=person)
            request_services.request_approve(request_id=service_request.pk, user=org.manager.user)
        later, found = _later(), []
        barrier = threading.Barrier(2)

        def sweep():
            try:
                barrier.wait(timeout=30)
                found.append(services.pipeline_sweep(now=later)["overdue_job"])
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(found) in ([0, 3], [1, 2])  # row locks split the jobs, none taken twice
    assert sum(found) == len(people)
    assert list(ProvisioningJob.objects.values_list("wakes", flat=True)) == [1] * len(people)
