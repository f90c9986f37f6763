"""Sessions that end when idle; authenticated answers never kept in a cache."""

import contextlib
import threading
import time

from django.apps import apps
from django.contrib.auth import REDIRECT_FIELD_NAME, SESSION_KEY
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django_otp.middleware import OTPMiddleware as DjangoOTPMiddleware

from itportal.statements import MARK, MARK_32, CompiledRows

LAST_SEEN = "accounts_last_seen"


class IdleSessionMiddleware:
    """Keep a session alive while it is used; it ends ``SESSION_IDLE_TIMEOUT`` after the
    last request.

    The expiry is Django's own (``SESSION_COOKIE_AGE`` from the last save), so an idle
    session is gone on the server, not just forgotten by the browser. Saving on every
    request would cost a write per page; the session is refreshed at most once a minute.
    """

    REFRESH_SECONDS = 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_KEY):
            now = int(time.time())
            if now - session.get(LAST_SEEN, 0) >= self.REFRESH_SECONDS:
                session[LAST_SEEN] = now  # marks the session modified: saved with a new expiry
        return self.get_response(request)


def mark_seen(request) -> None:
    """At login the session is saved anyway: start the clock without an extra write."""
    if getattr(request, "session", None) is not None:
        request.session[LAST_SEEN] = int(time.time())


class NoStoreMiddleware:
    """Authenticated pages and every API answer carry ``Cache-Control: no-store``: a shared
    computer's browser cache or a proxy must not keep personal data after logout."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        private = (user is not None and user.is_authenticated) or request.path.startswith("/api/")
        if private and "no-store" not in response.get("Cache-Control", ""):
            add_never_cache_headers(response)
        return response


class SecondFactorMiddleware:
    """Until the second factor is given, a session that needs it reaches only the pages to
    give or set it up, logout and the language switch: the admin site, the API token page
    and everything else wait. API calls with the session get 403 (token calls do not pass
    here as a logged-in user: their tokens were made behind the second factor)."""

    OPEN_URL_NAMES = frozenset({"logout", "set_language", "healthz", "readyz"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from accounts import second_factor  # imports django-otp models: not at load time

        match = _resolve(request.path_info)
        open_page = match is not None and (
            match.url_name in self.OPEN_URL_NAMES or match.namespace == "second_factor"
        )
        if not open_page and second_factor.verification_needed(request):
            if request.path_info.startswith("/api/"):
                return JsonResponse(
                    {"detail": _("Give your second factor in the portal first.")}, status=403
                )
            return redirect_to_login(
                request.get_full_path(), reverse("second_factor:verify"), REDIRECT_FIELD_NAME
            )
        return self.get_response(request)


class OTPMiddleware(DjangoOTPMiddleware):
    """django-otp's middleware, the session's device read by a statement compiled once per
    device model (``device_by_persistent_id``): every page of a person with a second
    factor (all IT admins') built and compiled the same ``filter(id=…).first()``, 0.5 ms
    of its CPU. The checks that follow (the device is the user's and confirmed) are
    django-otp's own."""

    def _device_from_persistent_id(self, persistent_id: str):
        return device_by_persistent_id(self._normalize_persistent_id(persistent_id))


_DEVICE_ROWS: dict[type, CompiledRows] = {}  # one per device model: a handful
_DEVICE_ROWS_LOCK = threading.Lock()


def device_by_persistent_id(persistent_id: str):
    """``Device.from_persistent_id(persistent_id)``: the device of that model and id, or
    None (also for an id that names no device model)."""
    from django_otp.models import Device  # a model: not at load time

    with contextlib.suppress(ValueError, LookupError):
        model_label, device_id = persistent_id.rsplit("/", 1)
        app_label, model_name = model_label.split(".")
        model = apps.get_model(app_label, model_name)
        if issubclass(model, Device):
            rows = _DEVICE_ROWS.get(model)
            if rows is None:
                with _DEVICE_ROWS_LOCK:
                    rows = _DEVICE_ROWS.setdefault(model, _device_rows(model))
            found = rows(int(device_id))
            return found[0] if found else None
    return None


def _device_rows(model) -> CompiledRows:
    # As from_persistent_id reads it: its manager, by id, the first by primary key.
    # django-otp's own devices have 32-bit ids, ours 64-bit.
    mark = MARK if model._meta.pk.get_internal_type() == "BigAutoField" else MARK_32
    return CompiledRows(
        model, lambda number: model.objects.filter(id=number).order_by("pk")[:1], mark=mark
    )


def _resolve(path):
    try:
        return resolve(path)
    except Resolver404:
        return None
