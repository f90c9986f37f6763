"""Login and the IT admins' page of lock-outs. Thin: the work is in accounts.lockout."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from accounts import lockout
from accounts.forms import LoginForm
from accounts.oidc import provider_logout_url
from itportal.roles import is_it_admin


class LoginView(auth_views.LoginView):
    form_class = LoginForm

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "sso": settings.OIDC_ENABLED}

    def post(self, request, *args, **kwargs):
        # A failed login is recorded with its form data (django-axes); PostgreSQL refuses
        # NUL characters, so they must not reach that record as a server error.
        if "\x00" in request.body.decode("utf-8", "replace"):
            cleaned = QueryDict(mutable=True)
            for key, values in request.POST.lists():
                cleaned.setlist(key.replace("\x00", ""), [v.replace("\x00", "") for v in values])
            request.POST = cleaned
        return super().post(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    """Logout; after a single sign-on the provider's session ends too."""

    def post(self, request, *args, **kwargs):
        provider = None
        if settings.OIDC_ENABLED and request.session.get("oidc_id_token"):
            provider = provider_logout_url(request)  # needs the session: before logout
        response = super().post(request, *args, **kwargs)
        return redirect(provider) if provider else response


def sso_view(view):
    """mozilla-django-oidc's views, reachable without login and only with SSO configured."""

    @login_not_required
    def wrapped(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


@login_not_required
def admin_login(request):
    """The admin site logs in through the portal's login page, and returns afterwards."""
    target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
    return redirect_to_login(target, reverse("login"))


class LockoutListView(View):
    """Accounts and addresses locked after repeated failed logins; IT admins lift them."""

    template = "accounts/lockouts.html"

    def dispatch(self, request, *args, **kwargs):
        if not is_it_admin(request.user):
            raise PermissionDenied(_("Only IT administration sees and lifts lock-outs."))
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return render(
            request,
            self.template,
            {
                "accounts": lockout.locked_accounts(),
                "addresses": lockout.locked_addresses(),
                "limit": settings.AXES_FAILURE_LIMIT,
                "cool_off": lockout.cool_off_minutes(),
            },
        )

    def post(self, request):
        account = request.POST.get("account", "").strip()[:255]
        address = request.POST.get("address", "").strip()[:64]
        if bool(account) == bool(address):
            messages.error(request, _("Choose one account or one address to unlock."))
        else:
            lockout.lockout_lift(account=account, address=address, user=request.user)
            messages.success(
                request,
                _("The lock-out of %(what)s was lifted.") % {"what": account or address},
            )
        return redirect("accounts:lockouts")
