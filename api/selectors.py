"""Reads of API tokens."""

from django.db.models import QuerySet

from api.models import ApiToken
from itportal.roles import is_it_admin


def tokens_visible_to(user) -> QuerySet[ApiToken]:
    """A user's own tokens; IT admins see everybody's."""
    tokens = ApiToken.objects.select_related("user")
    if is_it_admin(user):
        return tokens
    return tokens.filter(user=user)


def tokens_of(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)
