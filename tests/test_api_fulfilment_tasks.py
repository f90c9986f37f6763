"""Fulfilment tasks over the API (issue 15): the queue page's "collect the notebook" and
"remove by hand" tasks, listed and retrieved by IT admins and the members of the task's
group only, filtered by state, kind and group, and marked done with a note through the same
service as the page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests_app import services as request_services
from requests_app.models import FulfilmentTask
from tests.api_support import serialised_rows, token_client
from tests.factories import CatalogueItemFactory, GroupFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db

URL = "/api/v1/fulfilment-tasks/"


def delivered(org, item, beneficiary):
    req = request_services.request_create(
        requester=org.alice.user, item=item, item_version=item.version,
        beneficiary=beneficiary, cost_centre=org.cost_centre, answers={},
    )  # fmt: skip
    request_services.request_take(request_id=req.pk, user=org.fulfiller.user)
    request_services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    return req


@pytest.fixture
def tasks(org):
    """Two tasks for the service desk (Bob's notebook to collect, his token to remove by
    hand) and one for another group (the phone desk)."""
    phones = GroupFactory(name="Telefonie")
    notebook = make_item(org.service_desk, name="Notebook", slug="nb", grants_access=False)
    token = make_item(org.service_desk, name="Token", slug="token")
    phone = make_item(phones, name="Diensthandy", slug="phone", grants_access=False)
    phones.user_set.add(org.fulfiller.user)  # to deliver it; removed again below
    made = {
        "notebook": request_services.task_open(
            request_id=delivered(org, notebook, org.bob).pk, kind="collect", reason="Austritt"
        ),
        "token": request_services.task_open(
            request_id=delivered(org, token, org.bob).pk, kind="remove_access", reason="Austritt"
        ),
        "phone": request_services.task_open(
            request_id=delivered(org, phone, org.bob).pk, kind="collect", reason="Austritt"
        ),
    }
    phones.user_set.remove(org.fulfiller.user)
    return made


def ids(response):
    assert response.status_code == 200, response.content[:300]
    return [row["id"] for row in response.json()["results"]]


def test_members_of_the_group_and_it_admins_see_the_tasks(org, tasks):
    desk = token_client(org.fulfiller.user)
    admin = token_client(org.admin.user)
    alice = token_client(org.alice.user)
    mine = [tasks["notebook"].pk, tasks["token"].pk]
    assert ids(desk.get(URL)) == mine
    assert ids(admin.get(URL)) == [*mine, tasks["phone"].pk]
    assert ids(alice.get(URL)) == []
    row = desk.get(f"{URL}{tasks['notebook'].pk}/").json()
    assert row["kind"] == "collect" and row["state"] == "open"
    assert row["item_name"] == "Notebook" and row["fulfilment_group"] == "Service Desk"
    assert row["person"]["uid"] == org.bob.personnel_number and row["reason"] == "Austritt"
    assert desk.get(f"{URL}{tasks['phone'].pk}/").status_code == 404  # another group's
    assert alice.get(f"{URL}{tasks['notebook'].pk}/").status_code == 404
    assert token_client(org.admin.user).get(f"{URL}{tasks['phone'].pk}/").status_code == 200


def test_filters_by_state_kind_and_group(org, tasks):
    admin = token_client(org.admin.user)
    assert ids(admin.get(URL, {"group": "Telefonie"})) == [tasks["phone"].pk]
    assert ids(admin.get(URL, {"kind": "remove_access"})) == [tasks["token"].pk]
    assert ids(admin.get(URL, {"state": "done"})) == []
    request_services.task_complete(task_id=tasks["phone"].pk, user=org.admin.user)
    assert ids(admin.get(URL, {"state": "done"})) == [tasks["phone"].pk]
    assert ids(admin.get(URL, {"state": "open", "group": "Service Desk"})) == [
        tasks["notebook"].pk,
        tasks["token"].pk,
    ]
    assert admin.get(URL, {"state": "vielleicht"}).status_code == 400
    assert ids(admin.get(URL, {"group": "Niemand"})) == []


def test_marking_done_with_a_note_as_on_the_page(org, tasks):
    desk = token_client(org.fulfiller.user)
    url = f"{URL}{tasks['notebook'].pk}/done/"
    response = desk.post(url, {"note": "Am Empfang abgegeben."}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "done" and body["note"] == "Am Empfang abgegeben."
    assert body["done_by"]["username"] == org.fulfiller.user.username and body["done_at"]
    task = FulfilmentTask.objects.get(pk=tasks["notebook"].pk)
    assert (task.state, task.done_by, task.note) == ("done", org.fulfiller.user, body["note"])
    # Twice: a conflict, not a second change.
    again = desk.post(url, {"note": "nochmal"}, format="json")
    assert again.status_code == 409
    assert FulfilmentTask.objects.get(pk=task.pk).note == "Am Empfang abgegeben."
    # Bad bodies and others' tasks.
    token_url = f"{URL}{tasks['token'].pk}/done/"
    assert desk.post(token_url, {"note": "x" * 501}, format="json").status_code == 400
    assert desk.post(token_url, {"colour": "red"}, format="json").status_code == 400
    assert desk.post(f"{URL}{tasks['phone'].pk}/done/", {}, format="json").status_code == 404
    assert token_client(org.alice.user).post(token_url, {}, format="json").status_code == 404
    assert FulfilmentTask.objects.get(pk=tasks["token"].pk).state == "open"
    assert token_client(org.admin.user).post(token_url, {}, format="json").status_code == 200


def test_the_list_costs_the_same_queries_for_more_tasks(org, tasks):
    admin = token_client(org.admin.user)
    admin.get(URL)  # the token's first use is recorded once

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert admin.get(URL).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for n in range(4):
        item = CatalogueItemFactory(
            name=f"Gerät {n}", slug=f"g{n}", service_owner=org.service_desk, grants_access=False
        )
        request_services.task_open(request_id=delivered(org, item, org.bob).pk, kind="collect")
    assert queries() == few


def test_list_rows_read_as_values_have_the_serializers_body(org, tasks):
    """The list builds its bodies from values (FulfilmentTaskSerializer.rows): each row is
    what the serializer makes of the task, on the first and deeper pages: done by someone
    without names and open, a person without names, an item renamed since the order and
    one whose order kept no name."""
    from api.serializers import FulfilmentTaskSerializer
    from requests_app.models import ServiceRequest

    request_services.task_complete(
        task_id=tasks["phone"].pk, user=org.fulfiller.user, note="Abgegeben <&>"
    )
    org.fulfiller.user.first_name = org.fulfiller.user.last_name = ""
    org.fulfiller.user.save()
    org.bob.user.first_name = ""
    org.bob.user.save()
    notebook = tasks["notebook"].request
    notebook.item.name = "Notebook (neu)"
    notebook.item.save()
    token = tasks["token"].request
    ServiceRequest.objects.filter(pk=token.pk).update(item_snapshot={"slug": "token"})
    seen = serialised_rows(token_client(org.admin.user), URL, FulfilmentTaskSerializer, 3)
    assert [row["id"] for row in seen] == [task.pk for task in tasks.values()]
    assert [row["item_name"] for row in seen] == ["Notebook", "Token", "Diensthandy"]
    assert seen[2]["done_by"] == {"username": org.fulfiller.user.username,
                                  "name": org.fulfiller.user.username}  # fmt: skip
