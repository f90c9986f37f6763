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


@pytest.fixture
def mover(portal):  # noqa: F811 (the imported fixture)
    """Alice moved: her access is flagged, marked as her old department's."""
    from provisioning import movers

    org = portal.org
    assert movers.flag_mover(org.alice, note="Wechsel von FB10", old_department=org.department)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_mover_review_has_no_serious_wcag_violations(
    live_server,
    portal,  # noqa: F811
    mover,
    page,  # noqa: F811
    lang,
):
    """Her manager sees it with the due date and the mark of the old department."""
    org = portal.org
    base = live_server.url
    audit = Audit(lang)
    log_in_speaking(page, base, org.manager.user.username, lang)
    page.goto(f"{base}/zugriffspruefung/")
    assert page.locator("#moved-heading ~ .table-container tbody tr").count() >= 1
    audit.check(page, "mover-review")
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{base}/zugriffspruefung/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"reviews: {width}px wide, because of {page.evaluate(TOO_WIDE)}"
    audit.assert_clean()
