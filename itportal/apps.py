from django.apps import AppConfig


class ItportalConfig(AppConfig):
    name = "itportal"
    verbose_name = "IT-Portal"

    def ready(self):
        from itportal import lookups
        from itportal.tables import memoise_choice_displays, memoise_tables2_signatures

        memoise_tables2_signatures()
        memoise_choice_displays()
        lookups.register()
