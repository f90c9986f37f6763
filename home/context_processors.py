from django.utils.functional import SimpleLazyObject

from home.selectors import nav_counts


def navigation(request):
    """``nav``: the counts and applicable menus of the header, queried only if a page shows
    them (one query; error pages and anonymous visitors cost none)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {}}
    return {"nav": SimpleLazyObject(lambda: nav_counts(user))}
