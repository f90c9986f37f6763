from django.conf import settings

from itportal.roles import is_controlling, is_data_protection_officer, is_it_admin


def portal(request):
    user = getattr(request, "user", None)
    return {
        "PORTAL_CITY_NAME": settings.PORTAL_CITY_NAME,
        "PORTAL_LOGO": settings.PORTAL_LOGO,
        "PORTAL_KOPFZEILE": settings.PORTAL_KOPFZEILE,
        "BRANDING_CSS_VERSION": settings.BRANDING_CSS_VERSION,
        "is_it_admin": bool(user and is_it_admin(user)),
        "is_controlling": bool(user and is_controlling(user)),
        "is_data_protection_officer": bool(user and is_data_protection_officer(user)),
        # Kept in the session by the ordering pages (no query per page for the badge).
        "cart_count": _session_value(request, "cart_count"),
    }


def _session_value(request, key):
    session = getattr(request, "session", None)
    return session.get(key) if session is not None else None
