"""Single sign-on with OpenID Connect (mozilla-django-oidc): Keycloak, ADFS or any provider.

The provider proves who logged in; the portal maps its user-name claim onto the one account
of that person (accounts.identity), never creating one: someone the portal does not know is
refused with a message. Names, e-mail and roles (from the groups claim) follow the claims.
Logout ends the provider's session too.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.identity import LoginRefused, account_for_sso_name, assign_roles, refuse
from itportal import roles


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims) -> bool:
        return bool(claims.get(settings.OIDC_USERNAME_CLAIM))

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        name = str(claims.get(settings.OIDC_USERNAME_CLAIM) or "")
        try:
            user = account_for_sso_name(name)
        except LoginRefused as refusal:
            refuse(self.request, refusal, source="single sign-on", name=name)
            messages.error(self.request, refusal.message)
            return None
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.email = str(claims.get("email") or user.email)[:254]
        user.save(update_fields=["first_name", "last_name", "email"])
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
        assign_roles(
            user,
            memberships=groups if isinstance(groups, list) else [groups],
            role_groups={
                roles.IT_ADMIN: settings.OIDC_IT_ADMIN_GROUP,
                roles.CONTROLLING: settings.OIDC_CONTROLLING_GROUP,
            },
        )
        return user


def provider_logout_url(request) -> str:
    """Where logout sends the browser: the provider's end-session endpoint, which returns
    to the portal's login page."""
    back = request.build_absolute_uri(reverse(settings.LOGOUT_REDIRECT_URL))
    query = {"post_logout_redirect_uri": back, "client_id": settings.OIDC_RP_CLIENT_ID}
    id_token = request.session.get("oidc_id_token")
    if id_token:
        query["id_token_hint"] = id_token
    return f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{urlencode(query)}"
