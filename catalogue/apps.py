from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogueConfig(AppConfig):
    name = "catalogue"
    verbose_name = _("Service catalogue")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from itportal.roles import ensure_role_groups

        # After every migrate (and every test-database flush) the role groups exist with
        # their permissions; auth's own post_migrate handler has created those by then.
        post_migrate.connect(ensure_role_groups, sender=self)
