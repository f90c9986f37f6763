"""Tables wider than a phone that cannot become cards (hand-written, no column labels) scroll
inside their container; portal.js makes such a container a focusable, named region so the
keyboard can scroll it (axe: scrollable-region-focusable). Uses tests/test_accessibility.py's
data and browser."""

from axe_playwright_python.sync_playwright import Axe

from tests.test_accessibility import (  # noqa: F401 (fixtures)
    browser,
    log_in,
    portal,
    pytestmark,
)

RULE = {"runOnly": {"type": "rule", "values": ["scrollable-region-focusable"]}}


def test_wide_tables_scroll_by_keyboard_on_a_phone(live_server, portal, browser):  # noqa: F811
    context = browser.new_context(locale="de-DE", viewport={"width": 320, "height": 640})
    page = context.new_page()
    log_in(page, live_server.url, portal.org.manager.user.username)
    page.goto(f"{live_server.url}/antraege/vertretungen/")
    box = page.locator("main .table-container").first
    assert page.evaluate("(b) => b.scrollWidth > b.clientWidth", box.element_handle())
    assert box.get_attribute("tabindex") == "0"
    assert box.get_attribute("role") == "region"
    assert box.get_attribute("aria-label") or box.get_attribute("aria-labelledby")
    assert Axe().run(page, options=RULE).response["violations"] == []
    # Wide enough for the table: the container stays a plain box.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/antraege/vertretungen/")
    assert page.locator("main .table-container").first.get_attribute("tabindex") is None
    context.close()
