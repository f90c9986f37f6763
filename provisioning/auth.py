"""Log in with directory credentials (LDAP bind through ldap3).

The service account finds the person's entry by uid (escaped); then a bind with
the person's own DN and password proves the password. Local Django accounts
stay usable through ModelBackend for break-glass administrators. Membership of
configured directory groups grants the IT-admin and controlling roles.
"""

from __future__ import annotations

import logging

import ldap3
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group

from itportal import roles
from provisioning.backends import get_backend
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
            entry = backend.find_user(username, attributes=["givenName", "sn", "mail", "memberOf"])
        except DirectoryError as exc:
            logger.warning("directory login lookup failed: %s", exc.message)
            return None
        if entry is None:
            return None
        try:
            connection = ldap3.Connection(
                backend.server(),
                user=entry.dn,
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
        user = self._update_user(username, entry.attributes, backend)
        return user if self.user_can_authenticate(user) else None

    def _update_user(self, username: str, attributes: dict, backend):
        User = get_user_model()
        user, _created = User.objects.get_or_create(username=username)
        user.first_name = _first(attributes, "givenName")[:150]
        user.last_name = _first(attributes, "sn")[:150]
        user.email = _first(attributes, "mail")[:254]
        if _created:
            user.set_unusable_password()  # the directory holds the password
        user.save()
        member_of = {str(dn).lower() for dn in attributes.get("memberOf", [])}
        role_groups = {
            roles.IT_ADMIN: settings.DIRECTORY_IT_ADMIN_GROUP,
            roles.CONTROLLING: settings.DIRECTORY_CONTROLLING_GROUP,
        }
        for role, group_dn in role_groups.items():
            if not group_dn:
                continue
            group = Group.objects.get_or_create(name=role)[0]
            if group_dn.lower() in member_of:
                user.groups.add(group)
                if role == roles.IT_ADMIN and not user.is_staff:
                    user.is_staff = True
                    user.save(update_fields=["is_staff"])
            else:
                user.groups.remove(group)
        return user
