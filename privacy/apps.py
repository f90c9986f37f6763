from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """The rights of the people in the data: access reports (DSGVO Art. 15), audit export.

    Reads from every app and is imported by none."""

    name = "privacy"
    verbose_name = _("Data protection")
