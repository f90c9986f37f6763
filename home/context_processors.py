import time

from django.conf import settings
from django.utils.functional import SimpleLazyObject

from home.selectors import nav_counts
from itportal import session_copies

# The navigation's counts, kept in the session for PORTAL_NAV_COUNTS_SECONDS.
SESSION_KEY = session_copies.NAV_COUNTS


def navigation(request):
    """``nav``: the counts and applicable menus of the header, queried only if a page shows
    them (error pages and anonymous visitors cost none)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {}}
    return {"nav": SimpleLazyObject(lambda: session_nav_counts(request))}


def session_nav_counts(request) -> dict:
    """The header's counts, at most ``PORTAL_NAV_COUNTS_SECONDS`` old.

    Building the counts' query costs more CPU than the rest of a list page (a dozen
    subqueries through the ORM), and the header is on every page, so a session keeps them
    for a short while: one's own changes show at once (home.middleware drops the copy on
    every POST), what others do shows within the period, the start page always counts
    afresh. The session is saved anyway about once a minute (accounts.middleware).
    """
    user = request.user
    max_age = settings.PORTAL_NAV_COUNTS_SECONDS
    session = getattr(request, "session", None)
    if not max_age or session is None:
        return nav_counts(user)
    now = time.time()
    fresh = getattr(user, "_portal_nav_counts", None)  # counted in this request already
    stored = session.get(SESSION_KEY)
    if (
        fresh is None
        and stored
        and stored.get("user") == user.pk
        and 0 <= now - stored.get("at", 0) < max_age
    ):
        user._portal_nav_counts = stored["counts"]
        return stored["counts"]
    counts = fresh if fresh is not None else nav_counts(user)
    if not stored or stored.get("counts") != counts or now - stored.get("at", 0) >= max_age:
        session[SESSION_KEY] = {"user": user.pk, "at": now, "counts": counts}
    return counts
