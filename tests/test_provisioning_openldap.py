"""Automated fulfilment against the private OpenLDAP slapd, read back with ldapsearch."""

import pytest
from django.utils import timezone

from provisioning import entitlements as entitlement_jobs
from provisioning import services
from provisioning.choices import ActionKind, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app import services as request_services
from requests_app.choices import RequestState
from tests.provisioning_support import (
    add_group,
    add_person,
    attribute,
    automated_item,
    group_action,
    ldapmodify,
    members,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ldap(provisioning_directory):
    return provisioning_directory


def approve(req, user, callbacks):
    with callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=user)
    req.refresh_from_db()
    return req


def test_approved_vpn_order_lands_in_the_directory_and_revocation_removes_it(
    org, ldap, vpn, place_order, django_capture_on_commit_callbacks
):
    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    assert bob_dn.lower() not in members(ldap, group)
    req = approve(req, org.manager.user, django_capture_on_commit_callbacks)
    assert bob_dn.lower() in members(ldap, group)
    assert req.state == RequestState.FULFILLED
    job = ProvisioningJob.objects.get(request=req)
    assert (job.state, job.attempts, job.kind) == (JobState.SUCCEEDED, 1, ActionKind.ADD_TO_GROUP)
    assert "added to group" in job.log
    entitlement = Entitlement.objects.get(request=req)
    assert (entitlement.holder, entitlement.state) == (org.bob, EntitlementState.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        services.entitlement_revoke(entitlement_id=entitlement.pk, user=org.bob.user, reason="weg")
    assert bob_dn.lower() not in members(ldap, group)
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.REVOKED


def test_running_a_job_twice_leaves_the_same_directory(
    org, ldap, vpn, place_order, django_capture_on_commit_callbacks
):
    item, group = vpn
    add_person(ldap, org.bob)
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    job = ProvisioningJob.objects.get(request=req)
    before = members(ldap, group)
    # A second delivery of the same job finds its own change in place and says so.
    assert services.execute(job) == "already applied, e.g. by an earlier attempt (add to group)"
    assert services.job_run(job_id=job.pk) is None  # settled jobs never run again
    assert members(ldap, group) == before
    job.refresh_from_db()
    assert job.attempts == 1


def test_directory_down_job_retries_then_succeeds(
    org, ldap, vpn, place_order, django_capture_on_commit_callbacks, settings
):
    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    ldap.stop()
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
        for callback in callbacks[:1]:  # the mail; provisioning runs step by step below
            callback()
        services.provision_request(request_id=req.pk)
        job = ProvisioningJob.objects.get(request=req)
        outcome = services.job_run(job_id=job.pk)
        assert outcome is not None and outcome.countdown <= settings.PROVISIONING_RETRY_MAX_SECONDS
        job.refresh_from_db()
        assert job.state == JobState.RETRYING
        assert job.last_error
    finally:
        ldap.start()
    assert services.job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)
    assert bob_dn.lower() in members(ldap, group)
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED


def test_missing_group_fails_at_once_with_the_directory_message(
    org, ldap, place_order, django_capture_on_commit_callbacks
):
    add_person(ldap, org.bob)
    missing = ldap.group_dn("does-not-exist")
    item = automated_item(org.service_desk, group_action(missing))
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    job = ProvisioningJob.objects.get(request=req)
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert "No such" in job.last_error or "noSuchObject" in job.last_error
    assert req.state == RequestState.FAILED
    assert job.last_error in req.resolution_note


def test_give_up_after_max_attempts(org, ldap, vpn, place_order, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    item, _group = vpn
    add_person(ldap, org.bob)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    services.provision_request(request_id=req.pk)
    job = ProvisioningJob.objects.get(request=req)
    ldap.stop()
    try:
        assert services.job_run(job_id=job.pk) is not None
        assert services.job_run(job_id=job.pk) is None
    finally:
        ldap.start()
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.FAILED, 2)
    req.refresh_from_db()
    assert req.state == RequestState.FAILED


def test_account_actions_create_set_disable_enable(
    org, ldap, place_order, django_capture_on_commit_callbacks
):
    item = automated_item(
        org.service_desk,
        (
            ActionKind.CREATE_ACCOUNT,
            "",
            "cn = {{ beneficiary.first_name }} {{ beneficiary.last_name }}\n"
            "sn = {{ beneficiary.last_name }}\n"
            "mail = {{ beneficiary.uid }}@musterstadt.example",
        ),
        (ActionKind.SET_ATTRIBUTES, "", "title = Sachbearbeitung"),
        (ActionKind.DISABLE_ACCOUNT, "", ""),
    )
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    assert req.state == RequestState.FULFILLED, req.resolution_note
    dn = ldap.user_dn(org.bob.personnel_number)
    assert attribute(ldap, dn, "mail") == [f"{org.bob.personnel_number}@musterstadt.example"]
    assert attribute(ldap, dn, "title") == ["Sachbearbeitung"]
    assert attribute(ldap, dn, "pwdAccountLockedTime") == ["000001010000Z"]
    # Revocation runs the reverses: enable again (disable's reverse), disable (create's reverse).
    entitlement = Entitlement.objects.get(request=req)
    with django_capture_on_commit_callbacks(execute=True):
        services.entitlement_revoke(entitlement_id=entitlement.pk, user=None, reason="test")
    assert attribute(ldap, dn, "pwdAccountLockedTime") == ["000001010000Z"]
    kinds = list(
        ProvisioningJob.objects.filter(entitlement=entitlement)
        .order_by("position")
        .values_list("kind", "state")
    )
    assert kinds == [
        (ActionKind.ENABLE_ACCOUNT, JobState.SUCCEEDED),
        (ActionKind.DISABLE_ACCOUNT, JobState.SUCCEEDED),
    ]


def test_group_chosen_in_the_form_and_injection_in_answers(
    org, ldap, place_order, django_capture_on_commit_callbacks
):
    share = add_group(ldap, "fs-hauptamt", "fileshares")
    add_person(ldap, org.bob)
    item = automated_item(org.service_desk, group_action("{{ answers.share }}"))
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob, answers={"share": share}),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    assert req.state == RequestState.FULFILLED
    assert ldap.user_dn(org.bob.personnel_number).lower() in members(ldap, share)
    # A value that tries to break out of the DN is escaped into one harmless RDN value.
    evil = automated_item(
        org.service_desk, group_action("cn={{ answers.name }},ou=groups,dc=musterstadt,dc=example")
    )
    req = approve(
        place_order(evil, org.alice.user, beneficiary=org.bob, answers={"name": "x,ou=people"}),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    job = ProvisioningJob.objects.get(request=req)
    assert job.target_dn.startswith("cn=x\\,ou\\=people,ou=groups")
    assert job.state == JobState.FAILED  # no such group, and nothing else touched


def test_expired_entitlement_is_revoked_after_notice(
    org, ldap, vpn, place_order, django_capture_on_commit_callbacks, mailoutbox
):
    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    entitlement = Entitlement.objects.get(request=req)
    today = timezone.localdate()
    Entitlement.objects.filter(pk=entitlement.pk).update(
        expires_on=today + timezone.timedelta(days=3)
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = entitlement_jobs.expire_due(notice_days=7)
    assert counts == {"noticed": 1, "revoked": 0}
    assert any("endet" in m.subject or "ends" in m.subject for m in mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        counts = entitlement_jobs.expire_due(
            notice_days=7, today=today + timezone.timedelta(days=4)
        )
    assert counts["revoked"] == 1
    assert bob_dn.lower() not in members(ldap, group)


def test_reconciliation_finds_drift_both_ways_and_repairs(
    org, ldap, vpn, place_order, django_capture_on_commit_callbacks
):
    from provisioning.reconcile import reconcile, repair_missing

    item, group = vpn
    bob_dn = add_person(ldap, org.bob)
    stranger = add_person(ldap, org.outsider)
    approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    assert reconcile().counts == {"groups": 1, "missing": 0, "unexpected": 0, "shared": 0}
    # By hand, as an admin would with ldapmodify: one added without grant, one removed.
    ldapmodify(ldap, f"dn: {group}\nchangetype: modify\nadd: member\nmember: {stranger}\n")
    ldapmodify(ldap, f"dn: {group}\nchangetype: modify\ndelete: member\nmember: {bob_dn}\n")
    run = reconcile()
    assert run.counts == {"groups": 1, "missing": 1, "unexpected": 1, "shared": 0}
    missing = run.findings.get(kind="missing")
    assert missing.member == org.bob.personnel_number
    assert run.findings.get(kind="unexpected").member == stranger.lower()
    with django_capture_on_commit_callbacks(execute=True):
        repair_missing(finding_id=missing.pk)
    assert bob_dn.lower() in members(ldap, group)


def test_it_admin_retries_a_failed_job_after_fixing_the_cause(
    org, ldap, place_order, django_capture_on_commit_callbacks, client
):
    add_person(ldap, org.bob)
    group = ldap.group_dn("late-group")
    item = automated_item(org.service_desk, group_action(group))
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    job = ProvisioningJob.objects.get(request=req)
    assert job.state == JobState.FAILED and req.state == RequestState.FAILED
    add_group(ldap, "late-group")  # the admin creates the missing group
    client.force_login(org.admin.user)
    assert client.get(f"/provisionierung/auftraege/{job.pk}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/provisionierung/auftraege/{job.pk}/retry/")
    assert response.status_code == 302
    job.refresh_from_db()
    req.refresh_from_db()
    assert (job.state, req.state) == (JobState.SUCCEEDED, RequestState.FULFILLED)
    assert ldap.user_dn(org.bob.personnel_number).lower() in members(ldap, group)
    # Retrying a succeeded job is refused with a message.
    response = client.post(f"/provisionierung/auftraege/{job.pk}/retry/", follow=True)
    assert "Only failed jobs" in response.content.decode()


def test_it_admin_marks_a_failed_job_done_by_hand(
    org, ldap, place_order, django_capture_on_commit_callbacks, client
):
    add_person(ldap, org.bob)
    item = automated_item(org.service_desk, group_action(ldap.group_dn("nowhere")))
    req = approve(
        place_order(item, org.alice.user, beneficiary=org.bob),
        org.manager.user,
        django_capture_on_commit_callbacks,
    )
    job = ProvisioningJob.objects.get(request=req)
    client.force_login(org.admin.user)
    response = client.post(f"/provisionierung/auftraege/{job.pk}/done/", {"note": ""}, follow=True)
    assert "Please say what was done" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/provisionierung/auftraege/{job.pk}/done/", {"note": "per Hand im AD"})
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.finished_by == org.admin.user
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED  # the request follows the job done by hand
    assert "per Hand im AD" in job.log
    client.force_login(org.fulfiller.user)
    assert client.post(f"/provisionierung/auftraege/{job.pk}/retry/").status_code == 403
