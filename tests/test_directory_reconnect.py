"""The first directory call after slapd comes back succeeds: the dead cached connection is
replaced at once instead of failing the user's order (read back with ldapsearch)."""

import pytest

from provisioning import services
from provisioning.backends import get_backend
from provisioning.choices import JobState
from provisioning.models import ProvisioningJob
from requests_app import services as request_services
from requests_app.choices import RequestState
from tests.provisioning_support import add_group, add_person, automated_item, group_action, members

pytestmark = pytest.mark.django_db


def restart(slapd):
    slapd.stop()
    slapd.start()


def test_first_call_after_a_restart_reconnects(directory_settings):
    slapd = directory_settings
    group = add_group(slapd, "after-restart")
    backend = get_backend()
    assert backend.list_groups(slapd.group_base)[0]["dn"].lower() == group.lower()
    before = backend.connection()
    restart(slapd)
    # Read and write on the connection kept from before the restart: no error, no retry.
    assert [g["name"] for g in backend.list_groups(slapd.group_base)] == ["after-restart"]
    assert backend.connection() is not before
    restart(slapd)
    assert backend.add_member(group, slapd.admin_dn) is True
    assert slapd.admin_dn.lower() in members(slapd, group)


def test_job_after_a_restart_succeeds_on_its_first_attempt(
    org, directory_settings, place_order, django_capture_on_commit_callbacks
):
    slapd = directory_settings
    group = add_group(slapd, "vpn-users")
    bob = add_person(slapd, org.bob)
    item = automated_item(org.service_desk, group_action(group))
    get_backend().check()  # the worker's connection, warm from earlier work
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    restart(slapd)
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    job = ProvisioningJob.objects.get(request=req)
    assert (job.state, job.attempts, job.last_error) == (JobState.SUCCEEDED, 1, "")
    assert bob.lower() in members(slapd, group)
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    assert services.job_run(job_id=job.pk) is None
