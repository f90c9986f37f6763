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


def account_for_sso_name(name: str):
    """The portal account of the person an identity provider names ``name`` (its user-name
    claim): their personnel number or their user name, in any case."""
    name = (name or "").replace("\x00", "").strip()[:150]
    employee = None
    if name:
        employee = (
            Employee.objects.select_related("user").filter(personnel_number__iexact=name).first()
        ) or (Employee.objects.select_related("user").filter(user__username__iexact=name).first())
    return _usable(employee, source="single sign-on")


def assign_roles(user, *, memberships, role_groups: dict[str, str]) -> None:
    """Give ``user`` each role whose configured group is among ``memberships`` (directory
    DNs or the provider's group names, without regard to case); take the others away.
    A role without a configured group is left as it is."""
    from django.contrib.auth.models import Group

    from itportal import roles

    held = {str(m).lower() for m in memberships}
    for role, group_name in role_groups.items():
        if not group_name:
            continue
        group = Group.objects.get_or_create(name=role)[0]
        if group_name.lower() in held:
            user.groups.add(group)
            if role == roles.IT_ADMIN and not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
        else:
            user.groups.remove(group)
