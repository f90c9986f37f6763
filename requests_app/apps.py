from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RequestsAppConfig(AppConfig):
    name = "requests_app"
    verbose_name = _("Service requests")

    def ready(self) -> None:
        from requests_app import notifications, receivers  # noqa: F401 - connects receivers

        notifications.register_mail_kinds()
        from requests_app import sla

        sla.register_mail_kinds()
