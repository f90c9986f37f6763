"""Coalesced membership jobs (provisioning.batch) against the private slapd: many jobs on one
group go out in one modify, each job keeps its own outcome, audit and request; a batch the
directory refuses falls back to one job at a time. Read back with ldapsearch."""

import ldap3
import pytest

from metrics.prometheus import JOB_OUTCOMES
from provisioning import batch, services
from provisioning.backends import get_backend
from provisioning.choices import ActionKind, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app.choices import RequestState
from requests_app.models import RequestEvent
from tests.fault_support import seed_group_jobs, seed_people, seed_requests
from tests.provisioning_support import add_group, automated_item, group_action, members

pytestmark = pytest.mark.django_db


def spy(backend, name) -> list:
    """Record the calls of one backend method (the server still answers them)."""
    calls = []
    method = getattr(backend, name)

    def recorded(*args, **kwargs):
        calls.append(args)
        return method(*args, **kwargs)

    setattr(backend, name, recorded)
    return calls


@pytest.fixture
def group_jobs(org, provisioning_directory):
    """``make(uids, kind)``: people in slapd and the portal, one due job each on cn=batch."""
    slapd = provisioning_directory
    group = add_group(slapd, "batch")

    def make(uids, kind=ActionKind.ADD_TO_GROUP, target=group):
        people = seed_people(org, slapd, uids) if uids else []
        item = automated_item(org.service_desk, group_action(target, kind))
        requests = seed_requests(org, people, [item])
        return seed_group_jobs(requests, [target], kind=kind)

    return slapd, group, make


def assert_settled(jobs, state=JobState.SUCCEEDED, request_state=RequestState.FULFILLED):
    for job in jobs:
        job.refresh_from_db()
        assert job.state == state, (job.pk, job.state, job.last_error, job.log)
        job.request.refresh_from_db()
        assert job.request.state == request_state, job.request.resolution_note


def test_many_adds_go_out_in_one_modify(group_jobs, settings, monkeypatch):
    settings.LANGUAGE_CODE = "en"
    monkeypatch.setattr(batch, "RECORD_CHUNK", 5)  # recorded in three transactions
    slapd, group, make = group_jobs
    uids = [f"b{i:03d}" for i in range(12)]
    jobs = make(uids)
    # One of them is a member already (given by hand): the batch must not fail on it.
    conn = slapd.connection()
    conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [slapd.user_dn("b005")])]})
    conn.unbind()
    modifies = spy(get_backend(), "modify_members")
    outcomes = JOB_OUTCOMES.labels(action="add_to_group", backend="openldap", outcome="succeeded")
    finished = outcomes._value.get()
    assert services.job_run(job_id=jobs[0].pk) is None
    assert len(modifies) == 1
    assert_settled(jobs)
    assert outcomes._value.get() - finished == len(uids)  # bulk writes still count each job
    assert {slapd.user_dn(uid).lower() for uid in uids} <= members(slapd, group)
    notes = {job.user_uid: job.log for job in ProvisioningJob.objects.all()}
    assert "already a member" in notes["b005"]
    assert "intended" not in notes["b005"]
    assert all(
        "added to group" in notes[uid] and "intended" in notes[uid] for uid in uids if uid != "b005"
    )
    # Each request: its own audit trail, fulfilled automatically, its entitlement granted.
    for job in jobs:
        assert job.request.fulfilled_automatically
        kinds = list(
            RequestEvent.objects.filter(request=job.request).values_list("kind", flat=True)
        )
        assert kinds == ["complete"]
    assert Entitlement.objects.filter(state=EntitlementState.ACTIVE).count() == len(uids)
    # The other jobs' messages arrive late: nothing twice.
    for job in jobs:
        assert services.job_run(job_id=job.pk) is None
    assert RequestEvent.objects.filter(kind="complete").count() == len(uids)


def test_a_batch_leaves_the_rows_one_by_one_would(
    group_jobs, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Notifications, mails, entitlements and the rescan of a batch are written for all its
    requests at once: the same rows as each request's own follow-ups, one rescan for all."""
    from governance import tasks as governance_tasks
    from notifications.models import LanguagePreference, Notification, OutgoingMail
    from requests_app import notifications

    settings.LANGUAGE_CODE = "en"
    _slapd, _group, make = group_jobs
    jobs = make([f"n{i:03d}" for i in range(4)])
    german = jobs[1].request.beneficiary.user
    LanguagePreference.objects.create(user=german, language="de")
    scans = []
    monkeypatch.setattr(
        governance_tasks.scan_segregation_of_duties, "delay", lambda **kw: scans.append(kw)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.job_run(job_id=jobs[0].pk)
    assert_settled(jobs)
    assert scans == [{"holder_ids": sorted(job.request.beneficiary_id for job in jobs)}]

    def rows():
        notes = Notification.objects.order_by("recipient_id").values_list(
            "recipient_id", "kind", "title", "url"
        )
        mails = OutgoingMail.objects.order_by("recipient_id").values_list(
            "recipient_id", "kind", "params", "to"
        )
        return list(notes), list(mails)

    batched = rows()
    assert len(batched[0]) == len(batched[1]) == len(jobs)
    titles = {recipient: title for recipient, _kind, title, _url in batched[0]}
    assert titles[german.pk].startswith("Antrag Nr.")  # in the recipient's language
    Notification.objects.all().delete()
    OutgoingMail.objects.all().delete()
    for job in jobs:
        job.request.refresh_from_db()
        notifications.notify(job.request, notifications.FULFILLED)
    assert rows() == batched
    for job in jobs:
        entitlement = Entitlement.objects.get(request=job.request)
        assert (entitlement.holder_id, entitlement.item_id, entitlement.expires_on) == (
            job.request.beneficiary_id,
            job.request.item_id,
            None,
        )
    # A second grant of the same requests writes nothing.
    services.entitlements_grant(service_requests=[job.request for job in jobs])
    assert Entitlement.objects.count() == len(jobs)


def test_a_batch_takes_the_people_to_notify_from_its_rows(
    group_jobs, org, django_assert_num_queries
):
    """The requests a batch fulfils carry their requester and beneficiary: the people to
    notify are the same as one query for them would find, inactive ones left out."""
    from requests_app.models import ServiceRequest
    from requests_app.notifications import _people_of

    _slapd, _group, make = group_jobs
    ids = [job.request_id for job in make(["p000", "p001", "p002"])]
    ServiceRequest.objects.filter(pk=ids[1]).update(requester=org.alice.user)  # for a colleague
    left = ServiceRequest.objects.get(pk=ids[2]).beneficiary.user
    left.is_active = False
    left.save()
    requests = ServiceRequest.objects.filter(pk__in=ids).order_by("pk")
    loaded = list(requests.select_related("beneficiary__user", "requester"))

    def concerned(people):  # what notify_many asks of them: each request's two people
        by_pk, by_employee = people
        return [
            [
                getattr(user, "pk", None)
                for user in (by_pk.get(r.requester_id), by_employee.get(r.beneficiary_id))
            ]
            for r in loaded
        ]

    with django_assert_num_queries(0):
        in_hand = _people_of(loaded)
    assert concerned(in_hand) == concerned(_people_of(list(requests)))
    assert concerned(in_hand)[1][0] == org.alice.user_id
    assert concerned(in_hand)[2] == [None, None]


def test_removals_and_a_missing_account(group_jobs, settings):
    settings.LANGUAGE_CODE = "en"
    slapd, group, make = group_jobs
    uids = [f"r{i:03d}" for i in range(6)]
    jobs = make(uids, ActionKind.REMOVE_FROM_GROUP)
    conn = slapd.connection()
    conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [slapd.user_dn(u) for u in uids[:4]])]})
    conn.unbind()
    # An account deleted from the directory after the order: only its job fails.
    conn = slapd.connection()
    conn.delete(slapd.user_dn("r005"))
    conn.unbind()
    modifies = spy(get_backend(), "modify_members")
    services.job_run(job_id=jobs[0].pk)
    assert len(modifies) == 1
    assert_settled(jobs[:5])
    assert_settled(jobs[5:], JobState.FAILED, RequestState.FAILED)
    assert "No such user in the directory: r005" in jobs[5].last_error
    assert not {slapd.user_dn(uid).lower() for uid in uids} & members(slapd, group)
    logs = {job.user_uid: job.log for job in ProvisioningJob.objects.all()}
    assert "removed from group" in logs["r000"]
    assert "was not a member" in logs["r004"]


def test_revocations_go_out_in_one_modify_and_leave_what_a_twin_holds(group_jobs, org, settings):
    """Entitlements revoked at once (an access review, leavers): their removals go out in
    one modify; a member whose membership another active entitlement holds stays."""
    settings.LANGUAGE_CODE = "en"
    slapd, group, make = group_jobs
    uids = [f"v{i:03d}" for i in range(5)]
    grants = make(uids)
    services.job_run(job_id=grants[0].pk)
    assert_settled(grants)
    # v000 holds the membership twice: a second order of another item on the same group.
    twin_item = automated_item(org.service_desk, group_action(group))
    twin = seed_group_jobs(
        seed_requests(org, [grants[0].request.beneficiary], [twin_item]), [group]
    )
    services.job_run(job_id=twin[0].pk, coalesce=False)
    assert_settled(twin)
    for job in grants:
        services.entitlement_revoke(
            entitlement_id=job.request.entitlement.pk, user=None, reason="review"
        )
    revokes = list(ProvisioningJob.objects.filter(direction="revoke").order_by("pk"))
    assert len(revokes) == len(uids)
    modifies = spy(get_backend(), "modify_members")
    services.job_run(job_id=revokes[0].pk)
    assert len(modifies) == 1
    for job in revokes:
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, (job.pk, job.last_error, job.log)
    assert set(
        Entitlement.objects.filter(request__in=[g.request for g in grants]).values_list(
            "state", flat=True
        )
    ) == {EntitlementState.REVOKED}
    assert members(slapd, group) & {slapd.user_dn(uid).lower() for uid in uids} == {
        slapd.user_dn("v000").lower()
    }
    logs = {job.user_uid: job.log for job in revokes}
    assert "still held through" in logs["v000"]
    assert all("removed from group" in logs[uid] for uid in uids[1:])


def test_a_refused_batch_runs_one_by_one(group_jobs, settings):
    """The directory refuses the whole modify (here: a member added by someone else between
    the read and the write): every job runs again alone and ends right."""
    settings.LANGUAGE_CODE = "en"
    slapd, group, make = group_jobs
    uids = [f"f{i:03d}" for i in range(5)]
    jobs = make(uids)
    backend = get_backend()
    read = backend.members_present

    def stale_read(group_dn, dns):
        present = read(group_dn, dns)  # read before the change below: f002 looks absent
        conn = slapd.connection()
        conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [slapd.user_dn("f002")])]})
        conn.unbind()
        return present

    backend.members_present = stale_read
    modifies = spy(backend, "modify_members")
    services.job_run(job_id=jobs[0].pk)
    assert len(modifies) == 1  # the batch; then the one-member methods
    assert_settled(jobs)
    assert {slapd.user_dn(uid).lower() for uid in uids} <= members(slapd, group)
    for job in jobs:
        job.refresh_from_db()
        assert job.attempts == 2  # the batch, then alone


def test_a_missing_group_fails_each_job_with_the_directory_message(group_jobs, settings):
    slapd, _group, make = group_jobs
    jobs = make(["g001", "g002", "g003"], target=slapd.group_dn("no-such-group"))
    services.job_run(job_id=jobs[0].pk)
    assert_settled(jobs, JobState.FAILED, RequestState.FAILED)
    for job in jobs:
        assert "No such" in job.last_error or "noSuchObject" in job.last_error, job.last_error


def test_same_member_added_and_removed_is_not_coalesced(
    group_jobs, org, django_capture_on_commit_callbacks
):
    slapd, group, make = group_jobs
    adds = make(["c001", "c002"])
    removal = seed_group_jobs(
        seed_requests(
            org,
            [adds[0].request.beneficiary],
            [automated_item(org.service_desk, group_action(group, ActionKind.REMOVE_FROM_GROUP))],
        ),
        [group],
        kind=ActionKind.REMOVE_FROM_GROUP,
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.job_run(job_id=adds[0].pk)
    assert_settled(adds)
    removal[0].refresh_from_db()
    assert removal[0].state == JobState.SUCCEEDED  # released, then run on its own message
    assert slapd.user_dn("c001").lower() not in members(slapd, group)


def test_a_job_waiting_for_an_earlier_one_of_its_order_is_not_taken_along(group_jobs, org):
    """A second job of an order that is due although its first is still open (a duplicate
    message, a retry by hand) stays out of the batch and waits for the first one's end."""
    slapd, group, make = group_jobs
    jobs = make(["e001", "e002"])
    first = jobs[1]
    second = ProvisioningJob.objects.create(
        request=first.request,
        direction=first.direction,
        position=first.position + 1,
        kind=ActionKind.ADD_TO_GROUP,
        user_uid="e002",
        target_dn=group,
        dialect="openldap",
        due_at=first.due_at,
    )
    ProvisioningJob.objects.filter(pk=first.pk).update(due_at=None)  # not due: stays open
    assert batch.waiting([first, second, jobs[0]]) == {second.pk}
    assert services.job_run(job_id=jobs[0].pk) is None
    assert_settled(jobs[:1])
    second.refresh_from_db()
    assert second.state == JobState.PENDING and second.due_at is None  # left to the first
    assert slapd.user_dn("e002").lower() not in members(slapd, group)


def test_membership_reads_escape_and_bisect(provisioning_directory):
    slapd = provisioning_directory
    group = add_group(slapd, "reads")
    backend = get_backend()
    odd = [slapd.user_dn(uid) for uid in ("a*b", "c)(d", "e\\f", "g,h", "plain")]
    conn = slapd.connection()
    conn.modify(group, {"member": [(ldap3.MODIFY_ADD, odd[1:3])]})
    conn.unbind()
    searches = spy(backend, "search")
    assert backend.members_present(group, odd) == {dn.lower() for dn in odd[1:3]}
    assert backend.members_absent(group, odd) == {dn.lower() for dn in odd[:1] + odd[3:]}
    assert backend.members_present(group, odd[3:]) == set()
    assert len(searches) <= 20
    assert backend.find_user_dns(["nobody*", ")("]) == {}
