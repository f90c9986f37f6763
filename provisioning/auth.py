"""Log in with directory credentials (LDAP bind through ldap3).

The service account finds the person's entry by uid or any alias (escaped, matched
as the directory matches: without regard to case); then a bind with the person's
own DN and password proves the password. The entry is mapped onto the one portal
account the directory sync linked to it (accounts.identity): however the name was
typed, one person has one account, and nobody gets a new one by logging in. Local
Django accounts (superusers, people kept only in the portal) are never opened by
the directory; ModelBackend checks their own password. Membership of configured
directory groups grants the IT-admin and controlling roles to that one account.
"""

from __future__ import annotations

import logging

import ldap3
from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from accounts.identity import LoginRefused, account_for_directory_entry, assign_roles, refuse
from itportal import roles
from provisioning.backends import get_backend
from provisioning.backends.base import filter_value
from provisioning.backends.errors import DirectoryError

logger = logging.getLogger(__name__)


def _first(attributes: dict, name: str) -> str:
    value = attributes.get(name) or [""]
    return str(value[0]) if isinstance(value, list) else str(value)


class DirectoryBackend(ModelBackend):
    """Authenticate against the directory; keep the Django user in step with it."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password or not settings.DIRECTORY.get("url"):
            return None
        if len(username) > 150 or "\x00" in username or "\x00" in password:
            return None
        backend = get_backend()
        try:
            found = backend.search(
                backend.config.user_base,
                f"(&(objectClass={backend.user_object_classes[-1]})"
                f"({backend.uid_attribute}={filter_value(username)}))",
                attributes=["givenName", "sn", "mail", "memberOf"],
            )
        except DirectoryError as exc:
            logger.warning("directory login lookup failed: %s", exc.message)
            return None
        if len(found) != 1:
            # None, or an alias two entries share: nobody can prove which person it is.
            if found:
                logger.warning("directory login name %r matches %d entries", username, len(found))
            return None
        dn, attributes = found[0]
        try:
            connection = ldap3.Connection(
                backend.server(),
                user=dn,
                password=password,
                receive_timeout=backend.config.timeout,
                raise_exceptions=False,
            )
            if backend.config.tls == "starttls":
                connection.open()
                connection.start_tls()
            bound = connection.bind()
            connection.unbind()
        except ldap3.core.exceptions.LDAPException as exc:
            logger.warning("directory login bind failed: %s", type(exc).__name__)
            return None
        if not bound:
            return None
        try:
            user = account_for_directory_entry(dn)
        except LoginRefused as refusal:
            refuse(request, refusal, source="directory", name=username)
            return None
        return self._update_user(user, attributes)

    def _update_user(self, user, attributes: dict):
        user.first_name = _first(attributes, "givenName")[:150]
        user.last_name = _first(attributes, "sn")[:150]
        user.email = _first(attributes, "mail")[:254]
        user.save(update_fields=["first_name", "last_name", "email"])
        assign_roles(
            user,
            memberships=attributes.get("memberOf", []),
            role_groups={
                roles.IT_ADMIN: settings.DIRECTORY_IT_ADMIN_GROUP,
                roles.CONTROLLING: settings.DIRECTORY_CONTROLLING_GROUP,
            },
        )
        return user
