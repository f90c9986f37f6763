from django.conf import settings

from itportal.roles import is_controlling, is_data_protection_officer, is_it_admin


def portal(request):
    user = getattr(request, "user", None)
    return {
        "PORTAL_CITY_NAME": settings.PORTAL_CITY_NAME,
        "is_it_admin": bool(user and is_it_admin(user)),
        "is_controlling": bool(user and is_controlling(user)),
        "is_data_protection_officer": bool(user and is_data_protection_officer(user)),
    }
