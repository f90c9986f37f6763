from django.contrib import admin

from governance.models import SodRule


@admin.register(SodRule)
class SodRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "first_item", "second_item", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "first_item__name", "second_item__name")
    autocomplete_fields = ("first_item", "second_item")
