"""``/metrics``: the Prometheus exposition, for the monitoring server only."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metrics.collectors import DatabaseCollector
from metrics.prometheus import scrape_registry


def _bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _address_allowed(request) -> bool:
    """The peer address (REMOTE_ADDR, not a forwarded header) is in METRICS_ALLOWED_IPS."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for entry in settings.METRICS_ALLOWED_IPS:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def access_allowed(request) -> bool:
    """A correct bearer token from anywhere, or no token from an allowed address.

    A wrong token is refused even from an allowed address.
    """
    token = _bearer_token(request)
    expected = settings.METRICS_TOKEN
    if token is not None:
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())
    return _address_allowed(request)


@login_not_required
@never_cache
@require_GET
def metrics(request):
    if not access_allowed(request):
        raise PermissionDenied(_("Metrics are only available to the monitoring server."))
    registry = scrape_registry(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
