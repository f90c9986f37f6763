from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts.views import LoginView, LogoutView, admin_login, sso_view
from itportal import health
from itportal.admin import bound_all_inlines
from itportal.views import branding_css, favicon
from notifications.views import set_language

# Every app has registered its admin by now (autodiscover runs before the URLconf loads).
bound_all_inlines(admin.site)

urlpatterns = [
    path("", include("catalogue.urls")),
    path("", include("home.urls")),
    path("", include("requests_app.ordering_urls")),
    path("", include("assist.urls")),
    path("antraege/", include("requests_app.urls")),
    path("provisionierung/", include("provisioning.urls")),
    path("controlling/", include("metrics.controlling.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("laeufe/", include("runs.urls")),
    path("funktionstrennung/", include("governance.urls")),
    path("zugriffspruefung/", include("governance.review_urls")),
    path("warum/", include("governance.why_urls")),
    path("postausgang/", include("notifications.urls")),
    path("benachrichtigungen/", include("notifications.inbox_urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    # Single sign-on (OpenID Connect); answers 404 unless OIDC_ENABLED.
    path(
        "oidc/authenticate/",
        sso_view(OIDCAuthenticationRequestView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        sso_view(OIDCAuthenticationCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("branding.css", branding_css, name="branding_css"),
    # Pages name the SVG icon; clients that ask for /favicon.ico anyway get it too, not a 404.
    path("favicon.ico", favicon),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", include("metrics.urls")),
    path("api/", include("api.urls")),
    path("konto/tokens/", include("api.portal_urls")),
    path("datenschutz/", include("privacy.urls")),
    path("konto/zweiter-faktor/", include("accounts.second_factor_urls")),
    path("konto/", include("accounts.urls")),
    # One login page for the portal and the admin site: throttled, refusals explained.
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
]

handler403 = "itportal.errors.permission_denied"
