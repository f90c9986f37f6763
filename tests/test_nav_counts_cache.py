"""The header's counts kept in the session for a short while (home/context_processors.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from home.context_processors import SESSION_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cached(settings):
    settings.PORTAL_NAV_COUNTS_SECONDS = 30


def approvals_badge(client) -> str:
    content = client.get("/antraege/").content.decode()
    menu = content[content.index('aria-label="Main navigation"') : content.index("</nav>")]
    link = menu[menu.index('href="/antraege/genehmigungen/"') :]
    return link[: link.index("</a>")]


def nav_queries(client, url="/antraege/") -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return sum("nav_approvals" in q["sql"] for q in ctx.captured_queries)


def test_a_second_page_reuses_the_counts(client, org, manual_item, place_order):
    place_order(manual_item, org.alice.user, beneficiary=org.bob)
    client.force_login(org.manager.user)
    assert nav_queries(client) == 1
    assert nav_queries(client) == 0
    assert client.session[SESSION_KEY]["counts"]["approvals"] == 1


def test_others_changes_show_after_the_period(client, org, manual_item, place_order, monkeypatch):
    client.force_login(org.manager.user)
    client.get("/antraege/")
    place_order(manual_item, org.alice.user, beneficiary=org.bob)  # someone else orders
    assert '<span class="count">' not in approvals_badge(client)  # within the period
    clock = [__import__("time").time() + 31]
    monkeypatch.setattr("home.context_processors.time.time", lambda: clock[0])
    assert '<span class="count">1' in approvals_badge(client)


def test_ones_own_post_drops_the_copy(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    client.force_login(org.manager.user)
    assert '<span class="count">1' in approvals_badge(client)
    pending = req.approvals.get(status="pending")
    data = {"state": "awaiting_approval", "approval": str(pending.pk), "text": ""}
    assert client.post(f"/antraege/{req.pk}/approve/", data).status_code == 302
    assert SESSION_KEY not in client.session
    assert '<span class="count">' not in approvals_badge(client)


def test_the_start_page_always_counts_afresh(client, org, manual_item, place_order):
    client.force_login(org.manager.user)
    client.get("/antraege/")
    place_order(manual_item, org.alice.user, beneficiary=org.bob)
    content = client.get("/start/").content.decode()
    assert '<span class="tile-count">1</span> request awaits your decision' in content
    assert client.session[SESSION_KEY]["counts"]["approvals"] == 1  # and refreshes the copy


def test_another_users_copy_is_never_used(client, org, manual_item, place_order):
    place_order(manual_item, org.alice.user, beneficiary=org.bob)
    client.force_login(org.manager.user)
    client.get("/antraege/")
    session = client.session
    stored = session[SESSION_KEY]
    stored["user"] = org.alice.user.pk
    session[SESSION_KEY] = stored
    session.save()
    assert nav_queries(client) == 1
