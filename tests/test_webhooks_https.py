"""HTTPS delivery: the certificate is checked against the endpoint's host name although
the portal connects to the address it checked itself (no second DNS lookup).

A throwaway CA and a certificate for ``localhost`` only (no IP address in it) come from the
real ``openssl`` binary; the receiver serves TLS with Python's ssl module.
"""

import socket
import ssl
import subprocess

import pytest

from tests.webhook_support import Receiver, allow_local_receiver
from webhooks import services, signing
from webhooks.choices import DeliveryState, EventType

pytestmark = pytest.mark.django_db


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """CA, a leaf for ``localhost`` and one for another name, signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=Test CA Musterstadt",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    for name in ("localhost", "other.example"):
        (d / f"{name}.ext").write_text(
            f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d,
        )  # fmt: skip
    return d


def _tls(pki, name):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / f"{name}.pem", pki / f"{name}.key")
    return context


def _localhost_address() -> str:
    return socket.getaddrinfo("localhost", 443, type=socket.SOCK_STREAM)[0][4][0]


@pytest.fixture
def https_settings(settings, pki):
    allow_local_receiver(settings)
    settings.WEBHOOKS_ALLOW_HTTP = False  # https only, as in production
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.WEBHOOKS_CA_FILE = str(pki / "ca.pem")
    return settings


def _deliver(org, receiver, django_capture_on_commit_callbacks):
    endpoint, secret = services.endpoint_create(
        url=f"https://localhost:{receiver.port}/hooks/itportal",
        events=[EventType.REQUEST_APPROVED],
        user=org.admin.user,
    )
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
    delivery.refresh_from_db()
    return delivery, secret


def test_https_delivery_checks_the_certificate_against_the_host_name(
    org, pki, https_settings, django_capture_on_commit_callbacks
):
    with Receiver(host=_localhost_address(), tls=_tls(pki, "localhost")) as receiver:
        delivery, secret = _deliver(org, receiver, django_capture_on_commit_callbacks)
    assert delivery.state == DeliveryState.DELIVERED, delivery.last_error
    got = receiver.received[0]
    assert got.headers["host"] == f"localhost:{receiver.port}"
    assert signing.verify(
        secret, got.body, got.headers["itportal-timestamp"], got.headers["itportal-signature"]
    )


def test_a_certificate_for_another_name_is_refused(
    org, pki, https_settings, django_capture_on_commit_callbacks
):
    with Receiver(host=_localhost_address(), tls=_tls(pki, "other.example")) as receiver:
        delivery, _secret = _deliver(org, receiver, django_capture_on_commit_callbacks)
    assert delivery.state == DeliveryState.RETRYING
    assert delivery.last_error.startswith("TLS error")
    assert receiver.received == []


def test_an_untrusted_ca_is_refused(org, pki, https_settings, django_capture_on_commit_callbacks):
    https_settings.WEBHOOKS_CA_FILE = ""  # the system's CAs do not know the test CA
    with Receiver(host=_localhost_address(), tls=_tls(pki, "localhost")) as receiver:
        delivery, _secret = _deliver(org, receiver, django_capture_on_commit_callbacks)
    assert delivery.state == DeliveryState.RETRYING
    assert "certificate verify failed" in delivery.last_error
    assert receiver.received == []
