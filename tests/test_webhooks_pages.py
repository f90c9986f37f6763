"""Webhook pages: only IT admins, the secret shown once, URL checks, actions, bad input."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.webhook_support import allow_local_receiver
from webhooks import services
from webhooks.choices import DeliveryState, EventType
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

VALID = {
    "url": "https://hooks.stadt.example/itportal",
    "description": "Intranet der Stadt",
    "events": ["request.approved", "entitlement.revoked"],
    "is_active": "on",
}


@pytest.fixture
def endpoint(org):
    endpoint, _secret = services.endpoint_create(
        url="https://hooks.stadt.example/a", events=[EventType.REQUEST_FAILED], user=org.admin.user
    )
    return endpoint


@pytest.fixture
def failed_delivery(org, endpoint, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=org.admin.user)
    delivery.fail(status_code=410, error="HTTP 410: gone")
    delivery.save()
    return delivery


def page_urls(endpoint, delivery):
    return [
        "/webhooks/",
        "/webhooks/neu/",
        f"/webhooks/{endpoint.pk}/",
        f"/webhooks/{endpoint.pk}/bearbeiten/",
        f"/webhooks/zustellungen/{delivery.pk}/",
    ]


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("alice", 403), ("fulfiller", 403), ("manager", 403)],
)
def test_only_it_admins_see_the_pages(org, client, endpoint, failed_delivery, who, status):
    client.force_login(getattr(org, who).user)
    for url in page_urls(endpoint, failed_delivery):
        assert client.get(url).status_code == status, url


def test_controlling_and_anonymous_users_are_kept_out(org, client, endpoint, failed_delivery):
    org.alice.user.groups.add(org.controlling)
    client.force_login(org.alice.user)
    for url in page_urls(endpoint, failed_delivery):
        assert client.get(url).status_code == 403, url
    client.logout()
    response = client.get("/webhooks/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "url",
    [
        "/webhooks/neu/",
        "/webhooks/{pk}/bearbeiten/",
        "/webhooks/{pk}/rotate-secret/",
        "/webhooks/{pk}/test/",
        "/webhooks/zustellungen/{delivery}/erneut-senden/",
    ],
)
def test_employees_cannot_change_anything(org, client, endpoint, failed_delivery, url):
    client.force_login(org.alice.user)
    url = url.format(pk=endpoint.pk, delivery=failed_delivery.pk)
    assert client.post(url, VALID).status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.stadt.example/a"
    assert WebhookEndpoint.objects.count() == 1
    assert WebhookDelivery.objects.get().state == DeliveryState.FAILED


def test_the_secret_is_shown_once_after_registration(org, client):
    client.force_login(org.admin.user)
    response = client.post("/webhooks/neu/", VALID)
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/webhooks/{endpoint.pk}/"
    assert endpoint.url == VALID["url"]
    assert endpoint.description == "Intranet der Stadt"
    assert endpoint.is_active
    assert sorted(endpoint.subscriptions.values_list("event_type", flat=True)) == [
        "entitlement.revoked",
        "request.approved",
    ]
    assert endpoint.created_by == org.admin.user
    first = client.get(response["Location"])
    assert endpoint.secret in first.content.decode()
    assert "no-store" in first["Cache-Control"]
    again = client.get(response["Location"]).content.decode()
    assert endpoint.secret not in again
    assert client.get("/webhooks/").content.decode().count(VALID["url"]) == 1


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_for_a_while(
    org, client, endpoint
):
    old = endpoint.secret
    client.force_login(org.admin.user)
    response = client.post(f"/webhooks/{endpoint.pk}/rotate-secret/", follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    page = response.content.decode()
    assert endpoint.secret in page
    assert old not in page
    assert endpoint.secret not in client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    # The secret of one endpoint is never shown on another's page.
    other, _secret = services.endpoint_create(
        url="https://other.stadt.example/", events=["request.failed"], user=None
    )
    client.post(f"/webhooks/{endpoint.pk}/rotate-secret/")
    endpoint.refresh_from_db()
    assert endpoint.secret not in client.get(f"/webhooks/{other.pk}/").content.decode()


def test_editing_changes_url_events_and_state(org, client, endpoint):
    client.force_login(org.admin.user)
    response = client.get(f"/webhooks/{endpoint.pk}/bearbeiten/")
    assert 'value="request.failed"' in response.content.decode()
    data = {"url": "https://neu.stadt.example/x?source=itp", "events": ["request.rejected"]}
    response = client.post(f"/webhooks/{endpoint.pk}/bearbeiten/", data)
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://neu.stadt.example/x?source=itp"
    assert not endpoint.is_active
    assert list(endpoint.subscriptions.values_list("event_type", flat=True)) == ["request.rejected"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "This field is required."),
        ("http://hooks.stadt.example/x", "must start with https://"),
        ("ftp://hooks.stadt.example/x", "must start with https://"),
        ("hooks.stadt.example/x", "must start with https://"),
        ("https://user:geheim@hooks.stadt.example/x", "must not contain a user name or password"),
        ("https://hooks.stadt.example/x#top", "must not contain a fragment"),
        ("https://hooks stadt.example/x", "spaces or control characters"),
        ("https://hooks.stadt.example:99999/x", "not a valid URL"),
        ("https://hooks.stadt.example:0/x", "not a valid URL"),
        ("https://bürgeramt.example:8443/x\x00", "Null characters are not allowed."),
        ("https://[::1/x", "not a valid URL"),
        ("https:///x", "no host name"),
        ("https://hooks_$.example/x", "host name is not valid"),
        ("https://127.0.0.1/x", "internal"),
        ("https://localhost:8443/x", "internal"),
        ("https://10.1.2.3/x", "internal"),
        ("https://192.168.0.10/x", "internal"),
        ("https://169.254.169.254/latest/meta-data", "internal"),
        ("https://[::1]/x", "internal"),
        ("https://[fe80::1]/x", "internal"),
        ("https://[::ffff:10.0.0.1]/x", "internal"),
        ("https://0.0.0.0/x", "internal"),
        ("https://100.64.0.1/x", "internal"),
        ("https://example.org/" + "a" * 500, "at most 500 characters"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_message(org, client, url, message):
    client.force_login(org.admin.user)
    response = client.post("/webhooks/neu/", {**VALID, "url": url})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize(
    ("events", "message"),
    [([], "Please choose at least one event."), (["webhook.test"], "Select a valid choice")],
)
def test_events_must_be_chosen_from_the_list(org, client, events, message):
    client.force_login(org.admin.user)
    response = client.post("/webhooks/neu/", {**VALID, "events": events})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_services_refuse_what_the_form_would_refuse(org):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.endpoint_create(
            url="https://10.0.0.1/", events=["webhook.test"], description="x" * 201, user=None
        )
    assert set(exc.value.message_dict) == {"url", "events", "description"}


def test_allowed_networks_and_http_are_the_operators_choice(org, client, settings):
    client.force_login(org.admin.user)
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    response = client.post("/webhooks/neu/", {**VALID, "url": "https://10.20.30.40/hook"})
    assert response.status_code == 302
    response = client.post("/webhooks/neu/", {**VALID, "url": "https://10.21.0.1/hook"})
    assert "internal" in response.content.decode()
    allow_local_receiver(settings)
    response = client.post("/webhooks/neu/", {**VALID, "url": "http://127.0.0.1:9/hook"})
    assert response.status_code == 302
    assert WebhookEndpoint.objects.count() == 2


def test_send_test_event_and_redeliver_from_the_pages(org, client, endpoint, failed_delivery):
    client.force_login(org.admin.user)
    response = client.post(f"/webhooks/{endpoint.pk}/test/", follow=True)
    assert response.status_code == 200
    assert WebhookDelivery.objects.filter(event__event_type="webhook.test").count() == 2
    page = client.get(f"/webhooks/zustellungen/{failed_delivery.pk}/").content.decode()
    assert "HTTP 410: gone" in page
    assert "&quot;type&quot;: &quot;webhook.test&quot;" in page  # the payload, escaped
    response = client.post(
        f"/webhooks/zustellungen/{failed_delivery.pk}/erneut-senden/", follow=True
    )
    assert response.status_code == 200
    failed_delivery.refresh_from_db()
    assert failed_delivery.state == DeliveryState.PENDING
    # A second click: a clear message, not an error page.
    response = client.post(
        f"/webhooks/zustellungen/{failed_delivery.pk}/erneut-senden/", follow=True
    )
    assert "Only failed deliveries can be sent again." in response.content.decode()


def test_unknown_objects_and_actions(org, client, endpoint):
    client.force_login(org.admin.user)
    assert client.get("/webhooks/999999/").status_code == 404
    assert client.get("/webhooks/999999/bearbeiten/").status_code == 404
    assert client.post("/webhooks/999999/test/").status_code == 404
    assert client.get(f"/webhooks/zustellungen/{uuid.uuid4()}/").status_code == 404
    assert client.get("/webhooks/zustellungen/not-a-uuid/").status_code == 404
    assert client.post(f"/webhooks/{endpoint.pk}/delete-everything/").status_code == 403
    assert client.get("/webhooks/?is_active=maybe&q=%00").status_code == 200
    response = client.get(f"/webhooks/{endpoint.pk}/?state=nonsense&event_type=x&page=abc")
    assert response.status_code == 200


def test_delivery_log_filters_by_state(org, client, endpoint, failed_delivery):
    client.force_login(org.admin.user)
    with_failed = client.get(f"/webhooks/{endpoint.pk}/?state=failed").content.decode()
    assert f"/webhooks/zustellungen/{failed_delivery.pk}/" in with_failed
    delivered = client.get(f"/webhooks/{endpoint.pk}/?state=delivered").content.decode()
    assert f"/webhooks/zustellungen/{failed_delivery.pk}/" not in delivered


def test_list_queries_do_not_grow_with_endpoints(org, client, django_assert_num_queries):
    client.force_login(org.admin.user)
    for index in range(2):
        services.endpoint_create(
            url=f"https://h{index}.stadt.example/", events=["request.failed"], user=None
        )
    client.get("/webhooks/")  # warm up session and permissions caches
    with CaptureQueriesContext(connection) as few:
        client.get("/webhooks/")
    for index in range(2, 12):
        services.endpoint_create(
            url=f"https://h{index}.stadt.example/",
            events=["request.failed", "request.approved"],
            user=None,
        )
    with django_assert_num_queries(len(few.captured_queries)):
        client.get("/webhooks/")


def test_all_wrong_fields_are_reported_at_once(org, client):
    client.force_login(org.admin.user)
    response = client.post("/webhooks/neu/", {"url": "https://10.0.0.1/", "events": []})
    page = response.content.decode()
    assert "is internal" in page
    assert "Please choose at least one event." in page


def test_delivery_log_queries_do_not_grow_with_deliveries(
    org, client, endpoint, django_assert_num_queries, django_capture_on_commit_callbacks
):
    client.force_login(org.admin.user)
    with django_capture_on_commit_callbacks(execute=False):
        services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    client.get(f"/webhooks/{endpoint.pk}/")  # warm up session and permissions caches
    with CaptureQueriesContext(connection) as few:
        client.get(f"/webhooks/{endpoint.pk}/")
    with django_capture_on_commit_callbacks(execute=False):
        for _index in range(10):
            services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(f"/webhooks/{endpoint.pk}/")
    assert response.content.decode().count("/webhooks/zustellungen/") == 11
