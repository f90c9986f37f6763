"""API tokens: create (key once, only a hash stored), use, revoke, expire; the token page."""

import hashlib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from api import services
from api.models import ApiToken

pytestmark = pytest.mark.django_db


def client_with(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header, HTTP_ACCEPT_LANGUAGE="en")
    return client


def test_create_shows_the_key_once_and_stores_only_its_hash(org, api_as):
    alice = api_as(org.alice)
    response = alice.post("/api/v1/tokens/", {"name": "Intranet"}, format="json")
    assert response.status_code == 201
    key = response.json()["key"]
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:12] and key.startswith("itp_") and len(key) > 40
    assert key not in {str(v) for v in ApiToken.objects.filter(pk=token.pk).values().get().values()}
    listed = alice.get(f"/api/v1/tokens/{token.pk}/").json()
    assert "key" not in listed and listed["prefix"] == key[:12]
    # Both header forms work, and last use is recorded.
    assert client_with(f"Token {key}").get("/api/v1/requests/").status_code == 200
    assert client_with(f"Bearer {key}").get("/api/v1/requests/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_expired_unknown_and_malformed_tokens_are_401(org):
    token, key = services.token_create(user=org.alice.user, name="x")
    services.token_revoke(token_id=token.pk, user=org.alice.user)
    revoked = client_with(f"Token {key}").get("/api/v1/requests/")
    assert revoked.status_code == 401
    assert revoked.json() == {"detail": "This token has been revoked."}
    assert revoked["WWW-Authenticate"].startswith("Token")

    token, key = services.token_create(
        user=org.alice.user, name="y", expires_at=timezone.now() + timedelta(seconds=60)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_with(f"Token {key}").get("/api/v1/requests/").json() == {
        "detail": "This token has expired."
    }
    assert client_with("Token itp_unknown").get("/api/v1/requests/").status_code == 401
    assert client_with("Token a b").get("/api/v1/requests/").status_code == 401
    assert client_with("Token").get("/api/v1/requests/").status_code == 401
    token, key = services.token_create(user=org.bob.user, name="z")
    org.bob.user.is_active = False
    org.bob.user.save()
    assert client_with(f"Token {key}").get("/api/v1/requests/").status_code == 401
    anonymous = APIClient().get("/api/v1/requests/")
    assert anonymous.status_code == 401


def test_own_tokens_only_admins_see_and_revoke_all(org, api_as):
    mine, _key = services.token_create(user=org.alice.user, name="Alice")
    bob, admin = api_as(org.bob), api_as(org.admin)
    assert [t["name"] for t in bob.get("/api/v1/tokens/").json()["results"]] == ["test"]
    assert bob.get(f"/api/v1/tokens/{mine.pk}/").status_code == 404
    assert bob.delete(f"/api/v1/tokens/{mine.pk}/").status_code == 404
    everyone = admin.get("/api/v1/tokens/", {"user": "alice"}).json()
    assert [t["name"] for t in everyone["results"]] == ["Alice"]
    assert admin.delete(f"/api/v1/tokens/{mine.pk}/").status_code == 204
    again = admin.delete(f"/api/v1/tokens/{mine.pk}/")
    assert again.status_code == 409
    assert again.json() == {"detail": "This token is already revoked."}
    assert admin.get("/api/v1/tokens/", {"revoked": "true"}).json()["count"] == 1


def test_create_validates_name_and_expiry(org, api_as):
    alice = api_as(org.alice)
    past = alice.post("/api/v1/tokens/", {"name": "x", "expires_at": "2000-01-01T00:00:00Z"},
                      format="json")  # fmt: skip
    assert past.status_code == 400 and "expires_at" in past.json()
    assert "name" in alice.post("/api/v1/tokens/", {"name": "x" * 101}, format="json").json()
    assert "name" in alice.post("/api/v1/tokens/", {"name": "   "}, format="json").json()
    markup = alice.post("/api/v1/tokens/", {"name": "<script>x</script>"}, format="json")
    assert markup.status_code == 400 and "HTML" in markup.json()["name"][0]
    assert alice.post("/api/v1/tokens/", {"name": "x", "key": "mine"}, format="json").json() == {
        "key": ["Unknown field."]
    }


def test_token_calls_are_throttled_sessions_are_not(org, settings, client):
    cache.clear()
    settings.API_TOKEN_RATE = "3/minute"
    _token, key = services.token_create(user=org.alice.user, name="x")
    api = client_with(f"Token {key}")
    assert [api.get("/api/v1/tokens/").status_code for _ in range(4)] == [200, 200, 200, 429]
    client.force_login(org.alice.user)
    assert [client.get("/api/v1/tokens/").status_code for _ in range(4)] == [200] * 4
    cache.clear()


def test_session_writes_need_the_csrf_token(org):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(org.alice.user)
    assert client.get("/api/v1/tokens/").status_code == 200
    refused = client.post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]


def test_token_page_creates_shows_once_and_revokes(org, client):
    client.force_login(org.alice.user)
    page = client.get("/konto/tokens/")
    assert page.status_code == 200
    assert "API-Tokens" in page.content.decode() or "API tokens" in page.content.decode()
    created = client.post("/konto/tokens/", {"name": "Intranet", "expires_on": ""})
    assert created.status_code == 201
    token = ApiToken.objects.get(user=org.alice.user)
    html = created.content.decode()
    key_start = html.index('value="itp_') + len('value="')
    key = html[key_start : html.index('"', key_start)]
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert created["Cache-Control"] == "no-store"
    assert key not in client.get("/konto/tokens/").content.decode()  # shown only once
    assert client.post("/konto/tokens/", {"name": ""}).status_code == 400
    assert (
        client.post("/konto/tokens/", {"name": "x", "expires_on": "2000-01-01"}).status_code == 400
    )
    other, _key = services.token_create(user=org.bob.user, name="Bob")
    assert client.post(f"/konto/tokens/{other.pk}/widerrufen/").status_code == 404
    assert client.post(f"/konto/tokens/{token.pk}/widerrufen/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert client.get("/konto/tokens/").status_code == 302


def test_it_admins_list_and_revoke_tokens_in_the_admin(org, client):
    from itportal.roles import ensure_role_groups

    ensure_role_groups()
    org.admin.user.is_staff = True
    org.admin.user.save()
    token, _key = services.token_create(user=org.alice.user, name="Intranet")
    client.force_login(org.admin.user)
    listing = client.get("/admin/api/apitoken/")
    assert listing.status_code == 200
    assert token.prefix in listing.content.decode()
    assert client.get("/admin/api/apitoken/add/").status_code == 403
    client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.force_login(org.alice.user)
    assert client.get("/admin/api/apitoken/").status_code == 302  # no staff: to the login
