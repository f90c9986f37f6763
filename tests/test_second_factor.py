"""The second factor (issue 13): TOTP required for IT admins and superusers on every page
(admin site and API token page included), optional for others, recovery codes, IT reset."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice as PlainTOTPDevice

from accounts.models import EncryptedTOTPDevice
from itportal.crypto import decrypt
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.second_factor]

LOGIN = "/accounts/login/"
VERIFY = "/konto/zweiter-faktor/pruefen/"
SETUP = "/konto/zweiter-faktor/einrichten/"
RESET = "/konto/zweiter-faktor-zuruecksetzen/"
PASSWORD = "test-pass-123"


def log_in(client, user):
    if user.groups.filter(name="IT-Administration").exists() and not user.is_staff:
        user.is_staff = True  # IT admins work in the admin site too (as in the demo)
        user.save(update_fields=["is_staff"])
    response = client.post(LOGIN, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302


def current_code(device: EncryptedTOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def set_up(client, user) -> list[str]:
    """Set up an app through the pages; returns the recovery codes shown."""
    page = client.get(SETUP)
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in page.content.decode()
    device = EncryptedTOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(SETUP, {"token": current_code(device), "next": "/admin/"})
    assert response.status_code == 200
    codes = list(StaticDevice.objects.get(user=user).token_set.values_list("token", flat=True))
    assert len(codes) == 10 and all(code in response.content.decode() for code in codes)
    return codes


def forget_failures(user):
    """django-otp waits longer after each wrong code; the tests do not wait."""
    past = timezone.now() - timedelta(hours=1)
    for model in (EncryptedTOTPDevice, StaticDevice):
        model.objects.filter(user=user).update(throttling_failure_timestamp=past)


@pytest.mark.parametrize("who", ["it_admin", "superuser"])
def test_admins_must_set_up_and_give_a_code_before_anything(client, org, who):
    user = org.admin.user
    if who == "superuser":
        user = UserFactory(username="root", is_superuser=True, is_staff=True)
    log_in(client, user)
    for url in ["/", "/admin/", "/konto/tokens/", "/antraege/"]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(VERIFY), url
    # Without a device the check page leads to the set-up.
    response = client.get(f"{VERIFY}?next=/admin/")
    assert response.status_code == 302 and response.url.startswith(SETUP)
    api = client.get("/api/v1/items/")
    assert api.status_code == 403 and "second factor" in api.json()["detail"]
    set_up(client, user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/konto/tokens/").status_code == 200
    assert client.get("/api/v1/items/").status_code == 200


def test_the_next_login_asks_for_a_code_and_recovery_codes_work_once(client, org):
    user = org.admin.user
    log_in(client, user)
    codes = set_up(client, user)
    client.post("/accounts/logout/")

    log_in(client, user)
    assert client.get("/admin/").url.startswith(VERIFY)
    wrong = client.post(VERIFY, {"token": "000000", "next": "/admin/"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    # Right after a wrong code django-otp refuses even a right one (throttling).
    assert client.post(VERIFY, {"token": codes[0]}).status_code == 400
    forget_failures(user)
    response = client.post(VERIFY, {"token": codes[0].upper(), "next": "/admin/"})
    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200
    client.post("/accounts/logout/")

    log_in(client, user)
    assert client.post(VERIFY, {"token": codes[0]}).status_code == 400  # used up
    forget_failures(user)
    assert client.post(VERIFY, {"token": codes[1]}).status_code == 302


def test_the_code_check_refuses_foreign_next_urls(client, org):
    user = org.admin.user
    log_in(client, user)
    codes = set_up(client, user)
    client.post("/accounts/logout/")
    log_in(client, user)
    response = client.post(VERIFY, {"token": codes[2], "next": "https://evil.example/"})
    assert response.status_code == 302 and response.url == "/"


def test_optional_for_employees_and_required_once_set_up(client, org):
    user = org.alice.user
    log_in(client, user)
    assert client.get("/antraege/").status_code == 200  # no second factor needed
    set_up(client, user)
    client.post("/accounts/logout/")
    log_in(client, user)
    assert client.get("/antraege/").url.startswith(VERIFY)


def test_replacing_the_app_needs_the_old_one_first(client, org):
    user = org.alice.user
    log_in(client, user)
    set_up(client, user)
    client.post("/accounts/logout/")
    log_in(client, user)
    response = client.get(SETUP)
    assert response.status_code == 302 and response.url.startswith(VERIFY)


def test_it_admin_resets_a_lost_second_factor(client, org):
    alice = org.alice.user
    log_in(client, alice)
    set_up(client, alice)
    client.post("/accounts/logout/")

    client.force_login(org.bob.user)
    assert client.get(RESET).status_code == 403

    admin = org.admin.user
    client.post("/accounts/logout/")
    log_in(client, admin)
    assert client.get(RESET).url.startswith(VERIFY)  # the reset page needs the factor too
    set_up(client, admin)
    response = client.post(RESET, {"username": "ALICE"}, follow=True)
    assert "was removed" in response.content.decode()
    assert not EncryptedTOTPDevice.objects.filter(user=alice).exists()
    assert not StaticDevice.objects.filter(user=alice).exists()
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    EncryptedTOTPDevice.objects.create(user=root, name="app", confirmed=True)
    response = client.post(RESET, {"username": "root"})
    assert response.status_code == 400 and "Only a superuser" in response.content.decode()
    assert EncryptedTOTPDevice.objects.filter(user=root).exists()
    assert client.post(RESET, {"username": "niemand"}).status_code == 400


def test_the_app_key_is_encrypted_at_rest(client, org):
    """A dump of the table cannot make codes: the stored key is a Fernet token."""
    user = org.alice.user
    device = EncryptedTOTPDevice.objects.create(user=user, name="app", confirmed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM accounts_encryptedtotpdevice WHERE id = %s", [device.pk])
        (stored,) = cursor.fetchone()
    assert device.key not in stored and stored.startswith("gAAAAA")
    assert decrypt(stored) == device.key
    # django-otp's own check works on the decrypted key, and a code is used once only.
    fresh = EncryptedTOTPDevice.objects.get(pk=device.pk)
    code = current_code(fresh)
    assert fresh.verify_token(code) and not fresh.verify_token(code)
    assert fresh.config_url.startswith("otpauth://totp/")


def test_plain_devices_move_into_the_encrypted_model(org):
    """The data migration: django-otp's plain rows move over, key and drift included."""
    user = org.alice.user
    plain = PlainTOTPDevice.objects.create(user=user, name="app", confirmed=True, drift=1)
    move = importlib.import_module("accounts.migrations.0002_move_totp_keys")
    move.forwards(django_apps, None)
    assert not PlainTOTPDevice.objects.exists()
    moved = EncryptedTOTPDevice.objects.get(user=user)
    assert (moved.key, moved.drift, moved.confirmed) == (plain.key, 1, True)
    move.backwards(django_apps, None)
    assert PlainTOTPDevice.objects.get(user=user).key == plain.key


def test_the_sessions_device_is_read_as_django_otp_reads_it(org):
    """accounts.middleware reads the session's device by a statement compiled once: the
    same device with the same values as django-otp's ``from_persistent_id``, in one query;
    None for a device that is gone, a model that is no device and an id that is no id."""
    from django.test.utils import CaptureQueriesContext
    from django_otp.models import Device

    from accounts.middleware import device_by_persistent_id

    user = org.alice.user
    app = EncryptedTOTPDevice.objects.create(user=user, name="app", confirmed=True)
    codes = StaticDevice.objects.create(user=user, name="recovery", confirmed=False)
    for device in (app, codes, app):
        expected = Device.from_persistent_id(device.persistent_id)
        with CaptureQueriesContext(connection) as queries:
            found = device_by_persistent_id(device.persistent_id)
        assert len(queries) == 1
        assert type(found) is type(expected) and found.pk == expected.pk
        fields = [field.attname for field in type(found)._meta.concrete_fields]
        assert [getattr(found, f) for f in fields] == [getattr(expected, f) for f in fields]
        assert not found._state.adding and found._state.db == "default"
    gone = app.persistent_id
    app.delete()
    for persistent_id in (gone, "auth.user/1", "nothing.here/1", "accounts.x", "no-slash"):
        assert device_by_persistent_id(persistent_id) is None
