"""Writes of API tokens: create (the key is returned once) and revoke."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from api.models import ApiToken, hash_key
from catalogue.forms import reject_markup
from itportal.exceptions import ActionConflict
from itportal.inputs import validate_date_range

KEY_PREFIX = "itp_"
PREFIX_LENGTH = 12  # "itp_" and 8 characters: enough to tell tokens apart, useless to guess


def token_create(*, user, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with the key, which is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Please name the token.")})
    try:
        reject_markup(name)  # the name is shown on pages and in the admin
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    try:
        validate_date_range(expires_at)
    except ValidationError as exc:
        raise ValidationError({"expires_at": exc.messages}) from exc
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=key[:PREFIX_LENGTH],
        key_hash=hash_key(key),
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    return token, key


def token_revoke(*, token_id: int, user) -> ApiToken:
    """Revoke a token; the caller decides who may (own tokens, IT admins all)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id)
        if token.revoked_at is not None:
            raise ActionConflict(_("This token is already revoked."))
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
