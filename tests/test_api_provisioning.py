"""Entitlements, provisioning jobs and controlling reports over the API."""

import pytest
from django.utils import timezone

from provisioning.choices import EntitlementState, JobState
from provisioning.models import ProvisioningJob
from tests.api_support import serialised_rows
from tests.factories import EmployeeFactory

pytestmark = pytest.mark.django_db


def test_entitlements_of_holder_and_manager_and_revocation(world, api_as):
    org = world.org
    alice, manager, bob = api_as(org.alice), api_as(org.manager), api_as(org.bob)
    own = alice.get("/api/v1/entitlements/").json()
    assert [(e["id"], e["item"]["slug"], e["state"]) for e in own["results"]] == [
        (world.entitlement.pk, "maus", EntitlementState.ACTIVE)
    ]
    assert (
        manager.get("/api/v1/entitlements/", {"q": org.alice.personnel_number}).json()["count"] == 1
    )
    assert bob.get("/api/v1/entitlements/").json()["count"] == 0
    assert bob.post(f"/api/v1/entitlements/{world.entitlement.pk}/revoke/", {},
                    format="json").status_code == 404  # fmt: skip
    bad = alice.post(f"/api/v1/entitlements/{world.entitlement.pk}/revoke/",
                     {"reason": "x" * 2001}, format="json")  # fmt: skip
    assert bad.status_code == 400 and "reason" in bad.json()
    revoked = alice.post(f"/api/v1/entitlements/{world.entitlement.pk}/revoke/",
                         {"reason": "Brauche ich nicht mehr."}, format="json")  # fmt: skip
    assert revoked.status_code == 200
    # No directory actions to undo: revoked at once, as on the page.
    assert revoked.json()["state"] == EntitlementState.REVOKED
    assert revoked.json()["revoke_reason"] == "Brauche ich nicht mehr."
    again = alice.post(f"/api/v1/entitlements/{world.entitlement.pk}/revoke/", {}, format="json")
    assert again.status_code == 409
    assert alice.get("/api/v1/entitlements/", {"state": "active"}).json()["count"] == 0
    assert alice.get("/api/v1/entitlements/", {"state": "bogus"}).status_code == 400


def test_jobs_for_it_admins_list_filter_detail_retry(world, api_as):
    admin = api_as(world.org.admin)
    ProvisioningJob.objects.filter(pk=world.job.pk).update(
        state=JobState.FAILED, last_error="no such group"
    )
    listed = admin.get("/api/v1/provisioning-jobs/", {"state": "failed"}).json()
    assert [j["id"] for j in listed["results"]] == [world.job.pk]
    assert listed["results"][0]["last_error"] == "no such group"
    assert "log" not in listed["results"][0]
    assert admin.get("/api/v1/provisioning-jobs/", {"q": "nothing-like-it"}).json()["count"] == 0
    detail = admin.get(f"/api/v1/provisioning-jobs/{world.job.pk}/").json()
    assert detail["target_dn"] == "cn=vpn,ou=groups,dc=example"
    retried = admin.post(f"/api/v1/provisioning-jobs/{world.job.pk}/retry/", {}, format="json")
    assert retried.status_code == 200
    assert retried.json()["state"] == JobState.PENDING
    assert "retry requested by admin" in retried.json()["log"]
    late = admin.post(f"/api/v1/provisioning-jobs/{world.job.pk}/retry/", {}, format="json")
    assert late.status_code == 409
    assert late.json() == {"detail": "Only failed jobs can be retried."}
    assert admin.get("/api/v1/provisioning-jobs/99999999/").status_code == 404
    extra = admin.post(f"/api/v1/provisioning-jobs/{world.job.pk}/retry/", {"force": True},
                       format="json")  # fmt: skip
    assert extra.status_code == 400


@pytest.fixture
def controller(world):
    return EmployeeFactory(
        department=world.org.department,
        user__username="controller",
        user__groups=[world.org.controlling],
    )


def this_month():
    return timezone.localdate().replace(day=1).isoformat()


def test_costs_per_cost_centre(world, api_as, controller):
    """One fulfilled order: Maus, 15.00 once, 0.00 a month, with an active entitlement."""
    api = api_as(controller)
    month = this_month()[:7]
    rows = api.get("/api/v1/controlling/costs/", {"period_from": month, "period_to": month})
    assert rows.status_code == 200, rows.json()
    assert rows.json()["results"] == [
        {
            "month": this_month(),
            "cost_centre_code": "KS1000",
            "cost_centre_name": "Hauptamt",
            "fulfilled": 1,
            "once": "15.00",
            "entitlements": 1,
            "monthly": "0.00",
            "total": "15.00",
        }
    ]
    other = api.get("/api/v1/controlling/costs/", {"cost_centre": world.org.outsider.department.
                                                   cost_centre_id}).json()  # fmt: skip
    assert other["count"] == 0


def test_usage_per_service_with_breakdown_and_ordering(world, api_as, controller):
    """Submitted this month: Monitor once (Alice), Maus twice (Alice, Bob); one Maus held."""
    api = api_as(controller)
    month = this_month()
    usage = api.get("/api/v1/controlling/usage/", {"period_from": month[:7]}).json()
    assert [(r["month"], r["service"], r["group"], r["orders"], r["active"])
            for r in usage["results"]] == [
        (month, "Maus", "", 2, 1),
        (month, "Monitor", "", 1, 0),
    ]  # fmt: skip
    by_department = api.get(
        "/api/v1/controlling/usage/",
        {"period_from": month[:7], "breakdown": "department", "ordering": "-orders"},
    ).json()["results"]
    department = world.org.department
    assert [(r["service"], r["group"], r["orders"]) for r in by_department] == [
        ("Maus", f"{department.code} {department.name}", 2),
        ("Monitor", f"{department.code} {department.name}", 1),
    ]
    paged = api.get("/api/v1/controlling/usage/", {"period_from": month[:7], "limit": 1}).json()
    assert paged["count"] == 2 and len(paged["results"]) == 1 and paged["next"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period_from": "abc"}, "period_from"),
        ({"period_to": "2026-13"}, "period_to"),
        ({"breakdown": "planet"}, "breakdown"),
        ({"department": "x"}, "department"),
        ({"cost_centre": "999999"}, "cost_centre"),
        ({"ordering": "price"}, "ordering"),
    ],
)
def test_report_parameters_are_checked(world, api_as, controller, params, field):
    response = api_as(controller).get("/api/v1/controlling/usage/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_reports_refuse_employees(world, api_as):
    refused = api_as(world.org.alice).get("/api/v1/controlling/costs/")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Only IT controlling and IT administration see this page."}


def test_lead_times_and_satisfaction_reports(world, api_as, controller):
    """Maus, fulfilled by hand without approval steps; Alice rates it 4 of 5."""
    from requests_app import services

    services.request_rate(request_id=world.fulfilled.pk, user=world.org.alice.user, score=4)
    api = api_as(controller)
    month = this_month()[:7]
    rows = api.get(
        "/api/v1/controlling/lead-times/",
        {"period_from": month, "period_to": month, "ordering": "-approval_p50_seconds"},
    )
    assert rows.status_code == 200, rows.json()
    maus, total = rows.json()["results"]  # no approval steps: the empty figure sorts last
    assert (maus["service"], maus["fulfilled"], maus["with_approval"]) == ("Maus", 1, 0)
    assert maus["approval_p50_seconds"] is None
    assert 0 <= maus["total_p50_seconds"] == maus["total_p90_seconds"] < 3600
    assert (maus["automated"], maus["automation_rate"]) == (0, 0.0)
    assert total["item_id"] is None and total["fulfilled"] == 1

    ratings = api.get("/api/v1/controlling/satisfaction/", {"period_from": month}).json()
    maus = next(r for r in ratings["results"] if r["service"] == "Maus")
    assert (maus["rated"], maus["average"], maus["score_4"]) == (1, "4.00", 1)
    refused = api_as(world.org.alice).get("/api/v1/controlling/lead-times/")
    assert refused.status_code == 403


def test_entitlement_list_rows_read_as_values_have_the_serializers_body(world, api_as):
    """The entitlements list builds its bodies from values (EntitlementSerializer.rows):
    each row is what the serializer makes of the entitlement, on the first and a deeper
    page, with a holder without names, an expiry and a revocation."""
    from api.serializers import EntitlementSerializer
    from provisioning.models import Entitlement

    org = world.org
    base = world.entitlement
    user = org.alice.user
    user.first_name = user.last_name = ""
    user.save()
    base.expires_on = timezone.localdate()
    base.revoked_at = timezone.now()
    base.revoke_reason = "Weg <&>"
    base.review_note = "Abteilung gewechselt"
    base.save()
    Entitlement.objects.create(holder=org.bob, item=world.item, request=world.pending)
    seen = serialised_rows(api_as(org.admin), "/api/v1/entitlements/", EntitlementSerializer, 2)
    assert any(row["holder"]["name"] == user.username for row in seen)


def test_job_list_rows_read_as_values_have_the_serializers_body(world, api_as):
    """The jobs list builds its bodies from the job's own columns read as values
    (JobSerializer.rows): each row is what the serializer makes of the job, on the first
    and a deeper page, with and without an entitlement, attributes and times."""
    from api.serializers import JobSerializer

    org = world.org
    started = timezone.now()
    ProvisioningJob.objects.create(
        request=world.fulfilled,
        entitlement=world.entitlement,
        direction="revoke",
        position=2,
        kind="remove_from_group",
        user_uid=org.alice.personnel_number,
        target_dn="cn=maus <&>,ou=groups,dc=example",
        attributes={"mail": "a@example.org", "n": [1, 2]},
        dialect="ad",
        attempts=3,
        last_error="timeout",
        started_at=started,
        finished_at=started,
    )
    seen = serialised_rows(api_as(org.admin), "/api/v1/provisioning-jobs/", JobSerializer, 2)
    assert {row["entitlement"] for row in seen} == {None, world.entitlement.pk}
