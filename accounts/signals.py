"""Every login, failed login and logout goes to the ``accounts.login`` log, never a password."""

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.addresses import client_ip
from accounts.middleware import mark_seen

logger = logging.getLogger("accounts.login")


def _address(request) -> str:
    return client_ip(request) if request is not None else "-"


@receiver(user_logged_in, dispatch_uid="accounts.log_login")
def log_login(sender, request, user, **kwargs):
    mark_seen(request)
    if getattr(request, "session", None) is not None:
        from accounts.second_factor import remember_enrolment

        remember_enrolment(request, user)
    logger.info("login succeeded: user=%s address=%s", user.get_username(), _address(request))


@receiver(user_login_failed, dispatch_uid="accounts.log_login_failed")
def log_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in ``credentials``; only the name is logged.
    name = str(credentials.get("username", ""))[:150]
    logger.warning("login failed: name=%r address=%s", name, _address(request))


@receiver(user_logged_out, dispatch_uid="accounts.log_logout")
def log_logout(sender, request, user, **kwargs):
    if user is not None:
        logger.info("logout: user=%s address=%s", user.get_username(), _address(request))
