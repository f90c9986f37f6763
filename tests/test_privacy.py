"""The rights of the people in the data (issue 13): the Art. 15 access report (page and
JSON) for the data-protection officer, and the audit trail export (CSV, JSON) by period,
request or person."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from itportal import roles
from provisioning.models import Entitlement
from requests_app import services
from requests_app.models import RequestEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(org, group):
    return UserFactory(username="dsb", groups=[group(roles.DATA_PROTECTION)])


@pytest.fixture
def history(org, manual_item, place_order):
    """Alice's fulfilled and rated notebook, with its entitlement; Bob's open order."""
    done = place_order(manual_item, org.alice.user, answers={"room": "A 1.23"})
    services.request_approve(request_id=done.pk, user=org.manager.user)
    services.request_take(request_id=done.pk, user=org.fulfiller.user)
    services.request_complete(request_id=done.pk, user=org.fulfiller.user, note="ok")
    services.request_rate(request_id=done.pk, user=org.alice.user, score=5, comment="Sehr schnell")
    assert Entitlement.objects.filter(holder=org.alice, request=done).exists()  # fulfilment left it
    other = place_order(manual_item, org.bob.user)
    return done, other


def test_only_the_officer_sees_the_pages(client, org, officer):
    client.force_login(org.admin.user)
    assert client.get("/datenschutz/auskunft/").status_code == 403
    assert client.get("/datenschutz/protokoll/").status_code == 403
    client.force_login(officer)
    assert client.get("/datenschutz/auskunft/").status_code == 200
    assert client.get("/datenschutz/protokoll/").status_code == 200
    assert 'href="/datenschutz/auskunft/"' in client.get("/").content.decode()


def test_access_report_lists_requests_entitlements_and_ratings(client, org, officer, history):
    done, _other = history
    client.force_login(officer)
    page = client.get("/datenschutz/auskunft/", {"person": org.alice.user.username.upper()})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Sehr schnell" in text and "A 1.23" in text and org.alice.personnel_number in text

    response = client.get(
        "/datenschutz/auskunft/", {"person": org.alice.personnel_number, "format": "json"}
    )
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["person"]["personnel_number"] == org.alice.personnel_number
    assert [r["id"] for r in data["requests"]] == [done.pk]  # not Bob's
    assert data["requests"][0]["answers"] == {"room": "A 1.23"}
    assert [e["request"] for e in data["entitlements"]] == [done.pk]
    assert data["ratings"][0]["comment"] == "Sehr schnell"
    assert {r["request"] for r in data["audit_records"]} == {done.pk}
    # The manager's report shows the decision he made.
    manager = client.get("/datenschutz/auskunft/", {"person": "manager", "format": "json"})
    assert json.loads(manager.content)["decisions"][0]["request"] == done.pk


def test_access_report_for_an_unknown_person_says_so(client, officer):
    client.force_login(officer)
    response = client.get("/datenschutz/auskunft/", {"person": "niemand"})
    assert response.status_code == 400
    assert "Nobody with this personnel number" in response.content.decode()


def test_audit_export_by_request_person_and_period(client, org, officer, history):
    done, other = history
    client.force_login(officer)
    response = client.get("/datenschutz/protokoll/", {"request": done.pk, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )
    assert {row["request"] for row in rows} == {str(done.pk)}
    assert len(rows) == RequestEvent.objects.filter(request=done).count() >= 4
    assert {"alice", "manager", "desk"} <= {row["actor"] for row in rows}

    bob = client.get("/datenschutz/protokoll/", {"person": "bob", "format": "json"})
    assert {row["request"] for row in json.loads(bob.content)} == {other.pk}

    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    future = client.get("/datenschutz/protokoll/", {"start": tomorrow, "format": "json"})
    assert json.loads(future.content) == []
    today = timezone.localdate().isoformat()
    everything = client.get(
        "/datenschutz/protokoll/", {"start": today, "end": today, "format": "json"}
    )
    assert len(json.loads(everything.content)) == RequestEvent.objects.count()


def test_audit_export_refuses_bad_filters(client, officer):
    client.force_login(officer)
    bad = client.get(
        "/datenschutz/protokoll/", {"start": "2026-02-01", "end": "2026-01-01", "format": "csv"}
    )
    assert bad.status_code == 400 and "ends before it starts" in bad.content.decode()
    assert (
        client.get("/datenschutz/protokoll/", {"request": "abc", "format": "csv"}).status_code
        == 400
    )
    assert (
        client.get("/datenschutz/protokoll/", {"person": "niemand", "format": "csv"}).status_code
        == 400
    )
