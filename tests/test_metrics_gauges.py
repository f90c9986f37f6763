"""/metrics gauges kept incrementally equal the raw counts after a mix of changes."""

import datetime
import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.db.models import Max
from django.utils import timezone

from metrics import gauges
from metrics.collectors import DatabaseCollector
from metrics.models import GaugeDelta
from metrics.tasks import compact_gauges
from notifications.choices import MailState
from notifications.models import OutgoingMail
from notifications.selectors import GAUGE_STATES
from provisioning import services as provisioning_services
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app.choices import OPEN_STATES, RequestState
from requests_app.models import ServiceRequest
from runs.models import Run, RunState
from runs.selectors import last_successes
from tests.factories import CatalogueItemFactory, request_row


def scraped() -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in DatabaseCollector().collect()
        for sample in family.samples
        if sample.name.startswith(("itportal_entitlements_active", "itportal_requests_open"))
    }


def raw() -> dict:
    now = timezone.now()
    expected = {}
    active = Counter(
        Entitlement.objects.filter(state=EntitlementState.ACTIVE).values_list(
            "item__slug", flat=True
        )
    )
    for slug, count in active.items():
        expected[("itportal_entitlements_active", (("item", slug),))] = count
    for state in OPEN_STATES:
        rows = ServiceRequest.objects.filter(state=state)
        expected[("itportal_requests_open", (("state", state.value),))] = rows.count()
        oldest = rows.exclude(submitted_at=None).order_by("submitted_at").first()
        age = max((now - oldest.submitted_at).total_seconds(), 0) if oldest else 0.0
        expected[("itportal_requests_open_oldest_age_seconds", (("state", state.value),))] = age
    return expected


def assert_gauges_equal_raw():
    got, expected = scraped(), raw()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key[0].endswith("age_seconds"):
            assert got[key] == pytest.approx(value, abs=5)  # read a moment apart
        else:
            assert got[key] == value, key


@pytest.mark.django_db
def test_gauges_equal_raw_counts_after_a_mix_of_changes(org, manual_item, place_order):
    vpn = CatalogueItemFactory(name="VPN", slug="vpn")
    mail = CatalogueItemFactory(name="Postfach", slug="postfach")
    day = timezone.now() - datetime.timedelta(days=40)
    rows = ServiceRequest.objects.bulk_create(
        [
            request_row(
                [vpn, mail][k % 2],
                [org.alice, org.bob][k % 2],
                submitted=day + datetime.timedelta(hours=k),
                approved=None,
                closed=None,
                state=[*OPEN_STATES, RequestState.FULFILLED, RequestState.REJECTED][k % 7],
            )
            for k in range(40)
        ]
    )
    assert_gauges_equal_raw()
    fulfilled = [r for r in rows if r.state == RequestState.FULFILLED]
    Entitlement.objects.bulk_create(
        [Entitlement(holder=r.beneficiary, item=r.item, request=r) for r in fulfilled]
    )
    assert_gauges_equal_raw()
    # Through the workflow: an order placed (waiting for the manager).
    place_order(manual_item, org.alice.user)
    assert_gauges_equal_raw()
    # Bulk changes, a revocation, a moved entitlement, a deletion, a compaction in between.
    ServiceRequest.objects.filter(state=RequestState.SUBMITTED).update(state=RequestState.CANCELLED)
    first, second, third = Entitlement.objects.order_by("pk")[:3]
    Entitlement.objects.filter(pk=first.pk).update(
        state=EntitlementState.REVOKED, revoked_at=timezone.now()
    )
    assert_gauges_equal_raw()
    assert compact_gauges.apply().get()["removed"] > 0
    assert GaugeDelta.objects.count() == len(gauges.values(gauges.ENTITLEMENTS_ACTIVE)) + len(
        gauges.values(gauges.REQUESTS_OPEN)
    )
    assert_gauges_equal_raw()
    Entitlement.objects.filter(pk=second.pk).update(item=manual_item)
    third.delete()
    ServiceRequest.objects.filter(state=RequestState.APPROVED).delete()
    assert_gauges_equal_raw()
    # A repair from scratch gives the same figures.
    before = scraped()
    call_command("reset_gauges", stdout=io.StringIO())
    assert scraped() == pytest.approx(before, abs=5)
    assert GaugeDelta.objects.count() == len(gauges.values(gauges.ENTITLEMENTS_ACTIVE)) + len(
        gauges.values(gauges.REQUESTS_OPEN)
    )


def stuck_scraped() -> dict:
    families = {family.name: family for family in DatabaseCollector().collect()}
    mails = {s.labels["state"]: s.value for s in families["itportal_mails_unsent"].samples}
    return {"failed_jobs": families["itportal_provisioning_jobs_failed"].samples[0].value, **mails}


def stuck_raw() -> dict:
    counts = Counter(OutgoingMail.objects.values_list("state", flat=True))
    return {
        "failed_jobs": ProvisioningJob.objects.filter(state=JobState.FAILED).count(),
        **{state.value: counts[state] for state in GAUGE_STATES},
    }


def assert_stuck_equal_raw():
    assert stuck_scraped() == stuck_raw()


@pytest.mark.django_db
def test_failed_jobs_and_stuck_mails_equal_raw_counts_after_changes(org, manual_item, place_order):
    request = place_order(manual_item, org.alice.user)
    states = [JobState.PENDING, JobState.FAILED, JobState.SUCCEEDED, JobState.RUNNING]
    jobs = ProvisioningJob.objects.bulk_create(
        [
            ProvisioningJob(
                request=request,
                direction=Direction.GRANT,
                kind=ActionKind.ADD_TO_GROUP,
                user_uid="alice",
                target_dn=f"cn=g{k},ou=groups,dc=example",
                dialect="openldap",
                position=k,
                state=states[k % 4],
            )
            for k in range(12)
        ]
    )
    mail_states = [MailState.PENDING, MailState.FAILED, MailState.UNCERTAIN, MailState.SENT]
    mails = OutgoingMail.objects.bulk_create(
        [
            OutgoingMail(
                kind="request.approved",
                recipient=[org.alice.user, org.bob.user][k % 2],
                to="x@example.org",
                state=mail_states[k % 4],
            )
            for k in range(10)
        ]
    )
    assert stuck_raw()["failed_jobs"] == 3
    assert_stuck_equal_raw()
    # A bulk failure, a manual retry through the service, one done by hand, a deletion.
    ProvisioningJob.objects.filter(state=JobState.PENDING).update(state=JobState.FAILED)
    assert_stuck_equal_raw()
    failed = list(ProvisioningJob.objects.filter(state=JobState.FAILED).order_by("pk"))
    provisioning_services.job_retry(job_id=failed[0].pk, user=org.admin.user)
    provisioning_services.job_mark_done(job_id=failed[1].pk, user=org.admin.user, note="by hand")
    ProvisioningJob.objects.filter(pk=failed[2].pk).delete()
    assert_stuck_equal_raw()
    # Mails: failed and uncertain ones back into the queue, one failing, a recipient leaving.
    OutgoingMail.objects.filter(state=MailState.UNCERTAIN).update(state=MailState.PENDING)
    OutgoingMail.objects.filter(pk=mails[0].pk).update(state=MailState.FAILED)
    assert_stuck_equal_raw()
    assert compact_gauges.apply().get()["removed"] > 0
    assert_stuck_equal_raw()
    org.bob.user.delete()  # their mails go with them
    ProvisioningJob.objects.filter(pk__in=[j.pk for j in jobs[:6]]).update(state=JobState.FAILED)
    assert_stuck_equal_raw()
    before = stuck_scraped()
    call_command("reset_gauges", stdout=io.StringIO())
    assert stuck_scraped() == before == stuck_raw()
    assert before["failed_jobs"] > 0
    assert before[MailState.FAILED] > 0


@pytest.mark.django_db
def test_scrape_queries_do_not_depend_on_the_data(org, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        list(DatabaseCollector().collect())


@pytest.mark.django_db
def test_last_success_of_each_run_equals_the_grouped_maximum():
    start = timezone.now() - datetime.timedelta(days=30)
    Run.objects.bulk_create(
        [
            Run(
                name=["directory-sync", "retention", "webhooks-prune", "catalogue-import"][k % 4],
                state=[RunState.SUCCEEDED, RunState.FAILED, RunState.RUNNING][k % 3],
                started_at=start + datetime.timedelta(hours=k),
                updated_at=start + datetime.timedelta(hours=k),
                finished_at=None if k % 3 == 2 else start + datetime.timedelta(hours=k, minutes=5),
            )
            for k in range(40)
        ]
        # Succeeded, but without an end: not counted.
        + [Run(name="broken", state=RunState.SUCCEEDED, started_at=start, updated_at=start)]
    )
    grouped = dict(
        Run.objects.filter(state=RunState.SUCCEEDED, finished_at__isnull=False)
        .values_list("name")
        .annotate(last=Max("finished_at"))
    )
    assert len(grouped) == 4
    assert dict(last_successes()) == grouped
    families = {family.name: family for family in DatabaseCollector().collect()}
    scraped = families["itportal_run_last_success_timestamp_seconds"].samples
    assert {s.labels["run"]: s.value for s in scraped} == {
        name: last.timestamp() for name, last in grouped.items()
    }
