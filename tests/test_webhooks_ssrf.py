"""Webhook addresses: IPv6 forms that embed an internal IPv4 address are refused.

Both when the endpoint is saved (a literal address in the URL) and when a delivery is
about to connect (a host name whose DNS answer is such an address). The resolver is the
only stand-in here: the DNS of the test machine cannot be told what to answer.
"""

import ipaddress
import socket

import pytest

from webhooks import addresses, services
from webhooks.choices import DeliveryState, EventType
from webhooks.models import WebhookAttempt, WebhookEndpoint

pytestmark = pytest.mark.django_db

METADATA = "169.254.169.254"

# Every form of an internal IPv4 address inside an IPv6 one, with the IPv4 it stands for.
EMBEDDED_INTERNAL = [
    ("64:ff9b::a9fe:a9fe", METADATA),  # NAT64, well-known prefix
    ("64:ff9b::a00:1", "10.0.0.1"),
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b:1::808:808", None),  # NAT64 local-use prefix: internal whatever it embeds
    ("::a9fe:a9fe", METADATA),  # IPv4-compatible
    ("::7f00:1", "127.0.0.1"),
    ("::ffff:a9fe:a9fe", METADATA),  # IPv4-mapped
    ("::ffff:0:a9fe:a9fe", METADATA),  # IPv4-translated (SIIT)
    ("::ffff:0:c0a8:1", "192.168.0.1"),
    ("2002:a9fe:a9fe::1", METADATA),  # 6to4
    ("2002:a00:1::", "10.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo (client obfuscated)
]
EMBEDDED_PUBLIC = ["64:ff9b::808:808", "::ffff:808:808", "::ffff:0:808:808", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_INTERNAL)
def test_embedded_internal_ipv4_is_refused_when_saved(org, client, settings, address, ipv4):
    settings.WEBHOOKS_ALLOW_HTTP = True  # the URLs were http://
    client.force_login(org.admin.user)
    response = client.post(
        "/webhooks/neu/",
        {"url": f"http://[{address}]/", "description": "x", "events": ["request.approved"]},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert f"The address {ipaddress.ip_address(address)}" in text
    assert "the portal does not send webhooks there" in text
    if ipv4 is not None:
        assert ipv4 in text or "internal" in text
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize("address", EMBEDDED_PUBLIC)
def test_embedded_public_ipv4_is_a_public_address(address):
    assert addresses.address_problem(ipaddress.ip_address(address)) is None


def test_allowed_networks_apply_to_the_embedded_address(settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert addresses.address_allowed(ipaddress.ip_address("::ffff:10.20.0.5"))
    assert not addresses.address_allowed(ipaddress.ip_address("::ffff:10.21.0.5"))


@pytest.fixture
def dns(monkeypatch):
    """``dns.answer = "addr"``: what the resolver returns for every name from now on."""

    class Resolver:
        answer = "8.8.8.8"

        def __call__(self, host, port, *args, **kwargs):
            family = socket.AF_INET6 if ":" in self.answer else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (self.answer, port))]

    resolver = Resolver()
    monkeypatch.setattr(addresses.socket, "getaddrinfo", resolver)
    return resolver


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_INTERNAL)
def test_embedded_internal_ipv4_is_refused_at_delivery(
    org, dns, django_capture_on_commit_callbacks, address, ipv4
):
    # Public when saved; the name later resolves to an internal address in disguise.
    endpoint, _secret = services.endpoint_create(
        url="https://hooks.stadt.example/x", events=[EventType.REQUEST_FAILED], user=None
    )
    with django_capture_on_commit_callbacks(execute=False):
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=org.admin.user)
    dns.answer = address
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert str(ipaddress.ip_address(address)) in delivery.last_error
    if ipv4 is not None and not address.startswith("::"):
        assert ipv4 in delivery.last_error
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None  # never connected
