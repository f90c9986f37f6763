"""Leavers in the directory sync, on the real slapd: automated access removed by the revoke
jobs, and for each manual entitlement and each device delivered a task for the group that
delivered it ("Notebook einsammeln"), listed in its fulfilment queue until marked done."""

import pytest
from django.urls import reverse

from notifications.models import Notification, OutgoingMail
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from provisioning.sync import sync_people
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.models import FulfilmentTask
from tests.factories import CatalogueItemFactory, EmployeeFactory
from tests.provisioning_support import add_person, ldapmodify, members

pytestmark = pytest.mark.django_db

K = FulfilmentTask.Kind


def deliver(item, org, beneficiary, place_order, callbacks):
    req = place_order(item, org.alice.user, beneficiary=beneficiary)
    if req.state == RequestState.AWAITING_APPROVAL:
        with callbacks(execute=True):
            request_services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    if req.state == RequestState.APPROVED:  # manual: the service desk hands it over
        request_services.request_take(request_id=req.pk, user=org.fulfiller.user)
        request_services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    return req


@pytest.fixture
def leaver(org, vpn, place_order, provisioning_directory, django_capture_on_commit_callbacks):
    """Bob holds the VPN (automated), a token (manual access) and got a notebook (collected
    when he leaves) and a headset (not collected); his phone order is still waiting."""
    org.manager.user.groups.add(org.service_desk)  # a member who is not the fulfiller too
    item, group = vpn
    bob_dn = add_person(provisioning_directory, org.bob, departmentNumber=org.department.code)
    add_person(provisioning_directory, org.alice, departmentNumber=org.department.code)
    add_person(provisioning_directory, org.manager, departmentNumber=org.department.code)
    sync_people(full=True)
    desk = org.service_desk
    notebook = CatalogueItemFactory(
        name="Notebook", slug="nb", service_owner=desk, grants_access=False,
        collect_on_leaving=True,
    )  # fmt: skip
    headset = CatalogueItemFactory(name="Headset", slug="hs", service_owner=desk,
                                   grants_access=False)  # fmt: skip
    token = CatalogueItemFactory(name="Token", slug="token", service_owner=desk)
    phone = CatalogueItemFactory(name="Diensthandy", slug="phone", service_owner=desk)
    callbacks = django_capture_on_commit_callbacks
    held = {
        "vpn": deliver(item, org, org.bob, place_order, callbacks),
        "notebook": deliver(notebook, org, org.bob, place_order, callbacks),
        "headset": deliver(headset, org, org.bob, place_order, callbacks),
        "token": deliver(token, org, org.bob, place_order, callbacks),
        "alice_notebook": deliver(notebook, org, org.alice, place_order, callbacks),
    }
    waiting = place_order(phone, org.alice.user, beneficiary=org.bob)
    assert bob_dn.lower() in members(provisioning_directory, group)
    return held, waiting, bob_dn, group


def test_a_leaver_gets_collect_and_remove_tasks_and_loses_automated_access(
    org, leaver, provisioning_directory, client, django_capture_on_commit_callbacks
):
    held, waiting, bob_dn, group = leaver
    with django_capture_on_commit_callbacks(execute=True):
        ldapmodify(
            provisioning_directory,
            f"dn: {bob_dn}\nchangetype: modify\n"
            "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
        )
        run = sync_people(full=True)
    assert run.counts["leavers"] == 1 and run.counts["withdrawn"] == 1
    assert run.counts["tasks"] == 2
    # Automated access: removed from the directory by the revoke jobs.
    assert bob_dn.lower() not in members(provisioning_directory, group)
    vpn = Entitlement.objects.get(request=held["vpn"])
    assert vpn.state == EntitlementState.REVOKED
    # Manual access and the device: one task each, for the group that delivered them.
    tasks = {t.request_id: t for t in FulfilmentTask.objects.all()}
    assert {(t.request_id, t.kind) for t in tasks.values()} == {
        (held["token"].pk, K.REMOVE_ACCESS),
        (held["notebook"].pk, K.COLLECT),
    }
    assert all(
        (t.person, t.fulfilment_group, t.state) == (org.bob, org.service_desk, "open")
        for t in tasks.values()
    )
    assert "disabled in the directory" in tasks[held["notebook"].pk].reason
    waiting.refresh_from_db()
    assert waiting.state == RequestState.CANCELLED
    # The group is told: a mail to each member with an address (the manager's entry has
    # none), an entry in each member's notifications.
    mails = OutgoingMail.objects.filter(kind="task.opened")
    assert [m.recipient_id for m in mails] == [org.fulfiller.user.pk] * 2
    inbox = Notification.objects.filter(kind="task.opened", recipient=org.manager.user)
    assert inbox.count() == 2 and all(n.url == "/antraege/bearbeitung/#tasks" for n in inbox)
    # A second run opens nothing again.
    assert sync_people(full=True).counts["tasks"] == 0
    assert FulfilmentTask.objects.count() == 2

    # The queue lists them; the fulfiller marks the notebook collected.
    client.force_login(org.fulfiller.user)
    queue = client.get(reverse("requests:queue")).content.decode()
    assert "Collect Notebook" in queue and "Remove Token by hand" in queue
    collect = tasks[held["notebook"].pk]
    done_url = reverse("requests:task_done", args=[collect.pk])
    assert f'action="{done_url}"' in queue
    response = client.post(done_url, {"note": "Inventar 4711 zurück"})
    assert response.status_code == 302
    collect.refresh_from_db()
    assert (collect.state, collect.done_by, collect.note) == (
        "done", org.fulfiller.user, "Inventar 4711 zurück"
    )  # fmt: skip
    queue = client.get(reverse("requests:queue")).content.decode()
    assert "Collect Notebook" not in queue and "Remove Token by hand" in queue
    # Twice: told, nothing changes; an unknown task: 404; GET: not allowed.
    again = client.post(done_url, {"note": "nochmal"}, follow=True)
    assert "done already" in again.content.decode()
    collect.refresh_from_db()
    assert collect.note == "Inventar 4711 zurück"
    assert client.post(reverse("requests:task_done", args=[999999])).status_code == 404
    assert client.get(done_url).status_code == 405
    # Outside the group: neither listed nor allowed to close it.
    client.force_login(org.outsider.user)
    assert "Remove Token by hand" not in client.get(reverse("requests:queue")).content.decode()
    remove = tasks[held["token"].pk]
    refused = client.post(reverse("requests:task_done", args=[remove.pk]))
    assert refused.status_code == 403
    remove.refresh_from_db()
    assert remove.state == "open"
    # IT administration sees and closes any.
    client.force_login(org.admin.user)
    assert "Remove Token by hand" in client.get(reverse("requests:queue")).content.decode()
    long_note = client.post(reverse("requests:task_done", args=[remove.pk]), {"note": "x" * 501})
    assert long_note.status_code == 302
    remove.refresh_from_db()
    assert remove.state == "open"
    client.post(reverse("requests:task_done", args=[remove.pk]), {"note": "Token gesperrt"})
    remove.refresh_from_db()
    assert remove.state == "done" and remove.done_by == org.admin.user


def test_revoking_manual_access_by_hand_opens_a_task_and_automated_access_none(
    org, leaver, django_capture_on_commit_callbacks
):
    """Not only leavers: whoever revokes a manual service leaves work for its group."""
    from provisioning import services

    held, _waiting, _bob_dn, _group = leaver
    token = Entitlement.objects.get(request=held["token"])
    services.entitlement_revoke(entitlement_id=token.pk, user=org.manager.user, reason="Wechsel")
    with django_capture_on_commit_callbacks(execute=True):
        vpn = Entitlement.objects.get(request=held["vpn"])
        services.entitlement_revoke(entitlement_id=vpn.pk, user=org.manager.user, reason="x")
    assert list(FulfilmentTask.objects.values_list("request_id", "kind", "reason")) == [
        (held["token"].pk, K.REMOVE_ACCESS, "Wechsel")
    ]


def test_queue_queries_do_not_grow_with_tasks(org, client, manual_item, place_order,
                                              django_assert_max_num_queries):  # fmt: skip
    def tasks(count):
        for _n in range(count):
            person = EmployeeFactory(department=org.department, manager=org.manager)
            req = place_order(manual_item, org.alice.user, beneficiary=person)
            request_services.task_open(request_id=req.pk, kind=K.COLLECT, reason="weg")

    client.force_login(org.fulfiller.user)
    tasks(2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(reverse("requests:queue"))
    with CaptureQueriesContext(connection) as few:
        page = client.get(reverse("requests:queue"))
    assert page.content.decode().count("Collect Notebook") == 2
    tasks(60)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("requests:queue"))
    assert page.content.decode().count("Collect Notebook") == 50
