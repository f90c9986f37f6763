"""Which endpoint URLs and addresses the portal may send to (SSRF protection).

A webhook URL is typed in by an IT admin, and the portal's worker then connects to it
from inside the city network. So the portal refuses, both when the URL is saved and
again before every delivery (names can change their address):

- any scheme but ``https`` (``http`` only with ``WEBHOOKS_ALLOW_HTTP``, for tests and the
  demo), credentials in the URL, fragments;
- addresses that are not public: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback,
  link-local (169.254/16 with cloud metadata services, fe80::/10), shared (100.64/10),
  reserved, multicast and unspecified ones — unless they lie in a network listed in
  ``WEBHOOKS_ALLOWED_NETWORKS`` (e.g. the segment of the city's own receiving systems).
  Multicast and unspecified addresses are refused always.
- IPv6 forms that carry an IPv4 address inside: IPv4-mapped (``::ffff:a.b.c.d``),
  IPv4-translated (``::ffff:0:a.b.c.d``) and IPv4-compatible (``::a.b.c.d``) addresses are
  judged as that IPv4 address; NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo
  (``2001::/32``) reach it through a gateway, so the embedded address must be allowed as
  well. The local-use NAT64 prefix ``64:ff9b:1::/48`` is internal by definition.

The delivery connects to the very address checked here (no second lookup the DNS could
answer differently) and follows no redirects.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL or the address it resolves to may not receive webhooks; str() says why."""


class Unresolvable(OSError):
    """The host name has no address right now (transient for a delivery)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, lower case, IDNA-encoded; IPv6 without brackets
    port: int
    path: str  # path and query, at least "/"

    @property
    def host_is_address(self) -> bool:
        return _as_address(self.host) is not None

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL with the host replaced by one checked address."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def _as_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in settings.WEBHOOKS_ALLOWED_NETWORKS]


_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, never public


def _last_32_bits(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def same_host_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for on the same host (mapped, translated,
    compatible), or None."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_TRANSLATED:
        return _last_32_bits(address)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # "::" and "::1" are themselves
        return _last_32_bits(address)
    return None


def gateway_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a translation gateway would forward to (NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address in _NAT64:
        return [_last_32_bits(address)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def _plain_allowed(address: IPAddress) -> bool:
    if address.is_multicast or address.is_unspecified:
        return False
    if any(address in network for network in allowed_networks()):
        return True
    if address in _NAT64_LOCAL:
        return False
    return address.is_global


def address_problem(address: IPAddress) -> str | None:
    """Why the portal may not send to ``address``, or None if it may."""
    shown = address
    address = same_host_ipv4(address) or address
    for embedded in gateway_ipv4(address):
        if not _plain_allowed(embedded):
            return _(
                "The address %(address)s leads to the internal IPv4 address %(ipv4)s; "
                "the portal does not send webhooks there."
            ) % {"address": shown, "ipv4": embedded}
    if not _plain_allowed(address):
        return _(
            "The address %(address)s is internal (private, loopback or link-local); "
            "the portal does not send webhooks there."
        ) % {"address": shown}
    return None


def address_allowed(address: IPAddress) -> bool:
    return address_problem(address) is None


def parse(url: str) -> Target:
    """Check the URL's form; raises UnsafeURL with a message for the user."""
    url = (url or "").strip()
    if not url:
        raise UnsafeURL(_("Please enter a URL."))
    if len(url) > 500:
        raise UnsafeURL(_("The URL is too long (at most 500 characters)."))
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise UnsafeURL(_("The URL must not contain spaces or control characters."))
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:
        raise UnsafeURL(_("This is not a valid URL.")) from exc
    scheme = parts.scheme.lower()
    if scheme == "http" and not settings.WEBHOOKS_ALLOW_HTTP:
        raise UnsafeURL(_("The URL must start with https:// (encrypted)."))
    if scheme not in ("https", "http"):
        raise UnsafeURL(_("The URL must start with https:// (encrypted)."))
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(
            _("The URL must not contain a user name or password; the signature authenticates.")
        )
    if parts.fragment or url.endswith("#"):
        raise UnsafeURL(_("The URL must not contain a fragment (#…)."))
    if not hostname:
        raise UnsafeURL(_("The URL has no host name."))
    if port == 0:
        raise UnsafeURL(_("This is not a valid URL."))
    if _as_address(hostname) is None:
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise UnsafeURL(_("The host name is not valid.")) from exc
        labels = hostname.rstrip(".").split(".")
        if not all(
            label and len(label) <= 63 and all(c.isalnum() or c == "-" for c in label)
            for label in labels
        ):
            raise UnsafeURL(_("The host name is not valid."))
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        scheme=scheme,
        host=hostname,
        port=port or (443 if scheme == "https" else 80),
        path=path,
    )


def resolve(target: Target) -> list[IPAddress]:
    """The target's addresses; UnsafeURL if any of them is not allowed."""
    literal = _as_address(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise Unresolvable(
                _("The host name %(host)s cannot be resolved.") % {"host": target.host}
            ) from exc
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if address not in addresses:
                addresses.append(address)
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            raise UnsafeURL(problem)
    return addresses


def check_url(url: str) -> Target:
    """The check when an endpoint is saved: form, and the address if the name resolves now.

    A name that does not resolve yet is accepted (the receiving system may not be in the
    DNS yet); every delivery resolves and checks it again.
    """
    target = parse(url)
    with contextlib.suppress(Unresolvable):
        resolve(target)
    return target
