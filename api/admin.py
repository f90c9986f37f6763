"""API tokens in the admin: IT admins see and revoke them; keys are never shown (not stored)."""

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at",
                    "revoked_at")  # fmt: skip
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "expires_at",
                       "revoked_at")  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are made on the token page or through the API, shown once

    def has_delete_permission(self, request, obj=None):
        return False  # revoked tokens stay, as a record of who could act when

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
