"""The TOTP device of the second factor, its key encrypted at rest."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator

from itportal.crypto import EncryptedTextField


class EncryptedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP app (django-otp's ``TOTPDevice``) whose shared key is stored encrypted with
    FIELD_ENCRYPTION_KEYS: a database dump or backup alone cannot make codes.

    The fields are django-otp's; the code checks, the throttling and the otpauth:// URL are
    django-otp's own methods, which read only these fields (the Fernet token is longer than
    django-otp's 80-character column, hence a model of our own rather than a changed column).
    """

    key = EncryptedTextField(_("key"), default=default_key, validators=[key_validator])
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = _("TOTP app")
        verbose_name_plural = _("TOTP apps")

    bin_key = TOTPDevice.bin_key
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings
