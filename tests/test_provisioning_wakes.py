"""One waiting message per group (provisioning.wakes): membership jobs of a group with a
message waiting send none; the message's worker clears the group's key before it claims, a
full claim wakes the group again, and a message whose own job needs nothing runs a due job
of its group instead. Against the session's Redis (keys of this test's groups only) and
the private slapd."""

import os

import pytest
import redis

from provisioning import batch, services, wakes
from provisioning.choices import ActionKind, JobState
from provisioning.models import ProvisioningJob
from requests_app.choices import RequestState
from tests.fault_support import seed_group_jobs, seed_people, seed_requests
from tests.provisioning_support import add_group, automated_item, group_action, members

pytestmark = pytest.mark.django_db

BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def shared(settings, monkeypatch):
    """Wake-ups shared through the broker's Redis, as with real workers (tasks still run
    eagerly here); the keys of the jobs used are removed afterwards."""
    client = redis.Redis.from_url(BROKER, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {BROKER}: {exc}")
    monkeypatch.setattr(wakes, "_client", lambda: client)
    used = []
    yield used
    keys = {wakes.key(job) for job in used}
    if keys:
        client.delete(*keys)


@pytest.fixture
def make(org, provisioning_directory):
    slapd = provisioning_directory

    def make(uids, group="wakes", kind=ActionKind.ADD_TO_GROUP):
        target = add_group(slapd, group) if isinstance(group, str) else group
        people = seed_people(org, slapd, uids)
        item = automated_item(org.service_desk, group_action(target, kind))
        return seed_group_jobs(seed_requests(org, people, [item]), [target], kind=kind)

    return slapd, make


def test_one_message_per_group_while_one_waits(shared, make):
    _slapd, make = make
    first = make(["w1", "w2", "w3"], group="wakes-a")
    other = make(["w4"], group="wakes-b")
    shared += [*first, *other]
    # One by one, as approvals commit: the group's first job sends, the others wait for it.
    assert [wakes.to_send([job]) for job in first] == [[first[0]], [], []]
    assert wakes.to_send(other) == other  # another group: its own message
    # The worker took the group's jobs: a job committed from then on sends its own.
    wakes.taken(first[0])
    assert wakes.to_send([first[1]]) == [first[1]]


def test_jobs_that_are_not_coalesced_always_send(shared, make, settings):
    _slapd, make = make
    jobs = make(["w5", "w6"], kind=ActionKind.ENABLE_ACCOUNT)
    shared += jobs
    assert not batch.eligible(jobs[0])
    assert wakes.to_send(jobs) == jobs


def test_without_shared_wakes_every_job_sends(make, settings):
    _slapd, make = make
    jobs = make(["w7", "w8"])
    settings.CELERY_TASK_ALWAYS_EAGER = True  # tests and the demo: no broker in between
    assert wakes.to_send(jobs) == jobs
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"
    assert wakes.to_send(jobs) == jobs


def test_an_unreachable_redis_sends_every_job(make, monkeypatch):
    _slapd, make = make
    jobs = make(["w9", "w10"])
    broken = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    monkeypatch.setattr(wakes, "_client", lambda: broken)
    assert wakes.to_send(jobs) == jobs
    wakes.taken(jobs[0])  # logged, not raised: the key expires


def test_a_message_whose_job_is_done_runs_its_groups_due_jobs(shared, make):
    slapd, make = make
    jobs = make([f"d{i}" for i in range(4)])
    shared += jobs
    ProvisioningJob.objects.filter(pk=jobs[0].pk).update(state=JobState.SUCCEEDED)
    assert services.job_run(job_id=jobs[0].pk) is None
    for job in jobs[1:]:
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.log
        job.request.refresh_from_db()
        assert job.request.state == RequestState.FULFILLED
    assert {slapd.user_dn(f"d{i}").lower() for i in range(1, 4)} <= members(
        slapd, jobs[0].target_dn
    )
    # Nothing due any more: the next such message finds nothing and does nothing.
    assert batch.next_due(jobs[0]) is None
    assert services.job_run(job_id=jobs[0].pk) is None


def test_a_full_claim_wakes_the_group_again(
    shared, make, settings, monkeypatch, django_capture_on_commit_callbacks
):
    slapd, make = make
    settings.PROVISIONING_BATCH_SIZE = 3
    jobs = make([f"f{i}" for i in range(5)])
    shared += jobs
    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda ids, countdowns=None: sent.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=jobs[0].pk) is None
    assert ProvisioningJob.objects.filter(state=JobState.SUCCEEDED).count() == 3
    assert sent == [jobs[0].pk]  # the trigger's message again: its job is done by then
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=sent[0]) is None  # runs the next batch in its place
    assert ProvisioningJob.objects.filter(state=JobState.SUCCEEDED).count() == 5
    assert {slapd.user_dn(f"f{i}").lower() for i in range(5)} <= members(slapd, jobs[0].target_dn)
