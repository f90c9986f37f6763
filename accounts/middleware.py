"""Sessions that end when idle; authenticated answers never kept in a cache."""

import time

from django.contrib.auth import SESSION_KEY
from django.utils.cache import add_never_cache_headers

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
        if (user is not None and user.is_authenticated) or request.path.startswith("/api/"):
            add_never_cache_headers(response)
        return response
