"""Role checks of the API: the portal's own rules (itportal/roles.py), as DRF permissions."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from itportal.roles import is_controlling, is_it_admin


class IsItAdmin(permissions.BasePermission):
    message = _("Only IT administration may do this.")

    def has_permission(self, request, view):
        return is_it_admin(request.user)


class ItAdminWrites(permissions.BasePermission):
    """Everybody signed in reads; IT administration writes (the catalogue)."""

    message = _("Only IT administration manages the catalogue.")

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or is_it_admin(request.user)


class SeesControlling(permissions.BasePermission):
    message = _("Only IT controlling and IT administration see this page.")

    def has_permission(self, request, view):
        return is_controlling(request.user) or is_it_admin(request.user)
