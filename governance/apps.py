from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = _("Governance")

    def ready(self):
        # Governance sits above requests and provisioning: it plugs its checks into the
        # request services instead of being imported by them.
        from governance import checks
        from requests_app.services import register_order_check

        register_order_check(checks.refuse_conflicting_order)
        from governance import (
            mails,
            receivers,  # noqa: F401 (connects the signal receivers)
        )

        mails.register()
