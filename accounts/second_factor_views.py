"""Pages of the second factor: overview, set-up, giving a code, recovery codes, and the IT
admins' reset. Thin: the work is in accounts.second_factor."""

from django import forms
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts import second_factor
from itportal.roles import is_it_admin


class CodeForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
        help_text=gettext_lazy("The six digits your app shows now, or one of your recovery codes."),
    )


class SetupForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from the app"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class ResetForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("User name"), max_length=150)

    def clean_username(self):
        name = self.cleaned_data["username"].replace("\x00", "").strip()
        user = get_user_model().objects.filter(username__iexact=name).first()
        if user is None:
            raise forms.ValidationError(_("There is no account of that name."))
        return user


def _next(request) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


class OverviewView(View):
    def get(self, request):
        return render(
            request,
            "accounts/second_factor.html",
            {
                "enrolled": second_factor.is_enrolled(request.user),
                "required": second_factor.required_for(request.user),
            },
        )


class SetupView(View):
    template = "accounts/second_factor_setup.html"

    def _render(self, request, form, status=200):
        if second_factor.is_enrolled(request.user) and not request.user.is_verified():
            # Replacing an app needs the old one (or a recovery code) first.
            return redirect("second_factor:verify")
        device = second_factor.pending_device(request.user)
        context = {
            "form": form,
            "qr": second_factor.qr_code(device),
            "secret": second_factor.secret_for_typing(device),
            "next": _next(request),
        }
        return render(request, self.template, context, status=status)

    def get(self, request):
        return self._render(request, SetupForm())

    def post(self, request):
        if second_factor.is_enrolled(request.user) and not request.user.is_verified():
            return redirect("second_factor:verify")
        form = SetupForm(request.POST)
        if form.is_valid():
            codes = second_factor.totp_confirm(request=request, token=form.cleaned_data["token"])
            if codes is not None:
                return render(
                    request,
                    "accounts/recovery_codes.html",
                    {"codes": codes, "next": _next(request)},
                )
            form.add_error("token", _("This code is not right. Check the time on your phone."))
        return self._render(request, form, status=400)


class VerifyView(View):
    template = "accounts/second_factor_verify.html"

    def get(self, request):
        if not second_factor.verification_needed(request):
            return redirect(_next(request))
        if not second_factor.is_enrolled(request.user) and not _has_recovery(request.user):
            return redirect(f"{_setup_url()}?{REDIRECT_FIELD_NAME}={_next(request)}")
        return render(request, self.template, {"form": CodeForm(), "next": _next(request)})

    def post(self, request):
        form = CodeForm(request.POST)
        if form.is_valid() and second_factor.verify(
            request=request, token=form.cleaned_data["token"]
        ):
            return redirect(_next(request))
        if form.is_valid():
            form.add_error("token", _("This code is not right, or it was used already."))
        return render(request, self.template, {"form": form, "next": _next(request)}, status=400)


class RecoveryCodesView(View):
    def post(self, request):
        if not request.user.is_verified():
            return redirect("second_factor:verify")
        codes = second_factor.recovery_codes_renew(user=request.user)
        return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": "/"})


class ResetView(View):
    """IT admins remove a person's second factor (lost phone, no recovery code left)."""

    template = "accounts/second_factor_reset.html"

    def dispatch(self, request, *args, **kwargs):
        if not is_it_admin(request.user):
            raise PermissionDenied(_("Only IT administration resets a second factor."))
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return render(request, self.template, {"form": ResetForm()})

    def post(self, request):
        form = ResetForm(request.POST)
        if form.is_valid():
            person = form.cleaned_data["username"]
            try:
                second_factor.reset(user=person, by=request.user)
            except PermissionError:
                form.add_error(
                    "username", _("Only a superuser resets a superuser's second factor.")
                )
            else:
                messages.success(
                    request,
                    _(
                        "The second factor of %(name)s was removed; they set up a new one "
                        "at their next login."
                    )
                    % {"name": person.get_username()},
                )
                return redirect("accounts:second_factor_reset")
        return render(request, self.template, {"form": form}, status=400)


def _has_recovery(user) -> bool:
    from django_otp.plugins.otp_static.models import StaticDevice

    return StaticDevice.objects.filter(user=user, token_set__isnull=False).exists()


def _setup_url() -> str:
    from django.urls import reverse

    return reverse("second_factor:setup")
