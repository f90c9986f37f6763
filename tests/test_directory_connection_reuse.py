"""A process binds to the directory once and reuses that connection for every job; a forked
child (Celery's prefork pool) opens its own; the worker's shutdown signal unbinds it."""

import os

import pytest
from celery import signals as celery_signals

from provisioning import backends
from provisioning.backends import get_backend
from provisioning.choices import JobState
from provisioning.models import ProvisioningJob
from requests_app import services as request_services
from tests.provisioning_support import add_person, members

pytestmark = pytest.mark.django_db


def counting_binds(backend) -> list:
    binds = []
    connect = backend._connect
    backend._connect = lambda: binds.append(1) or connect()
    return binds


def test_jobs_share_one_bind(
    org, vpn, provisioning_directory, place_order, django_capture_on_commit_callbacks
):
    item, group = vpn
    binds = counting_binds(get_backend())
    dns = []
    for person in (org.alice, org.bob):
        dns.append(add_person(provisioning_directory, person))
        req = place_order(item, org.alice.user, beneficiary=person)
        with django_capture_on_commit_callbacks(execute=True):
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
    assert set(ProvisioningJob.objects.values_list("state", flat=True)) == {JobState.SUCCEEDED}
    assert {dn.lower() for dn in dns} <= members(provisioning_directory, group)
    assert len(binds) == 1


def test_a_forked_child_opens_its_own_connection(directory_settings):
    parent = get_backend()
    parent.check()
    parents_connection = parent.connection()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it found, never return into pytest
        try:
            inherited = bool(backends._backends)
            child = get_backend()
            child.check()
            fresh = child is not parent and child.connection() is not parents_connection
            os.write(write, f"{inherited} {fresh}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert answer == "False True"
    # The child's end did not end the parent's session: it still works, unchanged.
    parent.check()
    assert parent.connection() is parents_connection


def test_worker_shutdown_unbinds(directory_settings):
    backend = get_backend()
    backend.check()
    connection = backend.connection()
    celery_signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert connection.closed
    assert not backends._backends
