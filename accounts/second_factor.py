"""The second factor (django-otp): TOTP apps and one-time recovery codes.

Required for IT admins and superusers, on every page including the admin site and the API
token page; optional for everyone else, and required for them too once they set it up.
Whether a session still needs a code is decided here, in one place, for the middleware.
"""

from __future__ import annotations

import base64
import logging

import segno
from django.db import transaction
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from accounts.models import EncryptedTOTPDevice
from itportal.roles import is_it_admin

logger = logging.getLogger("accounts.login")

# Set at login: whether the person has a confirmed device (so the check needs no query).
ENROLLED_SESSION_KEY = "accounts_otp_enrolled"
RECOVERY_CODES = 10
TOTP_NAME = "app"
RECOVERY_NAME = "recovery"


def required_for(user) -> bool:
    """IT admins and superusers must use a second factor."""
    return user.is_superuser or is_it_admin(user)


def verification_needed(request) -> bool:
    """The logged-in person must still give a code in this session."""
    user = request.user
    if not user.is_authenticated or user.is_verified():
        return False
    return required_for(user) or bool(request.session.get(ENROLLED_SESSION_KEY))


def remember_enrolment(request, user) -> None:
    request.session[ENROLLED_SESSION_KEY] = user_has_device(user)


def is_enrolled(user) -> bool:
    return EncryptedTOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def pending_device(user) -> EncryptedTOTPDevice:
    """The app being set up: one unconfirmed TOTP device, kept until it is confirmed."""
    device = EncryptedTOTPDevice.objects.devices_for_user(user, confirmed=False).first()
    return device or EncryptedTOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def qr_code(device: EncryptedTOTPDevice) -> str:
    """The device's otpauth:// URL as an SVG data URI (no external service, CSP-safe)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)


def secret_for_typing(device: EncryptedTOTPDevice) -> str:
    """The key in base32, in groups of four, for apps without a camera."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@transaction.atomic
def totp_confirm(*, request, token: str) -> list[str] | None:
    """Confirm the pending app with a code from it; returns new recovery codes, or None
    when the code is wrong. Replaces an earlier app and earlier recovery codes."""
    user = request.user
    device = (
        EncryptedTOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    )
    if device is None or not device.verify_token(_clean(token)):
        return None
    EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(user)
    otp_login(request, device)
    request.session[ENROLLED_SESSION_KEY] = True
    logger.info("second factor set up: user=%s", user.get_username())
    return codes


def recovery_codes_renew(*, user) -> list[str]:
    with transaction.atomic():
        codes = _new_recovery_codes(user)
    logger.info("recovery codes renewed: user=%s", user.get_username())
    return codes


def _new_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def verify(*, request, token: str) -> bool:
    """Check a code from the app or a recovery code (used once); marks the session."""
    token = _clean(token)
    if not token:
        return False
    with transaction.atomic():
        for device in devices_for_user(request.user, for_verify=True):
            if device.verify_token(token):
                otp_login(request, device)
                kind = "recovery code" if isinstance(device, StaticDevice) else "app"
                logger.info("second factor given: user=%s by %s", request.user, kind)
                return True
    logger.warning("second factor wrong: user=%s", request.user.get_username())
    return False


def reset(*, user, by) -> int:
    """Remove every device of ``user`` (lost phone); they set up a new one at next login."""
    if user.is_superuser and not by.is_superuser:
        raise PermissionError("only a superuser resets a superuser's second factor")
    removed = 0
    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
        removed += 1
    logger.warning(
        "second factor reset: user=%s by=%s (%d devices)", user.get_username(), by, removed
    )
    return removed


def _clean(token: str) -> str:
    return "".join(str(token or "").split()).lower()[:16]
