"""Accessibility of the decision support (assist/) on the request page and the approvals
list (axe, WCAG 2.1 AA). Uses the browser, page and data fixtures of tests/test_accessibility.py."""

import pytest
from django.utils import timezone

from catalogue.models import CatalogueItem
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services
from tests.factories import request_row
from tests.test_accessibility import (  # noqa: F401 (fixtures)
    Audit,
    browser,
    log_in_speaking,
    page,
    portal,
    pytestmark,
)


@pytest.fixture
def with_history(portal):  # noqa: F811 (the imported fixture)
    """Bob's pending notebook: Alice holds one (her fulfilled order), another was rejected."""
    org = portal.org
    assert Entitlement.objects.filter(holder=org.alice, state=EntitlementState.ACTIVE).exists()
    rejected = services.request_create(
        requester=org.alice.user,
        item=portal.notebook,
        item_version=portal.notebook.version,
        beneficiary=org.alice,
        cost_centre=org.alice.effective_cost_centre,
        answers={"room": "B 2.17", "model": "14 Zoll", "extras": [], "docking": True},
    )
    services.request_reject(
        request_id=rejected.pk, user=org.manager.user, comment="Kein dienstlicher Bedarf."
    )
    return portal


@pytest.mark.parametrize("lang", ["de", "en"])
def test_decision_support_has_no_serious_wcag_violations(
    live_server,
    with_history,
    page,  # noqa: F811
    lang,
):
    base = live_server.url
    log_in_speaking(page, base, with_history.org.manager.user.username, lang)
    page.goto(f"{base}/antraege/{with_history.pending.pk}/")
    assert page.locator("#assist-heading").count() == 1
    audit = Audit(lang)
    audit.check(page, "decision-support")
    page.goto(f"{base}/antraege/genehmigungen/")
    assert page.locator(".assist-row").count() == 1
    audit.check(page, "approvals-decision-support")
    audit.assert_clean()


@pytest.fixture
def team_holds(portal):  # noqa: F811 (the imported fixture)
    """Three of Alice's five colleagues hold the Fachverfahren-Zugang: recommended to her."""
    org = portal.org
    item = CatalogueItem.objects.get(slug="fachverfahren")
    now = timezone.now()
    for peer in (org.bob, org.manager, org.head):
        req = request_row(item, peer, submitted=now, approved=now, closed=now)
        req.save()
        Entitlement.objects.create(request=req, holder=peer, item=item)
    return portal


@pytest.mark.parametrize("lang", ["de", "en"])
def test_recommendations_have_no_serious_wcag_violations(
    live_server,
    team_holds,
    page,  # noqa: F811
    lang,
):
    base = live_server.url
    log_in_speaking(page, base, team_holds.org.alice.user.username, lang)
    page.goto(f"{base}/")
    assert page.locator(".assist-recommendation").count() == 1
    audit = Audit(lang)
    audit.check(page, "recommended-for-you")
    audit.assert_clean()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_ordering_in_words_has_no_serious_wcag_violations(
    live_server,
    portal,  # noqa: F811
    page,  # noqa: F811
    lang,
):
    base = live_server.url
    log_in_speaking(page, base, portal.org.alice.user.username, lang)
    page.goto(f"{base}/was-brauchen-sie/?q=Ich+brauche+ein+neues+Notebok+bitte")
    assert page.locator(".assist-suggestion").count() >= 1
    assert page.locator(".assist-reasons li").count() >= 1
    audit = Audit(lang)
    audit.check(page, "ordering-in-words")
    page.goto(f"{base}/was-brauchen-sie/?q=Kaffeemaschine")
    audit.check(page, "ordering-in-words-nothing-fits")
    audit.assert_clean()


@pytest.fixture
def bob_holds_notebook(portal):  # noqa: F811 (the imported fixture)
    """Bob never signed in and holds the notebook (a monthly price): a candidate to reclaim."""
    org = portal.org
    now = timezone.now()
    req = request_row(portal.notebook, org.bob, submitted=now, approved=now, closed=now)
    req.save()
    Entitlement.objects.create(request=req, holder=org.bob, item=portal.notebook)
    return portal


@pytest.mark.parametrize("lang", ["de", "en"])
def test_anomalies_page_has_no_serious_wcag_violations(
    live_server,
    bob_holds_notebook,
    page,  # noqa: F811
    lang,
):
    """Controlling's page of unusual months and entitlements to reclaim."""
    base = live_server.url
    log_in_speaking(page, base, "controller", lang)
    page.goto(f"{base}/controlling/auffaelligkeiten/")
    assert page.locator("#anomaly-method-heading").count() == 1
    assert page.locator("table").count() == 2
    audit = Audit(lang)
    audit.check(page, "anomalies")
    audit.assert_clean()
