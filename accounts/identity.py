"""One account per person: a login proven by the directory or an identity provider is
mapped onto the employee's one portal account, never onto a new or a local one.

The backends prove *who* logged in (a directory bind, an OpenID Connect token); these
functions decide *which portal account* that person is, and refuse with a message the
login page shows when the answer is "none".
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from catalogue.models import Employee

logger = logging.getLogger(__name__)

# The request attribute through which a backend hands its refusal to the login form.
REFUSAL_ATTRIBUTE = "login_refusal"


class LoginRefused(Exception):
    """The person proved their identity, but the portal will not let them in."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason  # short English tag for the log


def refuse(request, refusal: LoginRefused, *, source: str, name: str) -> None:
    """Log the refusal and leave its message for the login form."""
    logger.warning("%s login of %r refused: %s", source, name, refusal.reason)
    if request is not None:
        setattr(request, REFUSAL_ATTRIBUTE, refusal.message)


def _usable(employee: Employee | None, *, source: str):
    if employee is None:
        raise LoginRefused(
            _(
                "You are not registered in the portal yet. Please ask the IT service desk to "
                "add you; no account was created."
            ),
            reason=f"no employee for this {source} identity",
        )
    user = employee.user
    if user.is_superuser:
        # Superusers are local break-glass accounts: only their own password opens them.
        raise LoginRefused(
            _("This account can only log in with its local password."),
            reason="superuser account is local-only",
        )
    if not (employee.is_active and user.is_active):
        raise LoginRefused(
            _("Your access to the portal is deactivated. Please contact the IT service desk."),
            reason="deactivated in the portal",
        )
    return user


def account_for_directory_entry(dn: str):
    """The portal account of the person whose directory entry is ``dn``.

    Only an employee the directory sync linked to exactly this entry qualifies: people
    kept only in the portal and superusers are never opened by a directory password,
    whatever names or aliases the entry carries.
    """
    # The sync stores the DN exactly as the server returns it, as does the login search.
    employee = (
        Employee.objects.select_related("user").filter(directory_dn=dn).first() if dn else None
    )
    return _usable(employee, source="directory")
