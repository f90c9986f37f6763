"""The HTTP side of a delivery: one POST to a checked address, nothing followed.

Connects to the address that ``webhooks.addresses`` checked (the name is resolved once,
so DNS cannot swap in an internal address between check and connect), sends the original
host name as ``Host`` and as TLS server name, verifies the certificate against that name,
ignores proxy variables of the environment and follows no redirect. Only the first KiB of
the answer is read, for the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from webhooks import addresses

RESPONSE_EXCERPT_BYTES = 1024


@dataclass
class Result:
    """What one POST gave: a status code, or an error before any answer."""

    status_code: int | None
    duration_ms: int
    error: str = ""
    transient: bool = False  # only for errors without a status code
    retry_after: float | None = None
    excerpt: str = ""


class _PinnedHostAdapter(HTTPAdapter):
    """TLS to an IP address, with SNI and certificate check for the endpoint's host name."""

    def __init__(self, server_hostname: str, **kwargs):
        self._server_hostname = server_hostname
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs["server_hostname"] = self._server_hostname
        pool_kwargs["assert_hostname"] = self._server_hostname
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def post(url: str, body: bytes, headers: dict[str, str]) -> Result:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = addresses.parse(url)
        address = addresses.resolve(target)[0]
    except addresses.Unresolvable as exc:
        return Result(None, elapsed(), error=str(exc), transient=True)
    except addresses.UnsafeURL as exc:
        return Result(None, elapsed(), error=str(exc), transient=False)

    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials from the environment
    if target.scheme == "https" and not target.host_is_address:
        session.mount("https://", _PinnedHostAdapter(target.host))
    timeout = (settings.WEBHOOKS_CONNECT_TIMEOUT, settings.WEBHOOKS_READ_TIMEOUT)
    try:
        with session.post(
            target.url_for(address),
            data=body,
            headers={**headers, "Host": target.host_header},
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            verify=settings.WEBHOOKS_CA_FILE or True,
        ) as response:
            try:
                raw = next(response.iter_content(RESPONSE_EXCERPT_BYTES), b"")
            except requests.exceptions.RequestException:
                raw = b""  # the status code counts; a body cut off does not matter
            return Result(
                response.status_code,
                elapsed(),
                retry_after=_retry_after(response),
                excerpt=raw[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace"),
            )
    except requests.exceptions.SSLError as exc:
        # A wrong or untrusted certificate does not fix itself within minutes, but an
        # admin may fix it: retried like other connection errors, visible in the log.
        return Result(None, elapsed(), error=f"TLS error: {exc}", transient=True)
    except requests.exceptions.Timeout:
        return Result(
            None,
            elapsed(),
            error=f"timeout (connect {timeout[0]} s, read {timeout[1]} s)",
            transient=True,
        )
    except requests.exceptions.ConnectionError as exc:
        return Result(None, elapsed(), error=f"connection error: {exc}", transient=True)
    except requests.exceptions.RequestException as exc:
        return Result(None, elapsed(), error=f"request error: {exc}", transient=False)
    finally:
        session.close()
