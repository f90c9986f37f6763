"""The approver never sees a server error for a decision that was saved.

The database goes away the moment the approval commits (every later query fails, as in
a PostgreSQL restart): what runs after the commit — waking workers, sending the mail,
reading the answer — is caught and logged, and the approver gets a normal answer. Real
commits (transaction=True); the outage is a query hook on the connection.
"""

import contextlib

import pytest
from django.db import OperationalError, connection, transaction
from django.urls import reverse

from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from requests_app.signals import request_approved
from tests.api_support import token_client

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_gone_after_the_approval():
    """From the approving transaction's commit on, every query of this thread fails."""
    gone = []

    def on_approval(sender, request_id, **kwargs):  # sent inside the approving transaction
        transaction.on_commit(lambda: gone.append(request_id))

    def refuse(execute, sql, params, many, context):
        if gone:
            raise OperationalError("terminating connection due to administrator command")
        return execute(sql, params, many, context)

    request_approved.connect(on_approval, dispatch_uid="test-database-gone")
    try:
        with connection.execute_wrapper(refuse):
            yield gone
    finally:
        request_approved.disconnect(dispatch_uid="test-database-gone")
        connection.close()  # the next test gets a fresh connection


def test_api_answers_saved_when_the_database_goes_after_the_commit(org, manual_item, place_order):
    service_request = place_order(manual_item, org.alice.user)
    client = token_client(org.manager.user)
    with database_gone_after_the_approval() as gone:
        response = client.post(f"/api/v1/requests/{service_request.pk}/approve/", {}, format="json")
    assert gone == [service_request.pk]
    assert response.status_code == 200, response.content
    assert response.json()["state"] == RequestState.APPROVED
    assert "Saved" in response.json()["detail"]
    assert ServiceRequest.objects.get(pk=service_request.pk).state == RequestState.APPROVED


def test_page_answers_saved_when_the_database_goes_after_the_commit(
    org, manual_item, place_order, client
):
    service_request = place_order(manual_item, org.alice.user)
    client.force_login(org.manager.user)
    assert client.get(service_request.get_absolute_url()).status_code == 200
    url = reverse("requests:action", args=[service_request.pk, "approve"])
    with database_gone_after_the_approval() as gone:
        response = client.post(url, {"state": service_request.state})
    assert gone == [service_request.pk]
    assert response.status_code == 302
    assert response.url == service_request.get_absolute_url()
    page = client.get(response.url)  # the database is back
    assert "You approved the request." in page.content.decode()
    assert ServiceRequest.objects.get(pk=service_request.pk).state == RequestState.APPROVED
