"""The "API tokens" page: users create (key shown once) and revoke their own tokens."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from api import selectors, services
from api.forms import TokenForm
from itportal.exceptions import ActionConflict


class TokenListView(View):
    template_name = "api/tokens.html"

    def _render(self, request, form, *, key=None, status=200):
        context = {
            "form": form,
            "tokens": selectors.tokens_of(request.user),
            "new_key": key,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self._render(request, TokenForm())

    def post(self, request):
        form = TokenForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        try:
            _token, key = services.token_create(
                user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at()
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error("expires_on" if field == "expires_at" else None, errors)
            return self._render(request, form, status=400)
        # Rendered, not redirected: the key must appear exactly once and never in a URL.
        response = self._render(request, TokenForm(), key=key, status=201)
        response["Cache-Control"] = "no-store"
        return response


class TokenRevokeView(View):
    def post(self, request, pk):
        token = get_object_or_404(selectors.tokens_of(request.user), pk=pk)
        try:
            services.token_revoke(token_id=token.pk, user=request.user)
        except ActionConflict as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
        return redirect("tokens:list")
