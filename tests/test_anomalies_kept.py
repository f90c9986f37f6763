"""The anomalies page's months, kept per process: equal to ``demand_anomalies`` computed now,
and recomputed when a month it reads changes or a service is renamed."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics.controlling import rollup, selectors
from metrics.controlling.rollup import ALL, Scope
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import CatalogueItemFactory
from tests.test_controlling import make_request


@pytest.fixture
def recent_demand(org):
    """VPN: 10 orders a month for thirty months up to the last complete one, 30 in the month
    before it; Drucker: 3 a month."""
    vpn = CatalogueItemFactory(name="VPN")
    printer = CatalogueItemFactory(name="Drucker")
    last = selectors.last_complete_month()
    rows = []
    for back in range(30):
        month = rollup.add_months(last, -back)
        starts = rollup.month_bounds(month)[0]
        for item, count in ((vpn, 30 if back == 1 else 10), (printer, 3)):
            rows += [
                make_request(item, org.alice, org.cost_centre, price_once="0",
                             price_monthly="0", state=RequestState.SUBMITTED,
                             submitted=starts + datetime.timedelta(hours=3 + n))
                for n in range(count)
            ]  # fmt: skip
    ServiceRequest.objects.bulk_create(rows)
    return vpn, printer


def computed_now(scope=ALL, history_months=24):
    return selectors.demand_anomalies(
        scope, months=12, history_months=history_months, last=selectors.last_complete_month()
    )


@pytest.mark.django_db
def test_kept_anomalies_equal_the_computation_and_follow_changes(recent_demand):
    vpn, _printer = recent_demand
    selectors._KEPT_ANOMALIES.clear()
    # Nothing rolled up yet: computed live, not kept.
    assert selectors.kept_demand_anomalies(ALL) == computed_now()
    assert not selectors._KEPT_ANOMALIES
    rollup.refresh()
    expected = computed_now()
    assert any(row.service == "VPN" for row in expected)
    assert selectors.kept_demand_anomalies(ALL) == expected
    with CaptureQueriesContext(connection) as ctx:
        assert selectors.kept_demand_anomalies(ALL) == expected
    assert len(ctx.captured_queries) == 2  # the plan and the catalogue
    for scope, history in ((Scope(item_id=vpn.pk), 24), (ALL, 12)):
        assert selectors.kept_demand_anomalies(scope, history_months=history) == (
            computed_now(scope, history)
        )
    # A renamed service shows its new name.
    vpn.name = "VPN-Zugang"
    vpn.save()
    assert selectors.kept_demand_anomalies(ALL) == computed_now()
    assert any(row.service == "VPN-Zugang" for row in computed_now())
    # A back-dated order: its month is dirty and read live, then rolled up again.
    month = rollup.add_months(selectors.last_complete_month(), -1)
    ServiceRequest.objects.filter(item=vpn, submitted_at__gte=rollup.month_bounds(month)[0]).filter(
        submitted_at__lt=rollup.month_bounds(month)[1]
    ).delete()
    assert selectors.kept_demand_anomalies(ALL) == computed_now() != expected
    rollup.refresh()
    assert selectors.kept_demand_anomalies(ALL) == computed_now()


def forecast_now(scope=ALL, history_months=24):
    return selectors.demand_forecast(
        scope, history_months=history_months, last=selectors.last_complete_month()
    )


@pytest.mark.django_db
def test_kept_forecast_equals_the_computation_and_follows_changes(recent_demand):
    vpn, _printer = recent_demand
    selectors._KEPT_ANOMALIES.clear()
    assert selectors.kept_demand_forecast(ALL) == forecast_now()  # live: not kept
    assert not selectors._KEPT_ANOMALIES
    rollup.refresh()
    expected = forecast_now()
    assert [row.service for row in expected] == ["Drucker", "VPN"]
    assert selectors.kept_demand_forecast(ALL) == expected
    with CaptureQueriesContext(connection) as ctx:
        assert selectors.kept_demand_forecast(ALL) == expected
    assert len(ctx.captured_queries) == 2  # the plan and the catalogue
    # The anomalies of the same months are kept apart.
    assert selectors.kept_demand_anomalies(ALL) == computed_now()
    for scope, history in ((Scope(item_id=vpn.pk), 24), (ALL, 12), (ALL, 36)):
        assert selectors.kept_demand_forecast(scope, history_months=history) == (
            forecast_now(scope, history)
        )
    vpn.name = "VPN-Zugang"
    vpn.save()
    assert [row.service for row in selectors.kept_demand_forecast(ALL)] == ["Drucker", "VPN-Zugang"]
    # A back-dated change: read live while its month is dirty, then from the new roll-up.
    month = rollup.add_months(selectors.last_complete_month(), -1)
    ServiceRequest.objects.filter(item=vpn, submitted_at__gte=rollup.month_bounds(month)[0]).filter(
        submitted_at__lt=rollup.month_bounds(month)[1]
    ).delete()
    changed = forecast_now()
    assert [row.history for row in changed] != [row.history for row in expected]
    assert selectors.kept_demand_forecast(ALL) == changed
    rollup.refresh()
    assert selectors.kept_demand_forecast(ALL) == forecast_now() == changed
