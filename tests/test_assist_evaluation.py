"""The offline evaluation of the recommendations (manage.py assist_evaluate): precision and
recall against held-out entitlements, on constructed data with a clear structure and on the
demo (seed_demo + seed_history), above the floors of docs/assistance.md; the database is left
as it was."""

import datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from assist import evaluation
from devtools import history
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from tests.factories import CatalogueItemFactory, DepartmentFactory, EmployeeFactory, request_row

pytestmark = pytest.mark.django_db

# docs/assistance.md, "Quality": the demo's figures (seeds 1-5 of the hold-out, 20 % held
# out, top 3, summed) are precision 0.14-0.15 and recall 0.044-0.048; the floors, about half
# of them as before, leave room for the draws (one seed alone gave recall 0.030-0.055).
DEMO_PRECISION_FLOOR = 0.08
DEMO_RECALL_FLOOR = 0.02
DEMO_SEEDS = range(1, 6)


def grant(item, person):
    now = timezone.now()
    req = request_row(item, person, submitted=now, approved=now, closed=now)
    req.save()
    Entitlement.objects.create(request=req, holder=person, item=item)


def test_structured_teams_are_recommended_what_their_team_holds(org):
    """Two departments of ten, each holding its own two items: what is held out is what the
    peers hold, so the recommendations find it."""
    for name in ("Kämmerei", "Bürgeramt"):
        department = DepartmentFactory(name=name, cost_centre=org.cost_centre)
        items = [CatalogueItemFactory(name=f"{name} {n}") for n in range(2)]
        for _ in range(10):
            person = EmployeeFactory(department=department)
            for item in items:
                grant(item, person)
    before = list(Entitlement.objects.order_by("pk").values_list("pk", "state"))
    result = evaluation.evaluate_recommendations(share=0.2, seed=3)
    assert result.held_out > 0
    assert result.precision >= 0.9
    assert result.recall >= 0.9
    # The most held overall cannot tell the departments apart.
    assert result.baseline_precision < result.precision
    assert list(Entitlement.objects.order_by("pk").values_list("pk", "state")) == before
    assert not Entitlement.objects.filter(state=EntitlementState.REVOKED).exists()


# The demo history of a fixed day: its dates (working days, months) move with "now".
DEMO_NOW = datetime.datetime(2026, 11, 18, 10, 0, tzinfo=datetime.UTC)


def test_demo_history_keeps_above_the_floors():
    call_command("seed_demo", verbosity=0)
    # The history's random draws follow the plans of its statements, and the plans the
    # statistics: those of this test's rows (ANALYZE is transactional), not what autovacuum
    # last saw of other tests' committed rows. Without it the demo differed from run to run
    # (167 to 193 people with held-out entitlements) and so did the figures.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    history.generate(count=6000, months=12, seed=1, now=DEMO_NOW)
    results = [evaluation.evaluate_recommendations(share=0.2, seed=seed) for seed in DEMO_SEEDS]
    assert all(result.people > 100 for result in results)
    hits = sum(result.hits for result in results)
    precision = hits / sum(result.recommended for result in results)
    recall = hits / sum(result.held_out for result in results)
    assert precision >= DEMO_PRECISION_FLOOR, results
    assert recall >= DEMO_RECALL_FLOOR, results
