"""/metrics gauges kept incrementally equal the raw counts after a mix of changes."""

import datetime
import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.utils import timezone

from metrics import gauges
from metrics.collectors import DatabaseCollector
from metrics.models import GaugeDelta
from metrics.tasks import compact_gauges
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import OPEN_STATES, RequestState
from requests_app.models import ServiceRequest
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


@pytest.mark.django_db
def test_scrape_queries_do_not_depend_on_the_data(org, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        list(DatabaseCollector().collect())
