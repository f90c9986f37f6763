from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogueConfig(AppConfig):
    name = "catalogue"
    verbose_name = _("Service catalogue")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from itportal.roles import ensure_role_groups

        # After every migrate (and every test-database flush) the role groups exist with
        # their permissions. Run after each app's migrations, not only the catalogue's: the
        # role also holds permissions of apps listed later (api, provisioning), which auth's
        # own post_migrate handler creates only when their turn comes.
        post_migrate.connect(ensure_role_groups, dispatch_uid="itportal_role_groups")
