"""The main journeys of every role in a real browser (issue 11), shared by the desktop and the
phone test modules (two modules, so pytest-xdist runs them side by side).

The demo city (``seed_demo``: its people, catalogue and search keywords) runs on pytest-django's
``live_server`` (PostgreSQL); Playwright drives Debian's Chromium as in tests/test_accessibility.py.
Every page of every journey is checked by axe (WCAG 2.1 A/AA: no serious or critical finding,
one h1, heading levels without gaps) and saved as a screenshot under
var/screenshots/journeys/<width>/ (test artefacts, ignored by git; the README shows a few of
them from docs/screenshots/).

The journeys, in German as a new employee sees the portal:
- employee (Anna Schmidt): searches "Laptop", "Passwort" and "Monitr" and finds the right item
  first; orders the monitor; sees on her start page who is on it now;
- manager (Thomas Becker): decides from his start page ("1 Antrag wartet auf Ihre
  Entscheidung");
- IT admin: takes the order from the fulfilment queue and marks it fulfilled; reads a failed
  provisioning job, the entitlements and the catalogue editor pages;
- employee again: follows the order from the start page and her notifications to "Erledigt";
- IT controlling: reads the key figures on the start page and the cost report.

Without JavaScript nothing here would differ but the results while typing and the folded menu;
on the phone every navigation goes through the "Menü" button, as a person would.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from catalogue.models import CatalogueItem, Employee
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app import services
from tests.test_accessibility import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, Audit, submit

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # a current mid-size phone, in CSS pixels
ARTEFACTS = SCREENSHOTS / "journeys"
DEMO_PASSWORD = "demo"  # seed_demo

# What a new employee types, and the item (slug) that must come first (demo catalogue).
SEARCHES = [
    ("Laptop", "notebook"),  # a synonym: "Notebook (Standardarbeitsplatz)"
    ("Passwort", "konto-entsperren"),  # the item says "Kennwort"
    ("Monitr", "monitor"),  # a typo: "Zusätzlicher Monitor"
]


@dataclass
class City:
    anna: str = "mitarbeiterin"
    manager: str = "vorgesetzter"
    it_admin: str = "itadmin"
    controlling: str = "controlling"
    failed_job: int = 0
    editor_item: int = 0


@pytest.fixture
def demo_city():
    """The demo city, plus what the IT admin's pages show when something went wrong: a
    lasting access of Anna's (a mailbox extension, fulfilled by hand) and a failed directory
    job. Created before Playwright starts (no ORM while its event loop runs)."""
    call_command("seed_demo", verbosity=0)
    anna = Employee.objects.select_related("user").get(user__username="mitarbeiterin")
    mailbox = CatalogueItem.objects.get(slug="postfach-erweiterung")
    req = services.request_create(
        requester=anna.user,
        item=mailbox,
        item_version=mailbox.version,
        beneficiary=anna,
        cost_centre=anna.effective_cost_centre,
        answers={"groesse": "10 GB", "begruendung": "Viele Bauakten als Anhang."},
    )
    for approval in req.approvals.order_by("position"):
        services.request_approve(request_id=req.pk, user=approval.approver)
    it_admin = Employee.objects.get(user__username="itadmin").user
    services.request_take(request_id=req.pk, user=it_admin)
    services.request_complete(request_id=req.pk, user=it_admin, note="Auf 10 GB erweitert.")
    entitlement = Entitlement.objects.get(request=req, state=EntitlementState.ACTIVE)
    job = ProvisioningJob.objects.create(
        request=req,
        entitlement=entitlement,
        direction=Direction.GRANT,
        kind=ActionKind.ADD_TO_GROUP,
        user_uid=anna.personnel_number,
        target_dn="cn=postfach-10gb,ou=gruppen,dc=musterstadt,dc=example",
        dialect="openldap",
        state=JobState.FAILED,
        attempts=5,
        last_error="LDAPSocketOpenError: socket connection error while opening: timed out",
        log="Versuch 1 bis 5: Verzeichnis nicht erreichbar.",
        finished_at=timezone.now(),
    )
    return City(failed_job=job.pk, editor_item=CatalogueItem.objects.get(slug="monitor").pk)


@pytest.fixture
def browser(demo_city):
    """Debian's Chromium under Playwright; after ``demo_city`` so the data exists first."""
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


# Steps also kept as they fill the screen (not the whole page): the README's pictures are
# made from these by scripts/readme-screenshots.sh.
README_STEPS = {
    "desktop": {
        "employee-catalogue-search",
        "employee-start-ordered",
        "manager-start",
        "it-admin-start",
        "it-admin-queue",
        "controlling-start",
    },
    "phone": {"employee-menu", "employee-submitted", "manager-request", "it-admin-queue"},
}


class JourneyAudit(Audit):
    """axe as in tests/test_accessibility.py; screenshots numbered in the journey's order."""

    def __init__(self, width_name):
        super().__init__("de")
        self.width_name = width_name
        self.folder = ARTEFACTS / width_name
        (self.folder / "screen").mkdir(parents=True, exist_ok=True)
        self.steps = 0

    def screenshot_path(self, name) -> Path:
        self.steps += 1
        return self.folder / f"{self.steps:02d}-{name}.png"

    def check(self, page, name, *, context=None):
        if name in README_STEPS[self.width_name]:
            page.screenshot(path=str(self.folder / "screen" / f"{self.width_name}-{name}.png"))
        super().check(page, name, context=context)


class Journey:
    """One person's way through the portal at one width, every page checked."""

    def __init__(self, browser, base, viewport, audit):
        self.base = base
        self.audit = audit
        self.phone = viewport["width"] < 600
        self.context = browser.new_context(locale="de-DE", viewport=viewport)
        self.page = self.context.new_page()

    def check(self, name, *, context=None):
        self.audit.check(self.page, name, context=context)

    def go(self, path):
        response = self.page.goto(self.base + path)
        assert response.status == 200, f"{path}: {response.status}"

    def log_in(self, username):
        self.go("/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", DEMO_PASSWORD)
        submit(self.page, "main form button[type=submit]")
        assert self.page.url.endswith("/start/"), f"login as {username} did not land on /start/"

    def open_menu(self):
        """On the phone the menu is folded behind its button: open it as a person would."""
        button = self.page.locator(".menu-button")
        if self.phone:
            expect(button).to_be_visible()
            if button.get_attribute("aria-expanded") == "false":
                button.click()
            expect(self.page.locator("#site-menu")).to_be_visible()
        else:
            expect(button).to_be_hidden()

    def navigate(self, label):
        """Follow a link of the main navigation by its visible name."""
        self.open_menu()
        link = self.page.locator("#site-menu nav .nav > li > a", has_text=label).first
        with self.page.expect_navigation():
            link.click()

    def follow(self, locator):
        with self.page.expect_navigation():
            locator.click()

    def log_out(self):
        self.open_menu()
        submit(self.page, ".logout-form button[type=submit]")
        assert "/accounts/login/" in self.page.url

    def close(self):
        self.context.close()


def run_journeys(browser, base, city, viewport, width_name):
    audit = JourneyAudit(width_name)
    for journey in (
        employee_orders,
        manager_decides,
        it_admin_fulfils,
        employee_follows,
        controlling_reads,
    ):
        journey(Journey(browser, base, viewport, audit), city)
    audit.assert_clean()
    return audit


def first_result(page):
    """The first item a search offers: the catalogue's result cards or the assistant's list."""
    return page.locator(
        "#catalogue-results .card-title a, .assist-words .assist-suggestion h3 a"
    ).first


def employee_orders(j, city):
    page = j.page
    j.go("/accounts/login/")
    j.check("login")
    j.log_in(city.anna)
    expect(page.locator("h1")).to_contain_text("Anna")
    j.check("employee-start")
    if j.phone:  # the folded menu, opened (checked by axe too)
        j.open_menu()
        j.check("employee-menu")
    # The start page's search ("Was brauchen Sie?": the catalogue search, or the assistant's
    # ordering in words where it is on), first try each: the right item comes first.
    for query, expected in SEARCHES:
        j.go("/start/")
        page.fill("#start-search", query)
        submit(page, ".start-search button[type=submit]")
        expect(first_result(page)).to_have_attribute("href", f"/leistung/{expected}/")
        j.check(f"employee-search-{query.lower()}")
    # The catalogue's own search, with results while typing (portal.js), finds it as well.
    j.navigate("Katalog")
    page.fill("#catalogue-search", "Monitr")
    page.wait_for_url("**/?q=Monitr")
    expect(first_result(page)).to_have_attribute("href", "/leistung/monitor/")
    j.check("employee-catalogue-search")
    j.follow(first_result(page))
    expect(page.locator("h1")).to_have_text("Zusätzlicher Monitor")
    j.check("employee-item")
    j.follow(page.locator("main a.button.primary", has_text="Bestellen"))
    j.check("employee-order-form")
    submit(page, "main form.form button.primary[type=submit]")  # nothing filled in yet
    expect(page.locator(".error-summary")).to_be_visible()
    j.check("employee-order-errors")
    page.select_option("#id_f_groesse", "27 Zoll")
    page.fill("#id_f_raum", "B 1.204")
    submit(page, "main form.form button.primary[type=submit]")
    assert re.search(r"/antraege/\d+/$", page.url), page.url
    expect(page.locator(".status-badge")).to_have_text("In Genehmigung")
    expect(page.locator(".progress-line .is-current")).to_contain_text("Thomas Becker")
    j.check("employee-submitted")
    # Back on the start page: the order, its state and who is on it now.
    j.navigate("Start")
    card = page.locator(".request-card", has_text="Zusätzlicher Monitor")
    expect(card.locator(".status-badge")).to_have_text("In Genehmigung")
    expect(card.locator(".now-with")).to_contain_text("Thomas Becker")
    j.check("employee-start-ordered")
    j.log_out()
    j.close()


def manager_decides(j, city):
    page = j.page
    j.log_in(city.manager)
    tile = page.locator("main .tile", has_text="wartet auf Ihre Entscheidung")
    expect(tile).to_be_visible()
    j.check("manager-start")
    # Straight from the start page's list "Zu entscheiden" to the request.
    j.follow(page.locator("main .link-list a", has_text="Zusätzlicher Monitor").first)
    expect(page.locator("h1")).to_contain_text("Zusätzlicher Monitor")
    j.check("manager-request")
    page.fill("#text-approve", "Passt, zweiter Bildschirm für die Bauakten.")
    submit(page, "form.action-form[action$='/approve/'] button[type=submit]")
    expect(page.locator(".messages .message.success")).to_be_visible()
    expect(page.locator(".status-badge")).to_have_text("Genehmigt")
    j.check("manager-approved")
    j.navigate("Genehmigungen")  # nothing left to decide
    j.check("manager-approvals-empty")
    j.navigate("Start")
    expect(page.locator("main .tile", has_text="wartet auf Ihre Entscheidung")).to_have_count(0)
    j.log_out()
    j.close()


def it_admin_fulfils(j, city):
    page = j.page
    j.log_in(city.it_admin)
    expect(page.locator("#admin-heading")).to_be_visible()
    expect(page.locator("main .tile-alert", has_text="fehlgeschlagen")).to_be_visible()
    j.check("it-admin-start")
    j.navigate("Umsetzung")
    row = page.locator("main table tbody tr", has_text="Zusätzlicher Monitor").first
    expect(row).to_be_visible()
    j.check("it-admin-queue")
    j.follow(row.locator("a").first)
    j.check("it-admin-request")
    submit(page, "form.action-form[action$='/take/'] button[type=submit]")
    expect(page.locator(".status-badge")).to_have_text("In Bearbeitung")
    page.fill("#text-complete", "Monitor aufgestellt und angeschlossen.")
    submit(page, "form.action-form[action$='/complete/'] button[type=submit]")
    expect(page.locator(".status-badge")).to_have_text("Erledigt")
    j.check("it-admin-fulfilled")
    # What went wrong elsewhere: the failed job, from the start page's tile.
    j.navigate("Start")
    j.follow(page.locator("main .link-list a[href*='/provisionierung/auftraege/']").first)
    expect(page.locator("main")).to_contain_text("LDAPSocketOpenError")
    j.check("it-admin-job")
    j.go("/provisionierung/auftraege/")
    expect(page.locator("main table tbody tr")).not_to_have_count(0)
    j.check("it-admin-jobs")
    j.go("/provisionierung/berechtigungen/")
    expect(page.locator("main table tbody tr", has_text="Postfach-Erweiterung")).to_be_visible()
    j.check("it-admin-entitlements")
    # The catalogue editor through the "Verwaltung" menu, opened (axe sees it open).
    j.open_menu()
    page.locator("#site-menu .nav .submenu > summary").click()
    expect(page.locator("#site-menu .nav .submenu a", has_text="Katalogverwaltung")).to_be_visible()
    # On the desktop the open menu lies over the page, and axe cannot tell the background
    # of the text beneath it: checked is the header with the open menu (the page itself is
    # checked as "it-admin-entitlements").
    j.check("it-admin-menu", context=None if j.phone else ".site-header")
    j.follow(page.locator("#site-menu .nav .submenu a", has_text="Katalogverwaltung"))
    j.check("it-admin-editor-list")
    j.follow(page.locator("main table a", has_text="Zusätzlicher Monitor").first)
    editor_url = page.url
    j.check("it-admin-editor-item")
    j.go("/katalog/verwaltung/neu/")
    j.check("it-admin-editor-new")
    page.goto(editor_url)
    j.follow(page.locator("main a", has_text="Änderungsverlauf").first)
    j.check("it-admin-editor-history")
    page.goto(editor_url)
    j.follow(page.locator("main a", has_text="Provision").first)
    j.check("it-admin-editor-actions")
    j.log_out()
    j.close()


def employee_follows(j, city):
    page = j.page
    j.log_in(city.anna)
    # Nothing open any more; the notifications say what happened.
    expect(page.locator(".request-card", has_text="Zusätzlicher Monitor")).to_have_count(0)
    j.check("employee-start-done")
    # The notifications say what happened, newest first.
    j.open_menu()
    j.follow(page.locator(".inbox-link"))
    expect(page.locator(".notification").first).to_contain_text("Zusätzlicher Monitor")
    j.check("employee-notifications")
    j.navigate("Start")
    j.follow(page.locator("main a", has_text="Ihre früheren Anträge"))
    j.follow(page.locator("main .tabs a", has_text="Abgeschlossen"))
    row = page.locator("main table tbody tr", has_text="Zusätzlicher Monitor").first
    expect(row).to_contain_text("Erledigt")
    j.check("employee-requests-closed")
    j.follow(row.locator("a").first)
    expect(page.locator(".status-badge")).to_have_text("Erledigt")
    expect(page.locator(".progress-line .is-todo")).to_have_count(0)
    j.check("employee-request-done")
    j.navigate("Berechtigungen")
    expect(page.locator("main table tbody tr", has_text="Postfach-Erweiterung")).to_be_visible()
    j.check("employee-entitlements")
    j.log_out()
    j.close()


def controlling_reads(j, city):
    page = j.page
    j.log_in(city.controlling)
    figures = page.locator("#controlling-heading + dl.figures")
    expect(figures.locator("dd").first).to_be_visible()
    j.check("controlling-start")
    j.navigate("Controlling")
    expect(page.locator("main table tbody tr")).not_to_have_count(0)
    j.check("controlling-costs")
    j.log_out()
    j.close()
