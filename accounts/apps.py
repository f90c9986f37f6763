from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Identity and login: one account per person, protected logins, second factor, SSO."""

    name = "accounts"
    verbose_name = _("Accounts and login")

    def ready(self):
        from accounts import signals  # noqa: F401 - connects the login log
