from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssistConfig(AppConfig):
    """Explainable assistance (issue 16): figures computed in PostgreSQL, shown with their
    reason; the people decide. Sits above requests_app and provisioning and plugs into
    their pages through template tags, so neither imports it."""

    name = "assist"
    verbose_name = _("Assistance")

    def ready(self):
        from django.conf import settings

        if settings.ASSIST_ENABLED and settings.ASSIST_ANOMALIES:
            # The recertification's "by risk" order counts the signs of disuse too.
            from assist import reclaim
            from governance import risk

            risk.register("reclaim", reclaim.risk_expression())
