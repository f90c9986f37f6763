"""Accessibility of the segregation-of-duties report (axe, WCAG 2.1 AA), with data in it.

Uses the browser, page and data fixtures of tests/test_accessibility.py."""

import pytest

from governance import sod_services
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from tests.test_accessibility import (  # noqa: F401 (fixtures)
    TOO_WIDE,
    Audit,
    browser,
    log_in_speaking,
    page,
    portal,
    pytestmark,
)
from tests.workflow_support import make_item


@pytest.fixture
def conflict(portal, place_order):  # noqa: F811 (the imported fixture)
    """Anna-like alice holds both services of a rule (granted before the rule existed)."""
    org = portal.org
    create = make_item(org.service_desk, name="Zahlungen anlegen", slug="z-anlegen")
    release = make_item(org.service_desk, name="Zahlungen freigeben", slug="z-freigeben")
    for item in (create, release):
        req = place_order(item, org.alice.user)
        Entitlement.objects.create(
            request=req, holder=org.alice, item=item, state=EntitlementState.ACTIVE
        )
    rule = sod_services.sod_rule_create(
        name="Kasse", reason="Anlegen und Freigeben trennen.", first=[create], second=[release]
    )
    sod_services.sod_scan()
    return rule


@pytest.mark.parametrize("lang", ["de", "en"])
def test_conflict_report_has_no_serious_wcag_violations(
    live_server,
    portal,  # noqa: F811
    conflict,
    page,  # noqa: F811
    lang,
):
    base = live_server.url
    log_in_speaking(page, base, portal.org.admin.user.username, lang)
    page.goto(f"{base}/funktionstrennung/")
    assert page.locator("main table tbody tr").count() == 1
    audit = Audit(lang)
    audit.check(page, "segregation-of-duties")
    page.goto(f"{base}/funktionstrennung/?rule=abc")
    audit.check(page, "segregation-of-duties-bad-filter")
    audit.assert_clean()
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{base}/funktionstrennung/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, (
        f"/funktionstrennung/: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
    )


@pytest.fixture
def campaign(portal, conflict):  # noqa: F811
    """A recertification under way: the manager decides on alice's two accesses."""
    import datetime

    from django.utils import timezone

    from governance import services

    Entitlement.objects.filter(holder=portal.org.alice).update(review_note="")
    return services.campaign_start(
        name="Rezertifizierung 2027", due_on=timezone.localdate() + datetime.timedelta(days=20)
    )


@pytest.mark.parametrize("lang", ["de", "en"])
def test_recertification_pages_have_no_serious_wcag_violations(
    live_server,
    portal,  # noqa: F811
    campaign,
    page,  # noqa: F811
    lang,
):
    base = live_server.url
    org = portal.org
    audit = Audit(lang)
    log_in_speaking(page, base, org.manager.user.username, lang)
    page.goto(f"{base}/zugriffspruefung/")
    assert page.locator("main table tbody tr").count() >= 2
    audit.check(page, "reviews")
    page.locator("main table tbody tr").first.locator("input[value=accept]").check()
    page.locator("main form.review-form button[type=submit]").click()
    page.wait_for_load_state()
    audit.check(page, "reviews-saved")
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{base}/zugriffspruefung/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"/zugriffspruefung/: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.context.clear_cookies()
    log_in_speaking(page, base, org.admin.user.username, lang)
    page.goto(f"{base}/zugriffspruefung/kampagnen/")
    audit.check(page, "campaigns")
    page.locator("main form button[type=submit]").click()  # empty form: errors
    page.wait_for_load_state()
    audit.check(page, "campaigns-errors")
    page.goto(f"{base}/zugriffspruefung/kampagnen/{campaign.pk}/")
    audit.check(page, "campaign")
    page.locator("main form button.danger").click()  # close the stage: the report has rows
    page.wait_for_load_state()
    audit.check(page, "campaign-closed")
    page.goto(f"{base}/zugriffspruefung/kampagnen/{campaign.pk}/bericht/")
    assert page.locator("main table tbody tr").count() >= 2
    audit.check(page, "campaign-report")
    page.set_viewport_size({"width": 320, "height": 640})
    for path in ("kampagnen/", f"kampagnen/{campaign.pk}/bericht/"):
        page.goto(f"{base}/zugriffspruefung/{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, (
            f"/zugriffspruefung/{path}: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
        )
    audit.assert_clean()
