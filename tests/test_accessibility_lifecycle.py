"""Accessibility of the lifecycle pages (axe, WCAG 2.1 AA), with data in them: the
fulfilment queue with a leaver's tasks.

Uses the browser, page and data fixtures of tests/test_accessibility.py."""

import pytest

from requests_app import services as request_services
from requests_app.models import FulfilmentTask
from tests.test_accessibility import (  # noqa: F401 (fixtures)
    TOO_WIDE,
    Audit,
    browser,
    log_in_speaking,
    page,
    portal,
    pytestmark,
)


@pytest.fixture
def tasks(portal):  # noqa: F811 (the imported fixture)
    """A notebook to collect from the person who got the done request."""
    return request_services.task_open(
        request_id=portal.done.pk, kind=FulfilmentTask.Kind.COLLECT, reason="Austritt"
    )


@pytest.mark.parametrize("lang", ["de", "en"])
def test_queue_with_tasks_has_no_serious_wcag_violations(
    live_server,
    portal,  # noqa: F811
    tasks,
    page,  # noqa: F811
    lang,
):
    base = live_server.url
    audit = Audit(lang)
    log_in_speaking(page, base, portal.org.fulfiller.user.username, lang)
    page.goto(f"{base}/antraege/bearbeitung/")
    assert page.locator("#tasks table tbody tr").count() == 1
    audit.check(page, "queue-tasks")
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{base}/antraege/bearbeitung/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"queue: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.fill(f"#task-note-{tasks.pk}", "Inventar 4711")
    with page.expect_navigation():
        page.locator("#tasks button[type=submit]").click()
    assert page.locator("#tasks").count() == 0
    audit.check(page, "queue-task-done")
    audit.assert_clean()
