"""Encryption at rest for secrets the portal must read back (webhook signing secrets).

Keys come from the environment (``FIELD_ENCRYPTION_KEYS``, comma-separated Fernet keys):
the first encrypts, every key decrypts, so a new key is put first, ``manage.py
rotate_encryption_keys`` re-encrypts every value with it, and the old key is dropped
afterwards (SECURITY.md, "Secrets at rest"). A database dump alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], fallback: str) -> MultiFernet:
    if not keys:
        if not fallback:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS must be set: the portal encrypts secrets at rest."
            )
        # Development only (DEBUG): a key derived from the development SECRET_KEY.
        keys = (base64.urlsafe_b64encode(hashlib.sha256(fallback.encode()).digest()).decode(),)
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    keys = tuple(k for k in settings.FIELD_ENCRYPTION_KEYS if k.strip())
    return _fernet(keys, settings.SECRET_KEY if settings.DEBUG else "")


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A value encrypted at rest cannot be decrypted with FIELD_ENCRYPTION_KEYS: "
            "was a key removed before rotate_encryption_keys ran?"
        ) from exc


def rotate(token: str) -> str:
    """The same value, encrypted with the first key."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column whose values are stored encrypted; Python sees the plain text.

    Not searchable or sortable in the database (the stored tokens are random); empty
    stays empty, so ``blank`` fields need no encryption.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)
