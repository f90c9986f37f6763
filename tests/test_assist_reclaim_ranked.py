"""Candidates to reclaim at scale: the ranking per holder and service (``ranked_candidates``)
equals the per-entitlement reference (``candidates_queryset``, correlated counts), in order,
signs and risk, for every limit; the page reads the stored first ones and says as of when."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from assist import reclaim
from assist.models import ReclaimCandidate, ReclaimRun
from assist.tasks import refresh_reclaim_candidates
from catalogue.models import Employee
from metrics.controlling.views import RECLAIM_SHOWN
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from tests.factories import CatalogueItemFactory, DepartmentFactory, EmployeeFactory, request_row


class Crowd:
    """Three departments of 3, 7 and 12 people (some left, some idle, some moved), priced,
    pooled and free services, several entitlements per holder and service."""

    def __init__(self, org, settings):
        rng = random.Random(11)
        now = timezone.now()
        long_ago = now - timedelta(days=settings.ASSIST_IDLE_DAYS + 3)
        self.items = [
            CatalogueItemFactory(name="Visio", price_monthly="9.00"),
            CatalogueItemFactory(name="Project", price_monthly="28.60"),
            CatalogueItemFactory(name="Adobe", price_monthly="9.00"),  # ties Visio's price
            CatalogueItemFactory(name="Pool", price_monthly="0", licence_pool_size=5),
            CatalogueItemFactory(name="Intranet", price_monthly="0"),  # never a candidate
        ]
        self.people = []
        for size in (3, 7, 12):
            department = DepartmentFactory(cost_centre=org.cost_centre)
            for _n in range(size):
                person = EmployeeFactory(department=department)
                kind = rng.random()
                if kind < 0.5:
                    person.user.last_login = now
                elif kind < 0.7:
                    person.user.last_login = long_ago
                person.user.save(update_fields=["last_login"])
                if rng.random() < 0.2:
                    Employee.objects.filter(pk=person.pk).update(directory_last_logon=now)
                if rng.random() < 0.1:
                    Employee.objects.filter(pk=person.pk).update(is_active=False)
                self.people.append(person)
        rows = []
        for person in self.people:
            for item in self.items:
                if rng.random() < 0.45:
                    continue
                for _n in range(rng.randint(1, 3)):
                    rows.append((person, item, rng))
        for person, item, rng in rows:
            req = request_row(item, person, submitted=now, approved=now, closed=now)
            req.save()
            state = EntitlementState.ACTIVE if rng.random() < 0.85 else EntitlementState.REVOKED
            note = "Wechsel von Amt 10" if rng.random() < 0.15 else ""
            Entitlement.objects.create(
                request=req, holder=person, item=item, state=state, review_note=note
            )


def reference(limit=None):
    rows = reclaim.candidates_queryset()
    if limit is not None:
        rows = rows[:limit]
    return [(row.pk, row.reclaim_risk, reclaim.reclaim_reasons(row)) for row in rows]


def ranked(limit=None):
    return [(r.entitlement_id, r.risk, r.reasons) for r in reclaim.ranked_candidates(limit)]


@pytest.mark.django_db
@pytest.mark.parametrize(("share", "min_group"), [(0.1, 5), (0.4, 5), (0.5, 2)])
def test_ranking_per_group_equals_the_reference(org, settings, share, min_group):
    settings.ASSIST_OUTLIER_SHARE = share
    settings.ASSIST_MIN_PEER_GROUP = min_group
    Crowd(org, settings)
    full = reference()
    assert len(full) > 20
    assert {risk for _id, risk, _r in full} >= {1, 2, 3}  # the signs add up
    assert ranked() == full
    for limit in (1, 2, 5, 13, 40, len(full), len(full) + 5):
        assert ranked(limit) == full[:limit]
    assert ranked(0) == []
    assert [(c.entitlement.pk, c.risk, c.reasons) for c in reclaim.reclaim_candidates(7)] == (
        full[:7]
    )


@pytest.mark.django_db
def test_the_page_reads_the_stored_candidates_as_of_their_computation(org, settings, client):
    Crowd(org, settings)
    assert not ReclaimRun.objects.exists()
    as_of, shown = reclaim.stored_candidates(limit=10)  # never computed: computed now
    assert [(c.entitlement.pk, c.risk, c.reasons) for c in shown] == reference(10)
    assert ReclaimCandidate.objects.count() == min(reclaim.STORED, len(reference()))
    # Revoked since: left out until the next computation; the time stays.
    first = shown[0].entitlement
    Entitlement.objects.filter(pk=first.pk).update(state=EntitlementState.REVOKED)
    again, shown = reclaim.stored_candidates(limit=10)
    assert again == as_of and first.pk not in [c.entitlement.pk for c in shown]
    assert refresh_reclaim_candidates.apply().get() == {"stored": len(reference(reclaim.STORED))}
    later, shown = reclaim.stored_candidates(limit=10)
    assert later >= as_of
    assert [(c.entitlement.pk, c.risk, c.reasons) for c in shown] == reference(10)

    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    client.force_login(controller.user)
    client.cookies["django_language"] = "de"
    page = client.get("/controlling/auffaelligkeiten/").content.decode()
    assert "Stand der Kandidaten" in page
    assert settings.CELERY_BEAT_SCHEDULE["reclaim-candidates"]["task"] == (
        "assist.tasks.refresh_reclaim_candidates"
    )
    settings.ASSIST_ANOMALIES = False
    assert refresh_reclaim_candidates.apply().get() == {"skipped": "switched off"}


@pytest.mark.django_db(transaction=True)
def test_the_page_computes_candidates_never_computed_before_its_read_only_snapshot(
    org, settings, client
):
    """Outside a test's transaction (as served) the page reads in a READ ONLY snapshot: the
    first computation of the candidates is written before it, not inside."""
    Crowd(org, settings)
    assert not ReclaimRun.objects.exists()
    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    client.force_login(controller.user)
    response = client.get("/controlling/auffaelligkeiten/")
    assert response.status_code == 200
    assert ReclaimRun.objects.exists()
    shown = [row.service for row in response.context["extra_tables"][0].data]
    assert len(shown) == min(reclaim.STORED, len(reference()), RECLAIM_SHOWN)
