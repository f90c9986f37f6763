"""The main journeys of every role at phone width (390 px), in Debian's Chromium: every
navigation through the folded menu, axe on every page, a screenshot of every step
(tests/journey_support.py)."""

from tests.journey_support import PHONE, browser, demo_city, run_journeys  # noqa: F401
from tests.test_accessibility import pytestmark  # noqa: F401 (database, browser skip)


def test_every_role_at_phone_width(live_server, demo_city, browser):  # noqa: F811
    run_journeys(browser, live_server.url, demo_city, PHONE, "phone")
