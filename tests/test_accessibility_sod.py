"""Accessibility (axe, WCAG 2.1 AA) of the segregation-of-duties "Warum?" and exception
pages and of the entitlement and request "Warum?" pages, in German and English.

Uses the browser, page and data fixtures of tests/test_accessibility.py."""

import datetime

import pytest
from django.utils import timezone

from governance import sod_services
from governance.models import GroupNesting, SodFinding
from provisioning.choices import ActionKind, EntitlementState
from provisioning.models import Entitlement, ProvisioningAction
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

KASSE = "cn=kasse,ou=groups,dc=musterstadt,dc=example"
LESEN = "cn=kasse-lesen,ou=groups,dc=musterstadt,dc=example"


@pytest.fixture
def finding(portal, place_order):  # noqa: F811 (the imported fixture)
    """alice holds "Buchen" (through cn=kasse-lesen, nested in cn=kasse) and "Freigeben"; a
    rule over cn=kasse and "Freigeben"; an exception asked for by the admin."""
    org = portal.org
    book = make_item(
        org.service_desk, {"approver_kind": "line_manager"}, name="Buchen", slug="z-buchen"
    )
    release = make_item(org.service_desk, name="Zahlungen freigeben", slug="z-freigeben")
    ProvisioningAction.objects.create(item=book, kind=ActionKind.ADD_TO_GROUP, target=LESEN)
    GroupNesting.objects.create(parent_dn=KASSE, child_dn=LESEN)
    entitlements = []
    for item in (book, release):
        req = place_order(item, org.alice.user)
        entitlements.append(
            Entitlement.objects.create(
                request=req, holder=org.alice, item=item, state=EntitlementState.ACTIVE
            )
        )
    rule = sod_services.sod_rule_create(
        name="Kasse", reason="Buchen und Freigeben trennen.", first=[KASSE], second=[release]
    )
    sod_services.sod_scan()
    exception = sod_services.sod_exception_request(
        rule_id=rule.pk,
        holder=org.alice,
        user=org.admin.user,
        justification="Vertretung im Urlaub.",
        compensating_control="Stichprobe durch die Amtsleitung.",
        valid_until=timezone.localdate() + datetime.timedelta(days=30),
    )
    return SodFinding.objects.get(), exception, entitlements[0]


@pytest.mark.parametrize("lang", ["de", "en"])
def test_why_and_exception_pages_have_no_serious_wcag_violations(
    live_server,
    portal,  # noqa: F811
    finding,
    page,  # noqa: F811
    lang,
):
    found, exception, entitlement = finding
    base = live_server.url
    audit = Audit(lang)
    log_in_speaking(page, base, portal.org.admin.user.username, lang)
    pages = {
        "sod-finding": f"/funktionstrennung/{found.pk}/",
        "sod-exceptions": "/funktionstrennung/ausnahmen/",
        "sod-exception": f"/funktionstrennung/ausnahmen/{exception.pk}/",
        "why-entitlement": f"/warum/berechtigung/{entitlement.pk}/",
        "why-request": f"/warum/antrag/{entitlement.request_id}/",
    }
    for name, url in pages.items():
        page.goto(f"{base}{url}")
        audit.check(page, name)
    page.goto(f"{base}/funktionstrennung/{found.pk}/")
    page.locator("main form button[type=submit]").click()  # empty form: errors
    page.wait_for_load_state()
    audit.check(page, "sod-finding-errors")
    audit.assert_clean()
    page.set_viewport_size({"width": 320, "height": 640})
    for url in pages.values():
        page.goto(f"{base}{url}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{url}: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
