"""The API documentation page renders in Chromium under the portal's strict CSP."""

import pytest
from playwright.sync_api import sync_playwright

from tests.test_accessibility import CHROMIUM, CHROMIUM_ARGS, log_in, pytestmark  # noqa: F401


@pytest.fixture
def browser_page(org):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/bootstrap.sh).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="de-DE").new_page()
            yield page
        finally:
            browser.close()


def test_swagger_ui_loads_everything_from_the_portal_without_csp_violations(
    live_server, org, browser_page
):
    page = browser_page
    log_in(page, live_server.url, org.alice.user.username)  # (the portal has no favicon: 404)
    problems, foreign = [], []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith(live_server.url) else foreign.append(r.url),
    )
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator(".opblock").count() >= 30
    assert "itportal API" in page.locator(".info .title").first.inner_text()
    assert not problems, problems
    assert not foreign, foreign
