"""Protected logins (issue 13): lock-out per account and per address, the IT admins' page to
lift it, the login log without passwords, idle sessions, sessions that end with the browser."""

import logging
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.addresses import client_ip
from accounts.middleware import LAST_SEEN
from tests.factories import EmployeeFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
PASSWORD = "test-pass-123"  # tests.factories.UserFactory


def attempt(client, username, password, address="192.0.2.10"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_account_from_every_address(client, org):
    for address, spelling in zip(
        ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"],
        ["alice", "ALICE", "Alice", "alice"],
        strict=True,
    ):
        assert attempt(client, spelling, "falsch", address).status_code == 200
    # The fifth failure locks: its answer is already the lock-out page.
    assert attempt(client, "aLiCe", "falsch", "192.0.2.5").status_code == 429
    # The right password, from yet another address, no longer opens it.
    response = attempt(client, "alice", PASSWORD, "198.51.100.7")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Others are not affected.
    assert attempt(client, "bob", PASSWORD, "198.51.100.7").status_code == 302


def test_the_personnel_number_counts_for_the_same_account(client, org):
    org.alice.personnel_number = "p4711"
    org.alice.save()
    for name in ["p4711", "P4711", "alice", "ALICE", "p4711"]:
        attempt(client, name, "falsch")
    assert attempt(client, "alice", PASSWORD, "198.51.100.8").status_code == 429


def test_five_failures_from_one_address_lock_that_address(client, org):
    for name in ["nobody1", "nobody2", "nobody3", "nobody4", "nobody5"]:
        attempt(client, name, "falsch", "203.0.113.9")
    assert attempt(client, "bob", PASSWORD, "203.0.113.9").status_code == 429
    assert attempt(client, "bob", PASSWORD, "203.0.113.10").status_code == 302


def test_success_before_the_limit_resets_the_count(client, org):
    for _ in range(4):
        attempt(client, "alice", "falsch")
    assert attempt(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        attempt(client, "alice", "falsch")
    assert attempt(client, "alice", PASSWORD).status_code == 302


def test_it_admin_sees_and_lifts_the_lock(client, org):
    for _ in range(5):
        attempt(client, "alice", "falsch", "192.0.2.44")
    assert attempt(client, "alice", PASSWORD, "192.0.2.45").status_code == 429

    client.force_login(org.bob.user)
    assert client.get("/konto/anmeldesperren/").status_code == 403
    assert client.post("/konto/anmeldesperren/", {"account": "alice"}).status_code == 403

    client.force_login(org.admin.user)
    page = client.get("/konto/anmeldesperren/").content.decode()
    assert "Unlock alice" in page and "Unlock 192.0.2.44" in page
    response = client.post("/konto/anmeldesperren/", {"account": "alice"}, follow=True)
    assert "The lock-out of alice was lifted." in response.content.decode()
    client.logout()
    assert attempt(client, "alice", PASSWORD, "192.0.2.45").status_code == 302


def test_lifting_needs_exactly_one_target(client, org):
    client.force_login(org.admin.user)
    response = client.post("/konto/anmeldesperren/", {}, follow=True)
    assert "Choose one account or one address" in response.content.decode()


def test_logins_and_failures_are_logged_without_the_password(client, org, caplog):
    with caplog.at_level(logging.INFO, logger="accounts.login"):
        attempt(client, "alice", "Sehr-Geheim-987", "192.0.2.77")
        attempt(client, "alice", PASSWORD, "192.0.2.77")
        client.post("/accounts/logout/", REMOTE_ADDR="192.0.2.77")
    messages = [r.getMessage() for r in caplog.records if r.name == "accounts.login"]
    assert "login failed: name='alice' address=192.0.2.77" in messages
    assert "login succeeded: user=alice address=192.0.2.77" in messages
    assert "logout: user=alice address=192.0.2.77" in messages
    assert not any("Sehr-Geheim-987" in r.getMessage() for r in caplog.records)
    assert not any(PASSWORD in r.getMessage() for r in caplog.records)


def test_nul_characters_in_a_failed_login_are_no_server_error(client, org):
    response = client.post(
        LOGIN, {"username": "alice", "password": "falsch", "next": "/\x00", "x\x00": "\x00"}
    )
    assert response.status_code == 200


@pytest.mark.session_refresh
def test_sessions_end_with_the_browser_and_after_idle_time(client, org, settings):
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_MINUTES * 60 == 30 * 60
    assert attempt(client, "alice", PASSWORD).status_code == 302
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["expires"] and not cookie["max-age"]  # a browser-session cookie
    key = cookie.value

    # Used a minute after the last refresh: the server-side expiry moves on.
    session = client.session
    session[LAST_SEEN] = int(time.time()) - 120
    session.save()
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=5))
    assert client.get("/antraege/").status_code == 200
    expiry = Session.objects.get(pk=client.cookies[settings.SESSION_COOKIE_NAME].value).expire_date
    assert expiry > timezone.now() + timedelta(minutes=29)

    # Idle past the expiry: the next request goes to the login page.
    Session.objects.all().update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/antraege/")
    assert response.status_code == 302 and response.url.startswith(LOGIN)


@pytest.mark.session_refresh
def test_pages_within_a_minute_do_not_write_the_session(client, org):
    client.force_login(org.alice.user)
    with CaptureQueriesContext(connection) as queries:
        client.get("/antraege/")
        client.get("/")
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert not [sql for sql in writes if "django_session" in sql]


def test_admin_site_logs_in_through_the_portal_login(client):
    response = client.get("/admin/login/?next=/admin/catalogue/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/admin/catalogue/"


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("192.0.2.1", "", [], "192.0.2.1"),
        ("192.0.2.1", "198.51.100.1", [], "192.0.2.1"),  # untrusted peers cannot name others
        ("127.0.0.1", "198.51.100.1", ["127.0.0.1"], "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", ["127.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.3", ["10.0.0.0/24"], "198.51.100.1"),
        ("127.0.0.1", "nonsense", ["127.0.0.1"], "127.0.0.1"),
        ("127.0.0.1", "", ["127.0.0.1"], "127.0.0.1"),
    ],
)
def test_client_address_behind_trusted_proxies(settings, remote, forwarded, trusted, expected):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_lockouts_page_for_it_admins_is_listed_in_their_navigation(client, org):
    client.force_login(org.admin.user)
    assert 'href="/konto/anmeldesperren/"' in client.get("/").content.decode()
    client.force_login(EmployeeFactory().user)
    assert 'href="/konto/anmeldesperren/"' not in client.get("/").content.decode()
