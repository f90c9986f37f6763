"""Reactions of the requests app to events of other apps."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver


@receiver(user_logged_in, dispatch_uid="requests_app.cart_count_at_login")
def cart_count_at_login(sender, request, user, **kwargs):
    """The header's cart badge reads the session; the cart lives on across logins."""
    from requests_app.ordering import CART_COUNT_KEY
    from requests_app.selectors import cart_count

    if request is not None and hasattr(request, "session"):
        request.session[CART_COUNT_KEY] = cart_count(user)
