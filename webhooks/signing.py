"""Signing deliveries, Stripe style: HMAC-SHA256 over ``"<timestamp>.<body>"``.

Headers of every delivery (docs/webhooks.md):

- ``Itportal-Timestamp``: Unix seconds when this attempt was signed;
- ``Itportal-Signature``: ``v1=<hex digest>``; during a secret rotation one ``v1=`` per
  valid secret, comma-separated — a receiver accepts the request if any of them matches.

Pure Python, no Django: receivers in Python can copy ``verify``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join(f"{SCHEME}={sign(secret, timestamp, body)}" for secret in secrets)


def verify(
    secret: str,
    body: bytes,
    timestamp_header: str,
    signature_header_value: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether the request was signed with ``secret`` within ``tolerance`` seconds."""
    try:
        timestamp = int(timestamp_header)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False  # a replayed old request
    expected = sign(secret, timestamp, body)
    for part in (signature_header_value or "").split(","):
        scheme, _sep, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value, expected):
            return True
    return False
