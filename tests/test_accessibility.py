"""Accessibility of the key pages (WCAG 2.1 AA, as German public bodies must meet).

The portal runs on pytest-django's ``live_server`` (PostgreSQL). Playwright drives Debian's
Chromium (/usr/bin/chromium, never a downloaded browser), logs in through the real login
form and runs axe-core (PyPI ``axe-playwright-python``) on every key page, in German and in
English. A violation of a WCAG 2.0/2.1 A or AA rule with impact "serious" or "critical"
fails the test (so does such a result axe marks "needs review"); the failure message lists
them all, page by page. Every page also needs the right html lang, a title, one h1 and
heading levels without gaps, and is saved as a screenshot under var/screenshots/ for a
human look. Further tests check keyboard basics (skip link first, focus to <main>, visible
focus) and reflow at 320 CSS px (WCAG 1.4.10).

Chromium missing is a failure (CI must run these tests); set ITPORTAL_SKIP_BROWSER=1 to
skip them instead on a machine without it.
"""

import os
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import pytest
from axe_playwright_python.sync_playwright import Axe
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import sync_playwright

from catalogue.choices import ApproverKind, Audience, FieldType, FulfilmentKind
from catalogue.models import Bundle, BundleItem, CatalogueItem
from itportal import roles
from requests_app import services
from requests_app.models import CartLine, Substitution
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    CategoryFactory,
    FormFieldFactory,
    UserFactory,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SKIP_BROWSER = os.environ.get("ITPORTAL_SKIP_BROWSER") == "1"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}}
FAILING_IMPACTS = {"serious", "critical"}
ERROR_SUMMARY_FOCUSED = "document.activeElement.classList.contains('error-summary')"
PASSWORD = "test-pass-123"  # tests.factories.UserFactory
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

pytestmark = [
    pytest.mark.django_db(transaction=True),  # live_server reads the data from another thread
    pytest.mark.skipif(
        SKIP_BROWSER and not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing and ITPORTAL_SKIP_BROWSER=1 is set",
    ),
]


# --- data ------------------------------------------------------------------------------


@pytest.fixture
def portal(org):
    """A catalogue and requests in every state the key pages show.

    Created before Playwright starts: the sync API runs an event loop in this thread, and
    Django refuses ORM calls while one runs.
    """
    hardware = CategoryFactory(
        name="Hardware", slug="hardware", position=1, description="Geräte für den Arbeitsplatz."
    )
    software = CategoryFactory(name="Software", slug="software", position=2)
    notebook = CatalogueItemFactory(
        name="Notebook",
        slug="notebook",
        category=hardware,
        service_owner=org.service_desk,
        summary="Ein mobiles Arbeitsgerät mit Dockingstation.",
        description="### Lieferumfang\n\n- Notebook\n- Netzteil\n\n[Richtlinie](https://example.org)",
        price_once=Decimal("1250.00"),
        price_monthly=Decimal("12.50"),
        licence_pool_size=1,  # the request in fulfilment takes it: the pool warns
    )
    ApprovalPolicyStepFactory(item=notebook, position=1, approver_kind=ApproverKind.LINE_MANAGER)
    fields = [
        ("room", "Raumnummer", FieldType.TEXT, True, "", "Zum Beispiel A 1.23"),
        ("model", "Modell", FieldType.CHOICE, True, "14 Zoll\n16 Zoll", ""),
        ("extras", "Zubehör", FieldType.MULTIPLE_CHOICE, False, "Maus\nHeadset", ""),
        ("needed_on", "Benötigt ab", FieldType.DATE, False, "", ""),
        ("screens", "Anzahl Bildschirme", FieldType.NUMBER, False, "", ""),
        ("docking", "Dockingstation nötig?", FieldType.YES_NO, True, "", ""),
        ("contact", "Ansprechperson vor Ort", FieldType.PERSON, False, "", ""),
        ("notes", "Hinweise", FieldType.LONG_TEXT, False, "", ""),
    ]
    for position, (key, label, kind, required, choices, help_text) in enumerate(fields):
        FormFieldFactory(
            item=notebook,
            key=key,
            label=label,
            field_type=kind,
            required=required,
            choices=choices,
            help_text=help_text,
            position=position,
        )
    CatalogueItemFactory(
        name="Fachverfahren-Zugang",
        slug="fachverfahren",
        category=software,
        fulfilment_kind=FulfilmentKind.AUTOMATED,
        price_once=Decimal("0"),
        price_monthly=Decimal("0"),
    )
    restricted = CatalogueItemFactory(
        name="Serverzugang", slug="serverzugang", category=software, audience=Audience.RESTRICTED
    )

    def order(requester, beneficiary, **kwargs):
        return services.request_create(
            requester=requester,
            item=notebook,
            item_version=notebook.version,
            beneficiary=beneficiary,
            cost_centre=beneficiary.effective_cost_centre,
            answers={"room": "B 2.17", "model": "14 Zoll", "extras": ["Maus"], "docking": True},
            **kwargs,
        )

    # Alice orders for Bob: waits for the manager (the one row of "Approvals for me").
    pending = order(org.alice.user, org.bob, justification="Neuer Arbeitsplatz ab Montag.")
    # Bob's own order: approved by the manager and taken by the service desk.
    in_work = order(org.bob.user, org.bob)
    services.request_approve(request_id=in_work.pk, user=org.manager.user, comment="Passt.")
    services.request_take(request_id=in_work.pk, user=org.fulfiller.user)
    # Alice's own order, fulfilled: she may rate it; Bob's rated one feeds the controlling pages.
    fulfilled = []
    for employee in (org.alice, org.bob):
        req = order(employee.user, employee)
        services.request_approve(request_id=req.pk, user=org.manager.user)
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
        services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="Geliefert.")
        fulfilled.append(req)
    done, rated = fulfilled
    services.request_rate(request_id=rated.pk, user=org.bob.user, score=4, comment="Gut.")
    controller = UserFactory(username="controller", groups=[org.controlling])
    today = timezone.localdate()
    Substitution.objects.create(
        principal=org.manager.user,
        substitute=org.bob.user,
        starts_on=today + timedelta(days=7),
        ends_on=today + timedelta(days=14),
    )
    Substitution.objects.create(
        principal=org.head.user,
        substitute=org.manager.user,
        starts_on=today + timedelta(days=30),
        ends_on=today + timedelta(days=35),
    )
    controller = UserFactory(username="controller", groups=[org.controlling])
    officer = UserFactory(
        username="dsb", groups=[Group.objects.get_or_create(name=roles.DATA_PROTECTION)[0]]
    )
    # Bob's account is locked after five failed logins from elsewhere.
    AccessAttempt.objects.create(
        username="bob",
        ip_address="192.0.2.1",
        user_agent="test",
        failures_since_start=5,
        attempt_time=timezone.now(),
        get_data="",
        post_data="",
        http_accept="",
        path_info="/accounts/login/",
    )
    return SimpleNamespace(
        org=org,
        notebook=notebook,
        restricted=restricted,
        pending=pending,
        in_work=in_work,
        done=done,
        controller=controller,
        officer=officer,
    )


# --- browser -------------------------------------------------------------------------------


@pytest.fixture
def browser(portal):
    """Debian's Chromium under Playwright; after ``portal`` so the data exists first."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (scripts/bootstrap.sh does), "
            "or set ITPORTAL_SKIP_BROWSER=1 to skip the browser tests."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    # German browser: the portal must pick German from Accept-Language.
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def submit(page, selector):
    """Click a submit button and wait for the page the post leads to."""
    with page.expect_navigation():
        page.locator(selector).click()


def log_in(page, base_url, username):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    submit(page, "main form button[type=submit]")
    assert "/accounts/login/" not in page.url, f"login as {username} failed"


def log_out(page):
    menu_button = page.locator(".menu-button")
    if menu_button.is_visible() and menu_button.get_attribute("aria-expanded") == "false":
        menu_button.click()  # small screen: the logout button sits in the folded menu
    submit(page, ".logout-form button[type=submit]")
    assert "/accounts/login/" in page.url


def log_in_speaking(page, base_url, username, lang):
    """Log in, then switch from German to ``lang`` if it is another language."""
    log_in(page, base_url, username)
    if lang != "de":
        switch_language(page, lang)


def switch_language(page, lang):
    page.select_option("#language-select", lang)
    submit(page, ".lang-form button[type=submit]")


IN_CHART = "(sel) => !!document.querySelector(sel)?.closest('svg.chart-svg')"


def _chart_text_only(page, violation):
    """Contrast "needs review" only for text inside our SVG charts.

    axe cannot tell the background of text inside an inline SVG ("contains an image
    node"). The charts draw dark text (#1a1a1a and the series colours, each ≥ 4.5:1) on a
    white background by construction; tests/test_charts.py checks those ratios.
    """
    if violation["id"] != "color-contrast":
        return False
    return all(page.evaluate(IN_CHART, node["target"][0]) for node in violation["nodes"])


class Audit:
    """Runs axe-core on pages and collects what fails, to report every page at once."""

    def __init__(self, lang):
        self.lang = lang
        self.axe = Axe()
        self.failures = []  # (page name, url, violation)
        self.minor = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def check(self, page, name, *, context=None):
        """``context``: a selector to limit axe to (the page's other checks still apply)."""
        assert page.get_attribute("html", "lang") == self.lang, f"{name}: wrong html lang"
        assert page.title().strip(), f"{name}: empty title"
        assert page.locator("h1").count() == 1, f"{name}: needs exactly one h1"
        levels = page.eval_on_selector_all(
            "h1, h2, h3, h4, h5, h6", "(hs) => hs.map((h) => Number(h.tagName[1]))"
        )
        skips = [(a, b) for a, b in pairwise(levels) if b > a + 1]
        assert not skips, f"{name}: heading levels skip (from, to): {skips}"
        page.screenshot(path=str(self.screenshot_path(name)), full_page=True)
        results = self.axe.run(page, context=context, options=AXE_OPTIONS).response
        for violation in results["violations"]:
            target = self.failures if violation["impact"] in FAILING_IMPACTS else self.minor
            target.append((name, page.url, violation))
        # "Incomplete" is axe's "needs review", e.g. aria-describedby naming a missing id:
        # on server-rendered pages that is nearly always a real defect, so it fails too.
        for violation in results["incomplete"]:
            if violation["impact"] in FAILING_IMPACTS and not _chart_text_only(page, violation):
                self.failures.append((f"{name}, needs review", page.url, violation))

    def screenshot_path(self, name) -> Path:
        return SCREENSHOTS / f"{self.lang}-{name}.png"

    @staticmethod
    def _format(entries):
        lines = []
        for name, url, v in entries:
            lines.append(f"[{name}] {url}\n  {v['id']} ({v['impact']}): {v['help']}")
            lines.append(f"  {v['helpUrl']}")
            for node in v["nodes"][:10]:
                lines.append(f"    - {', '.join(map(str, node['target']))}: {node['html'][:160]}")
                summary = (node.get("failureSummary") or "").replace("\n", " ")
                if summary:
                    lines.append(f"      {summary[:300]}")
        return "\n".join(lines)

    def assert_clean(self):
        if self.minor:
            print(f"Moderate/minor WCAG findings ({self.lang}):\n{self._format(self.minor)}")
        if self.failures:
            pytest.fail(
                f"{len(self.failures)} serious/critical WCAG A/AA violations ({self.lang}):\n"
                + self._format(self.failures),
                pytrace=False,
            )


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["de", "en"])
def test_key_pages_have_no_serious_wcag_violations(live_server, portal, page, lang):
    base = live_server.url
    audit = Audit(lang)
    org = portal.org

    page.goto(f"{base}/accounts/login/")
    if lang != "de":
        switch_language(page, lang)
    audit.check(page, "login")
    page.fill("#id_username", org.alice.user.username)
    page.fill("#id_password", "wrong")
    submit(page, "main form button[type=submit]")
    assert page.locator(".error-summary").count() == 1
    assert page.evaluate(ERROR_SUMMARY_FOCUSED), "focus must move to the error summary"
    audit.check(page, "login-errors")

    # Requester: start page, catalogue, ordering, own requests, refusals.
    log_in(page, base, org.alice.user.username)
    assert page.url.endswith("/start/")
    assert page.locator(".request-card").count() >= 1  # her order for Bob
    audit.check(page, "start-requester")
    page.goto(f"{base}/")
    audit.check(page, "catalogue")
    # Results while typing (portal.js swaps the results region), a typo included.
    page.fill("#catalogue-search", "notbook")
    page.wait_for_url("**/?q=notbook")
    results = page.locator("#catalogue-results")
    assert results.locator("#results-heading").count() == 1
    assert results.locator(f'a[href="/leistung/{portal.notebook.slug}/"]').count() == 1
    audit.check(page, "search-results")
    page.goto(f"{base}/?q=Xylophon")
    audit.check(page, "search-empty")
    page.goto(f"{base}/kategorie/{portal.notebook.category.slug}/")
    audit.check(page, "category")
    page.goto(f"{base}/leistung/{portal.notebook.slug}/")
    audit.check(page, "item")
    page.goto(f"{base}/leistung/{portal.notebook.slug}/bestellen/")
    assert page.locator("#held-heading").count() == 1  # she holds one already
    audit.check(page, "order")
    page.fill("#id_f_room", "<b>A 1.23</b>")
    page.fill("#id_beneficiary", "p99999")
    submit(page, "main form.form button.primary[type=submit]")
    assert page.locator(".error-summary").count() == 1
    assert page.evaluate(ERROR_SUMMARY_FOCUSED), "focus must move to the error summary"
    audit.check(page, "order-errors")
    page.goto(f"{base}/antraege/")
    audit.check(page, "my-requests")
    page.goto(f"{base}/antraege/{portal.pending.pk}/")
    assert page.locator(".action-form").count() >= 1  # cancel
    audit.check(page, "detail-requester")
    page.goto(f"{base}/antraege/{portal.done.pk}/")
    assert page.locator(".rating-form fieldset legend").count() == 1
    audit.check(page, "detail-rating")
    submit(page, ".rating-form button[type=submit]")  # no score chosen
    assert page.locator(".rating-form .error-summary").count() == 1
    audit.check(page, "detail-rating-errors")
    page.check("#id_score_3")
    page.fill("#id_comment", "Schnell geliefert.")
    submit(page, ".rating-form button[type=submit]")
    assert page.locator(".rating-form").count() == 1  # may still change it
    audit.check(page, "detail-rated")
    page.goto(f"{base}/leistung/{portal.notebook.slug}/bestellen/?wie={portal.done.pk}")
    assert page.input_value("#id_f_room") == "B 2.17"  # filled in as before
    audit.check(page, "order-again")
    page.goto(f"{base}/antraege/?tab=closed")
    assert page.locator("main table tbody tr").count() >= 1
    audit.check(page, "my-requests-closed")
    page.goto(f"{base}/benachrichtigungen/")
    assert page.locator(".notification").count() >= 1  # her submission confirmations
    audit.check(page, "notifications")
    page.goto(f"{base}/antraege/{portal.pending.pk}/cancel/")
    assert page.locator("main form button.danger").count() == 1
    audit.check(page, "cancel-confirm")
    page.goto(f"{base}/provisionierung/berechtigungen/")
    assert page.locator("main table tbody tr").count() == 1  # the fulfilled notebook
    audit.check(page, "entitlements")
    with page.expect_navigation():
        page.locator("main table tbody a.button.danger").click()
    assert page.locator("main form textarea[name=reason]").count() == 1
    audit.check(page, "revoke-confirm")
    response = page.goto(f"{base}/leistung/{portal.restricted.slug}/")
    assert response.status == 403
    audit.check(page, "403")
    response = page.goto(f"{base}/antraege/999999/")
    assert response.status == 404
    audit.check(page, "404")
    log_out(page)

    # Approver: one request waits for the manager; substitutes.
    log_in(page, base, org.manager.user.username)
    assert page.locator("main .tile").count() >= 1  # one request awaits the decision
    audit.check(page, "start-approver")
    page.goto(f"{base}/antraege/genehmigungen/")
    assert page.locator("main table tbody tr").count() == 1
    audit.check(page, "approvals")
    page.goto(f"{base}/antraege/{portal.pending.pk}/")
    assert page.locator(".action-form").count() >= 2  # approve, reject
    audit.check(page, "detail-approver")
    page.goto(f"{base}/antraege/vertretungen/")
    audit.check(page, "substitutions")
    page.goto(f"{base}/konto/tokens/")
    page.fill("#id_name", "Intranet")
    submit(page, "main form.form button[type=submit]")
    assert page.locator("#new-token-key").count() == 1
    audit.check(page, "api-tokens")
    log_out(page)

    # Fulfiller: queue and a request in fulfilment.
    log_in(page, base, org.fulfiller.user.username)
    audit.check(page, "start-fulfiller")
    page.goto(f"{base}/antraege/bearbeitung/")
    assert page.locator("main table tbody tr").count() == 1
    audit.check(page, "queue")
    page.goto(f"{base}/antraege/{portal.in_work.pk}/")
    assert page.locator(".timeline li").count() >= 5
    assert page.locator(".action-form").count() >= 2  # complete, fail
    audit.check(page, "detail-fulfiller")
    # On hold, waiting for a supplier: the note on the page, the mark in the queue.
    page.fill("#text-hold", "Lieferant liefert am Donnerstag")
    page.locator("form[action$='/anhalten/'] input[value=supplier]").check()
    submit(page, "form[action$='/anhalten/'] button[type=submit]")
    assert page.locator("#on-hold").count() == 1
    audit.check(page, "detail-on-hold")
    page.goto(f"{base}/antraege/bearbeitung/?tab=on_hold")
    assert page.locator("main table tbody tr").count() == 1
    audit.check(page, "queue-on-hold")
    log_out(page)

    # IT admin: the login lock-outs.
    log_in(page, base, org.admin.user.username)
    assert page.locator("#admin-heading").count() == 1
    audit.check(page, "start-it-admin")
    page.goto(f"{base}/konto/anmeldesperren/")
    assert page.locator("main table tbody tr").count() == 2  # bob and the address
    audit.check(page, "lockouts")
    page.goto(f"{base}/konto/zweiter-faktor/einrichten/")
    assert page.locator("main img[alt]").count() == 1  # the QR code
    audit.check(page, "second-factor-setup")
    page.goto(f"{base}/konto/zweiter-faktor-zuruecksetzen/")
    audit.check(page, "second-factor-reset")
    log_out(page)

    # Data-protection officer: the access report of Alice.
    log_in(page, base, portal.officer.username)
    page.goto(f"{base}/datenschutz/auskunft/?person={org.alice.user.username}")
    assert page.locator("main ol.records > li").count() >= 2  # requests, audit records, ...
    audit.check(page, "access-report")
    page.goto(f"{base}/datenschutz/protokoll/")
    audit.check(page, "audit-export")
    log_out(page)
    page.fill("#id_username", org.bob.user.username)
    page.fill("#id_password", PASSWORD)
    submit(page, "main form button[type=submit]")
    assert page.locator("main [role=alert]").count() == 1
    audit.check(page, "locked-out")

    # IT controlling: figures with charts (each with its text alternative and data table).
    log_in(page, base, portal.controller.username)
    assert page.locator("#controlling-heading").count() == 1
    audit.check(page, "start-controlling")
    for name, path in CONTROLLING_PAGES.items():
        page.goto(base + path)
        if name != "rarely-ordered":
            assert page.locator("figure.chart svg[role=img]").count() >= 1, name
        audit.check(page, name)
    page.goto(f"{base}/controlling/selten-bestellt/?fewer_than=abc")
    assert page.locator(".field.has-error").count() == 1
    audit.check(page, "rarely-ordered-errors")

    audit.assert_clean()


CONTROLLING_PAGES = {
    "costs": "/controlling/",
    "usage": "/controlling/nutzung/",
    "pools": "/controlling/lizenzpools/",
    "forecast": "/controlling/prognose/",
    "rarely-ordered": "/controlling/selten-bestellt/",
    "lead-times": "/controlling/durchlaufzeiten/",
    "satisfaction": "/controlling/zufriedenheit/",
}


FOCUSED = "document.activeElement"
FIRST_FOCUSABLE = """() => {
  const candidates = document.querySelectorAll(
    'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]),'
    + ' select:not([disabled]), textarea:not([disabled]), [tabindex]');
  const tabbable = [...candidates].filter((el) => el.tabIndex >= 0);
  if (tabbable.some((el) => el.tabIndex > 0)) { return 'positive tabindex'; }
  return tabbable.length ? tabbable[0].outerHTML.slice(0, 120) : 'nothing';
}"""


def _assert_skip_link_works(page, where, *, tab_from_start=True):
    first = page.evaluate(FIRST_FOCUSABLE)
    assert "skip-link" in first, f"{where}: first focusable element is {first}, not the skip link"
    if tab_from_start:
        page.keyboard.press("Tab")
        assert page.evaluate(f"{FOCUSED}.classList.contains('skip-link')"), (
            f"{where}: the first Tab must land on the skip link, not "
            + page.evaluate(f"{FOCUSED}.outerHTML.slice(0, 120)")
        )
    else:
        page.focus(".skip-link")
    box = page.locator(".skip-link").bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0, f"{where}: focused skip link is off screen"
    outline = page.evaluate(f"getComputedStyle({FOCUSED}).outlineStyle")
    assert outline != "none", f"{where}: focused skip link has no visible outline"
    page.keyboard.press("Enter")
    assert page.evaluate(f"{FOCUSED}.id") == "main", f"{where}: skip link must focus <main>"
    page.keyboard.press("Tab")
    assert page.evaluate(f"{FOCUSED}.closest('main') !== null"), (
        f"{where}: Tab after the skip link must stay in the main content"
    )
    outline = page.evaluate(f"getComputedStyle({FOCUSED}).outlineStyle")
    assert outline != "none", f"{where}: focused element in main has no visible outline"


@pytest.fixture
def stale_cart(portal):
    """The head's cart holds a notebook whose required answers are missing (the form changed);
    a joiner bundle offers the notebook and the specialised application.

    Not Bob's: the portal fixture locks Bob out."""
    org = portal.org
    bundle = Bundle.objects.create(name="Neue Mitarbeiterin / neuer Mitarbeiter", slug="neu")
    BundleItem.objects.create(bundle=bundle, item=portal.notebook, position=1)
    BundleItem.objects.create(
        bundle=bundle, item=CatalogueItem.objects.get(slug="fachverfahren"), position=2,
        selected=False,
    )  # fmt: skip
    return CartLine.objects.create(
        owner=org.head.user,
        item=portal.notebook,
        beneficiary=org.head,
        form_data={"item_version": [str(portal.notebook.version)]},
        answers={"room": "C 3.01"},
    )


@pytest.mark.parametrize("lang", ["de", "en"])
def test_cart_pages_have_no_serious_wcag_violations(live_server, portal, stale_cart, page, lang):
    base = live_server.url
    audit = Audit(lang)
    org = portal.org
    log_in_speaking(page, base, org.alice.user.username, lang)
    page.goto(f"{base}/warenkorb/")
    audit.check(page, "cart-empty")
    page.goto(f"{base}/leistung/{portal.notebook.slug}/bestellen/")
    page.fill("#id_f_room", "A 1.23")
    page.select_option("#id_f_model", "14 Zoll")
    page.select_option("#id_f_docking", "yes")
    page.fill("#id_beneficiary", org.bob.personnel_number)
    submit(page, "main form.form button[name=to_cart]")
    assert "/warenkorb/" in page.url
    page.goto(f"{base}/leistung/{portal.notebook.slug}/bestellen/")
    page.fill("#id_f_room", "A 1.24")
    page.select_option("#id_f_model", "16 Zoll")
    page.select_option("#id_f_docking", "no")
    submit(page, "main form.form button[name=to_cart]")
    page.goto(f"{base}/leistung/fachverfahren/bestellen/")
    submit(page, "main form.form button[name=to_cart]")
    assert page.locator(".cart-line").count() == 3
    assert page.locator(".site-header .badge").count() == 1
    audit.check(page, "cart")
    submit(page, "main form button.primary[type=submit]")
    assert "/bestellung/" in page.url
    assert page.locator(".cart-line").count() == 3
    audit.check(page, "joint-order")
    log_out(page)

    # Both notebooks wait for the manager, grouped.
    log_in_speaking(page, base, org.manager.user.username, lang)
    page.goto(f"{base}/antraege/genehmigungen/")
    assert page.locator(".approval-groups form").count() == 1
    audit.check(page, "approvals-grouped")
    page.goto(f"{base}/pakete/")
    audit.check(page, "bundles")
    page.goto(f"{base}/paket/neu/bestellen/")
    audit.check(page, "bundle-order")
    page.fill("#id_beneficiary", org.alice.personnel_number)
    submit(page, "main form.form button.primary[type=submit]")
    assert page.locator(".error-summary").count() == 1
    assert page.locator("fieldset.cart-line.has-error").count() == 1
    audit.check(page, "bundle-order-errors")
    log_out(page)

    log_in_speaking(page, base, org.head.user.username, lang)
    page.goto(f"{base}/warenkorb/")
    submit(page, "main form button.primary[type=submit]")
    assert page.locator(".error-summary").count() == 1
    assert page.locator(".cart-line.has-error").count() == 1
    audit.check(page, "cart-errors")
    audit.assert_clean()


def test_skip_link_is_first_focusable_and_moves_focus_to_main(live_server, portal, page):
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    # Django's login form autofocuses the user name, so Tab starts from there.
    _assert_skip_link_works(page, "login", tab_from_start=False)
    log_in(page, base, portal.org.alice.user.username)
    for path in ["/", f"/leistung/{portal.notebook.slug}/bestellen/", "/antraege/"]:
        page.goto(base + path)
        _assert_skip_link_works(page, path)
    page.goto(f"{base}/")
    page.keyboard.press("Tab")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "de-skip-link-focused.png"))


TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter((el) => !el.closest('.table-container'))
  .filter((el) => el.getBoundingClientRect().right > innerWidth + 1
    || (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'visible'))
  .map((el) => `<${el.tagName.toLowerCase()} class="${el.className}">`).slice(-6)"""


def test_pages_reflow_at_320_css_pixels(live_server, portal, browser):
    """WCAG 1.4.10: no horizontal page scrolling at 320 CSS px (400 % zoom of 1280 px)."""
    context = browser.new_context(locale="de-DE", viewport={"width": 320, "height": 640})
    page = context.new_page()
    base = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, base, portal.org.manager.user.username)
    # The menu is folded behind its button and opens on a click.
    button = page.locator(".menu-button")
    assert button.is_visible()
    assert button.get_attribute("aria-expanded") == "false"
    assert not page.locator("#site-menu .nav").is_visible()
    button.click()
    assert button.get_attribute("aria-expanded") == "true"
    assert page.locator("#site-menu .nav").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "de-320px-menu-open.png"), full_page=True)
    paths = {
        "start": "/start/",
        "catalogue": "/",
        "search-empty": "/?q=Xylophon",
        "order": f"/leistung/{portal.notebook.slug}/bestellen/",
        "approvals": "/antraege/genehmigungen/",
        "detail": f"/antraege/{portal.pending.pk}/",
        "substitutions": "/antraege/vertretungen/",
    }
    too_wide = []
    for name, path in paths.items():
        page.goto(base + path)
        page.screenshot(path=str(SCREENSHOTS / f"de-320px-{name}.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 320:
            too_wide.append(f"{path}: {width}px wide, because of {page.evaluate(TOO_WIDE)}")
    log_out(page)
    log_in(page, base, portal.controller.username)
    for name, path in CONTROLLING_PAGES.items():
        page.goto(base + path)
        page.screenshot(path=str(SCREENSHOTS / f"de-320px-{name}.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 320:
            too_wide.append(f"{path}: {width}px wide, because of {page.evaluate(TOO_WIDE)}")
    context.close()
    assert not too_wide, f"pages scroll sideways at 320 CSS px: {too_wide}"


@pytest.fixture
def exchange_file(portal, tmp_path):
    """An exchange document of the portal's catalogue (exported before Playwright starts)."""
    from catalogue.exchange.services import catalogue_export, dumps

    document = catalogue_export()
    document["items"][0]["slug"] = "neu-aus-dem-austausch"  # one new item in the preview
    good = tmp_path / "katalog.json"
    good.write_text(dumps(document), encoding="utf-8")
    binary = tmp_path / "bild.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return SimpleNamespace(good=good, binary=binary)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_catalogue_exchange_pages_have_no_serious_wcag_violations(
    live_server, portal, exchange_file, page, lang
):
    base = live_server.url
    audit = Audit(lang)
    log_in(page, base, portal.org.admin.user.username)
    if lang != "de":
        switch_language(page, lang)
    page.goto(f"{base}/katalog/austausch/")
    audit.check(page, "exchange")
    page.set_input_files("#id_file", str(exchange_file.binary))
    submit(page, "main form[enctype] button[type=submit]")
    assert page.locator(".error-summary li").count() == 1
    assert page.evaluate(ERROR_SUMMARY_FOCUSED), "focus must move to the error summary"
    audit.check(page, "exchange-errors")
    page.set_input_files("#id_file", str(exchange_file.good))
    submit(page, "main form[enctype] button[type=submit]")
    assert "/katalog/austausch/import/zuordnen/" in page.url
    audit.check(page, "exchange-map")
    page.select_option("#id_ph_group_service_desk", "")
    submit(page, "main form.form button[type=submit]")
    assert page.locator(".error-summary").count() == 1
    assert page.evaluate(ERROR_SUMMARY_FOCUSED), "focus must move to the error summary"
    audit.check(page, "exchange-map-errors")
    page.select_option("#id_ph_group_service_desk", "Service Desk")
    submit(page, "main form.form button[type=submit]")
    assert "/katalog/austausch/import/vorschau/" in page.url
    assert page.locator("main form.action-form").count() == 2  # import, cancel
    audit.check(page, "exchange-preview")
    page.set_viewport_size({"width": 320, "height": 640})
    for path in ("/katalog/austausch/", "/katalog/austausch/import/zuordnen/"):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{path} scrolls sideways at 320 CSS px: {page.evaluate(TOO_WIDE)}"
    audit.assert_clean()


@pytest.fixture
def webhook_pages(portal, settings):
    """An endpoint with a delivery that failed once (the name does not resolve here)."""
    from webhooks import services as webhook_services

    endpoint, _secret = webhook_services.endpoint_create(
        url="https://fachverfahren.musterstadt.example/hooks/itportal/eingang?quelle=portal",
        events=["request.approved", "request.fulfilled", "entitlement.revoked"],
        description="Fachverfahren Personalwesen",
        user=portal.org.admin.user,
    )
    delivery = webhook_services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    return SimpleNamespace(endpoint=endpoint, delivery=delivery)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_webhook_pages_have_no_serious_wcag_violations(
    live_server, portal, webhook_pages, browser, lang
):
    base = live_server.url
    audit = Audit(lang)
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, base, portal.org.admin.user.username)
    if lang != "de":
        switch_language(page, lang)
    page.goto(f"{base}/webhooks/")
    assert page.locator("main table tbody tr").count() == 1
    audit.check(page, "webhooks")
    page.goto(f"{base}/webhooks/neu/")
    audit.check(page, "webhook-form")
    page.fill("#id_url", "https://user:pw@10.0.0.1/x")
    submit(page, "main form.form button[type=submit]")
    assert page.locator(".error-summary li").count() == 2  # the URL and the events
    assert page.evaluate(ERROR_SUMMARY_FOCUSED), "focus must move to the error summary"
    audit.check(page, "webhook-form-errors")
    page.fill("#id_url", "https://intranet.musterstadt.example/hooks")
    page.check("#id_events_0")
    submit(page, "main form.form button[type=submit]")
    assert page.locator("#new-secret").count() == 1
    audit.check(page, "webhook-secret")
    page.goto(f"{base}/webhooks/{webhook_pages.endpoint.pk}/")
    assert page.locator("main table tbody tr").count() == 1
    audit.check(page, "webhook-detail")
    page.goto(f"{base}/webhooks/zustellungen/{webhook_pages.delivery.pk}/")
    audit.check(page, "webhook-delivery")
    audit.assert_clean()

    # Reflow at 320 CSS px: the long URL wraps instead of widening the page.
    page.set_viewport_size({"width": 320, "height": 640})
    for path in [f"/webhooks/{webhook_pages.endpoint.pk}/", "/webhooks/neu/"]:
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{path}: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
    context.close()


@pytest.fixture
def outbox_mails(portal):
    """A failed and an interrupted mail on "Postausgang" (the wake-ups are not run)."""
    from notifications import services as mail_services
    from notifications.models import OutgoingMail

    org = portal.org
    mails = mail_services.mail_queue(
        kind="request.approved",
        recipients=[org.alice.user, org.bob.user],
        params={"request_id": portal.pending.pk, "event": "approved"},
    )
    OutgoingMail.objects.filter(pk=mails[0].pk).update(
        state="failed", attempts=8, last_error="SMTPDataError: (554, b'5.7.1 Message rejected')"
    )
    OutgoingMail.objects.filter(pk=mails[1].pk).update(state="uncertain", attempts=1)
    return mails


@pytest.mark.parametrize("lang", ["de", "en"])
def test_outbox_page_has_no_serious_wcag_violations(live_server, portal, outbox_mails, page, lang):
    base = live_server.url
    log_in_speaking(page, base, portal.org.admin.user.username, lang)
    page.goto(f"{base}/postausgang/")
    assert page.locator("main table tbody tr").count() == 2
    audit = Audit(lang)
    audit.check(page, "outbox")
    submit(page, "main table tbody tr:first-child form button[type=submit]")  # send it again
    assert page.locator(".messages").count() == 1
    audit.check(page, "outbox-retried")
    audit.assert_clean()
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{base}/postausgang/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"/postausgang/: {width}px wide, because of {page.evaluate(TOO_WIDE)}"


@pytest.mark.parametrize("lang", ["de", "en"])
def test_catalogue_editor_pages_have_no_serious_wcag_violations(live_server, portal, page, lang):
    """The editor as an IT admin who is not superuser: list, item with its form builder and
    preview, a failed save, a new item, the provisioning actions with a dry run."""
    base = live_server.url
    audit = Audit(lang)
    log_in(page, base, portal.org.admin.user.username)
    if lang != "de":
        switch_language(page, lang)
    page.goto(f"{base}/katalog/verwaltung/")
    audit.check(page, "editor-list")
    page.locator("main table a", has_text="Notebook").first.click()
    page.wait_for_load_state()
    assert "/katalog/verwaltung/" in page.url
    edit_url = page.url
    audit.check(page, "editor-item")
    page.fill("#id_name", "")
    submit(page, "main form.editor-form button.primary")
    assert page.evaluate(ERROR_SUMMARY_FOCUSED), "focus must move to the error summary"
    audit.check(page, "editor-item-errors")
    page.goto(f"{base}/katalog/verwaltung/neu/")
    audit.check(page, "editor-new")
    page.goto(edit_url)
    page.locator("main a", has_text="istory").or_(
        page.locator("main a", has_text="verlauf")
    ).first.click()
    page.wait_for_load_state()
    assert "/verlauf/" in page.url
    audit.check(page, "editor-history")
    # One old version with its order form, rules, approval steps and provisioning actions.
    page.locator("main .history-entry a").last.click()
    page.wait_for_load_state()
    assert page.locator("main form button.primary").count() == 1  # "Restore this version"
    audit.check(page, "editor-history-version")
    page.goto(edit_url)
    page.locator("main a", has_text="Provision").first.click()
    page.wait_for_load_state()
    submit(page, "main button[name=dry_run]")
    assert page.locator(".dry-run-result").count() == 1
    audit.check(page, "editor-actions-dry-run")
    audit.assert_clean()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_bundle_editor_pages_have_no_serious_wcag_violations(live_server, portal, page, lang):
    """Bundles in the catalogue editor as an IT admin who is not superuser: the list, a new
    bundle refused (no item), then saved with an item and opened again."""
    base = live_server.url
    audit = Audit(lang)
    log_in(page, base, portal.org.admin.user.username)
    if lang != "de":
        switch_language(page, lang)
    page.goto(f"{base}/katalog/verwaltung/")
    page.locator("main a[href='/katalog/verwaltung/pakete/']").click()
    page.wait_for_load_state()
    audit.check(page, "bundle-list")
    page.goto(f"{base}/katalog/verwaltung/pakete/neu/")
    audit.check(page, "bundle-new")
    page.fill("#id_name", "Eintritt")
    page.fill("#id_slug", f"eintritt-{lang}")
    submit(page, "main form.editor-form button.primary")
    assert page.locator(".error-summary").count() >= 1
    audit.check(page, "bundle-errors")
    page.select_option("#id_entries-0-item", index=1)
    submit(page, "main form.editor-form button.primary")
    assert "/katalog/verwaltung/pakete/" in page.url and "/neu/" not in page.url
    audit.check(page, "bundle-edit")
    audit.assert_clean()
