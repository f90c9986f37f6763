from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.identity import REFUSAL_ATTRIBUTE


class LoginForm(AuthenticationForm):
    """The login form; says why a proven identity was refused instead of "wrong password"."""

    def get_invalid_login_error(self):
        refusal = getattr(self.request, REFUSAL_ATTRIBUTE, None)
        if refusal:
            return ValidationError(refusal, code="refused")
        return super().get_invalid_login_error()
