"""Shared memberships and "already done" answers, on the private slapd, read back with
ldapsearch: a membership held by several entitlements stays until the last one ends."""

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from itportal.locks import lock_key
from provisioning import holders, services
from provisioning.backends import get_backend
from provisioning.backends.errors import PermanentDirectoryError
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ManualMembership, ProvisioningJob, SyncRun
from provisioning.reconcile import reconcile
from requests_app import services as request_services
from requests_app.choices import RequestState
from tests.provisioning_support import (
    ADD,
    DELETE,
    add_group,
    add_person,
    attribute,
    automated_item,
    group_action,
    members,
    modify,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ldap(provisioning_directory):
    return provisioning_directory


@pytest.fixture
def fulfil(org, place_order, django_capture_on_commit_callbacks):
    """Order ``item`` for Bob and let it run to the end; returns the entitlement."""

    def _fulfil(item, beneficiary=None):
        req = place_order(item, org.alice.user, beneficiary=beneficiary or org.bob)
        with django_capture_on_commit_callbacks(execute=True):
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
        req.refresh_from_db()
        assert req.state == RequestState.FULFILLED, req.resolution_note
        return Entitlement.objects.get(request=req)

    return _fulfil


@pytest.fixture
def revoke(django_capture_on_commit_callbacks):
    def _revoke(entitlement):
        with django_capture_on_commit_callbacks(execute=True):
            services.entitlement_revoke(entitlement_id=entitlement.pk, user=None, reason="test")
        entitlement.refresh_from_db()
        assert entitlement.state == EntitlementState.REVOKED
        return ProvisioningJob.objects.get(entitlement=entitlement, direction=Direction.REVOKE)

    return _revoke


def test_same_item_twice_member_stays_until_the_second_is_revoked(org, ldap, vpn, fulfil, revoke):
    item, group = vpn
    bob = add_person(ldap, org.bob).lower()
    first, second = fulfil(item), fulfil(item)
    assert bob in members(ldap, group)
    job = revoke(first)
    assert bob in members(ldap, group)  # the second entitlement still holds it
    assert job.state == JobState.SUCCEEDED
    assert f"still held through entitlement #{second.pk}" in job.log
    job = revoke(second)
    assert bob not in members(ldap, group)
    assert "removed from group" in job.log


def test_two_items_granting_the_same_group_however_spelt(org, ldap, vpn, fulfil, revoke):
    item, group = vpn
    bob = add_person(ldap, org.bob).lower()
    # The same DN written another way by whoever configured the second item.
    shouting = group.upper()
    remote = automated_item(org.service_desk, group_action(shouting), name="Fernzugriff")
    vpn_access, remote_access = fulfil(item), fulfil(remote)
    revoke(remote_access)
    assert bob in members(ldap, group)
    revoke(vpn_access)
    assert bob not in members(ldap, group)


def test_grant_on_its_way_holds_the_membership(
    org, ldap, vpn, fulfil, revoke, place_order, django_capture_on_commit_callbacks
):
    """Revoking while a second order of the same group is approved but not yet run."""
    item, group = vpn
    bob = add_person(ldap, org.bob).lower()
    first = fulfil(item)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    with django_capture_on_commit_callbacks(execute=False):  # its job waits in the queue
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
        services.provision_request(request_id=req.pk)
    job = revoke(first)
    assert f"request #{req.pk} being fulfilled" in job.log
    assert bob in members(ldap, group)
    pending = ProvisioningJob.objects.get(request=req, direction=Direction.GRANT)
    with django_capture_on_commit_callbacks(execute=True):
        services.job_run(job_id=pending.pk)
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    assert bob in members(ldap, group)


def test_membership_given_by_hand_survives_the_portal_revocation(org, ldap, vpn, fulfil, revoke):
    item, group = vpn
    bob = add_person(ldap, org.bob)
    add_person(ldap, org.alice)
    fulfil(item, beneficiary=org.alice)  # the portal manages the group
    modify(ldap, group, {"member": [(ADD, [bob])]})  # an admin, by hand
    run = reconcile()
    assert run.counts["unexpected"] == 1
    manual = ManualMembership.objects.get()
    assert (manual.group_dn, manual.member_uid) == (group.lower(), org.bob.personnel_number)
    entitlement = fulfil(item)  # "already a member"
    job = revoke(entitlement)
    assert "given by hand in the directory" in job.log
    assert bob.lower() in members(ldap, group)
    modify(ldap, group, {"member": [(DELETE, [bob])]})  # the hand grant ends
    reconcile()
    assert not ManualMembership.objects.exists()


def test_a_portal_revocation_under_way_is_not_mistaken_for_a_hand_grant(
    org, ldap, vpn, fulfil, place_order, django_capture_on_commit_callbacks
):
    item, group = vpn
    bob = add_person(ldap, org.bob).lower()
    entitlement = fulfil(item)
    with django_capture_on_commit_callbacks(execute=False):  # the removal has not run yet
        services.entitlement_revoke(entitlement_id=entitlement.pk, user=None, reason="test")
    reconcile()
    assert not ManualMembership.objects.exists()
    job = ProvisioningJob.objects.get(entitlement=entitlement, direction=Direction.REVOKE)
    services.job_run(job_id=job.pk)
    assert bob not in members(ldap, group)


def test_reconcile_lists_holders(org, ldap, vpn, fulfil, capsys):
    item, group = vpn
    add_person(ldap, org.bob)
    alice = add_person(ldap, org.alice)
    first, second = fulfil(item), fulfil(item)
    modify(ldap, group, {"member": [(ADD, [alice])]})
    call_command("directory_reconcile", "--holders")
    out = capsys.readouterr().out
    run = SyncRun.objects.get()
    assert run.counts["shared"] == 1  # Bob's; Alice's hand grant is her only holder
    assert f"{org.bob.personnel_number.lower()} [2 holders]" in run.report
    assert org.alice.personnel_number.lower() not in run.report
    uid = org.bob.personnel_number.lower()
    assert f"  {uid} [2 holders]: entitlement #{first.pk} (VPN-Zugang" in out
    assert f"entitlement #{second.pk} (VPN-Zugang" in out
    assert f"  {org.alice.personnel_number.lower()}: given by hand in the directory" in out


def test_account_stays_enabled_while_another_entitlement_needs_it(org, ldap, fulfil, revoke):
    create = automated_item(
        org.service_desk, (ActionKind.CREATE_ACCOUNT, "", "sn = {{ beneficiary.last_name }}")
    )
    enable = automated_item(org.service_desk, (ActionKind.ENABLE_ACCOUNT, "", ""))
    dn = ldap.user_dn(org.bob.personnel_number)
    account, enabled = fulfil(create), fulfil(enable)
    job = revoke(account)  # the reverse of "create" is "disable"
    assert f"still held through entitlement #{enabled.pk}" in job.log
    assert attribute(ldap, dn, "pwdAccountLockedTime") == []
    revoke(enabled)
    assert attribute(ldap, dn, "pwdAccountLockedTime") == ["000001010000Z"]


# --- "already so" answers of the directory count as done, after a read-back -----------------


def test_membership_written_by_someone_else_in_between_counts_as_done(ldap):
    backend = get_backend()
    group = add_group(ldap, "race")
    user = ldap.admin_dn
    # Between our read and our write a concurrent change does the same: slapd answers
    # attributeOrValueExists (20) / noSuchAttribute (16), which the read-back confirms.
    assert (
        backend.add_member(
            group, user, before_write=lambda: modify(ldap, group, {"member": [(ADD, [user])]})
        )
        is False
    )
    assert user.lower() in members(ldap, group)
    assert (
        backend.remove_member(
            group, user, before_write=lambda: modify(ldap, group, {"member": [(DELETE, [user])]})
        )
        is False
    )
    assert user.lower() not in members(ldap, group)


def test_a_real_refusal_of_the_write_is_not_swallowed(ldap):
    backend = get_backend()
    group = add_group(ldap, "vanishing")

    def delete_group():
        conn = ldap.connection()
        try:
            assert conn.delete(group)
        finally:
            conn.unbind()

    with pytest.raises(PermanentDirectoryError) as caught:
        backend.add_member(group, ldap.admin_dn, before_write=delete_group)
    assert caught.value.code == 32


def test_job_log_records_the_change_before_the_write_and_the_retry_says_it_was_applied(
    org, ldap, vpn, fulfil, django_capture_on_commit_callbacks
):
    """The database commit after the directory write is lost (a crash): the job stays
    running, the sweeper delivers it again, and the retry finds its own change."""
    item, group = vpn
    bob = add_person(ldap, org.bob).lower()
    entitlement = fulfil(item)
    with django_capture_on_commit_callbacks(execute=False):
        services.entitlement_revoke(entitlement_id=entitlement.pk, user=None, reason="test")
    job = ProvisioningJob.objects.get(entitlement=entitlement, direction=Direction.REVOKE)
    # What job_run commits before it calls the directory; the worker then dies, so its
    # lease has run out when the sweeper delivers the job again.
    job.start(lease_seconds=-1)
    job.save()
    services.execute(job)  # the write happens; the commit of "succeeded" never does
    assert bob not in members(ldap, group)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    assert "intended: remove from group" in job.log  # committed before the write
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=job.pk) is None  # the sweeper's delivery
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
    assert "already applied, e.g. by an earlier attempt (remove from group)" in job.log
    assert "was not a member" not in job.log
    lines = job.log.splitlines()
    assert [i for i, line in enumerate(lines) if "intended:" in line] < [
        i for i, line in enumerate(lines) if "already applied" in line
    ]
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.REVOKED


def test_jobs_on_the_same_membership_wait_for_each_other(org, ldap, vpn, place_order, settings):
    """Another job holds the membership's lock: this one waits, then retries later."""
    item, group = vpn
    add_person(ldap, org.bob)
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    services.provision_request(request_id=req.pk)
    job = ProvisioningJob.objects.get(request=req)
    key = lock_key("\x1f".join(holders.membership_key(job)))
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [key])
        holders_wait, holders.LOCK_WAIT_SECONDS = holders.LOCK_WAIT_SECONDS, 0.2
        try:
            assert services.job_run(job_id=job.pk) is not None  # retry later
        finally:
            holders.LOCK_WAIT_SECONDS = holders_wait
        job.refresh_from_db()
        assert job.state == JobState.RETRYING
        assert "same membership" in job.last_error
        assert ldap.user_dn(org.bob.personnel_number).lower() not in members(ldap, group)
    assert services.job_run(job_id=job.pk) is None  # the lock is free: it runs
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
