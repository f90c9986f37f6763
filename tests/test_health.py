"""/healthz (alive, nothing else) and /readyz (database, migrations, broker, directory)."""

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from itportal import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_probe_state():
    health._migrations_complete = False
    health._redis_clients.clear()
    yield
    health._migrations_complete = False
    health._redis_clients.clear()


def test_healthz_answers_without_login_database_or_https(
    client, settings, django_assert_num_queries
):
    settings.SECURE_SSL_REDIRECT = True  # probes speak plain HTTP to the node
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_readyz_follows_the_directory(client, settings, directory_settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert set(body["checks"]) == {"database", "migrations", "broker", "directory"}

    directory_settings.stop()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["failed"] == ["directory"]
        assert body["checks"]["directory"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
        # A load balancer asks only what one node can get wrong on its own.
        response = client.get("/readyz?check=database&check=migrations")
        assert response.status_code == 200
        assert set(response.json()["checks"]) == {"database", "migrations"}
    finally:
        directory_settings.start()

    response = client.get("/readyz")
    assert response.status_code == 200, response.json()


def test_readyz_names_an_unreachable_broker_without_its_address(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"]["error"] == "ConnectionError"
    assert "127.0.0.1" not in response.content.decode()


def test_readyz_is_not_ready_before_migrate(client):
    recorder = MigrationRecorder(connection)
    latest = recorder.migration_qs.filter(app="requests_app").order_by("-name").first()
    latest.delete()  # as if a new release with this migration ran before `migrate`
    response = client.get("/readyz?check=migrations")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"]["ok"] is False

    recorder.record_applied(latest.app, latest.name)
    assert client.get("/readyz?check=migrations").status_code == 200


def test_readyz_refuses_an_unknown_check(client):
    response = client.get("/readyz?check=database&check=coffee")
    assert response.status_code == 400
    assert "coffee" in response.json()["error"]
