from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin, its default site the portal's (itportal.admin.PortalAdminSite);
    named in INSTALLED_APPS, not the itportal app's configuration."""

    default = False
    default_site = "itportal.admin.PortalAdminSite"


class ItportalConfig(AppConfig):
    name = "itportal"
    verbose_name = "IT-Portal"

    def ready(self):
        from itportal import lookups
        from itportal.filtering import copy_filters_shallowly
        from itportal.tables import (
            copy_tables2_columns_shallowly,
            memoise_choice_displays,
            memoise_tables2_signatures,
        )

        memoise_tables2_signatures()
        copy_tables2_columns_shallowly()
        copy_filters_shallowly()
        memoise_choice_displays()
        lookups.register()
