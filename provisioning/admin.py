"""Admin: provisioning actions inline on the catalogue item; jobs and entitlements read-only."""

from django.contrib import admin

from catalogue.admin import CatalogueItemAdmin
from provisioning.models import Entitlement, ProvisioningAction, ProvisioningJob


class ProvisioningActionInline(admin.TabularInline):
    model = ProvisioningAction
    extra = 0
    fields = ("position", "kind", "target", "attributes")


# provisioning extends the catalogue's item admin; catalogue does not know about us.
CatalogueItemAdmin.inlines = [*CatalogueItemAdmin.inlines, ProvisioningActionInline]


@admin.register(ProvisioningJob)
class ProvisioningJobAdmin(admin.ModelAdmin):
    list_display = ("id", "request", "kind", "user_uid", "target_dn", "state", "attempts")
    list_filter = ("state", "kind", "direction")
    search_fields = ("user_uid", "target_dn", "last_error")
    readonly_fields = [f.name for f in ProvisioningJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Entitlement)
class EntitlementAdmin(admin.ModelAdmin):
    list_display = ("holder", "item", "state", "granted_at", "expires_on")
    list_filter = ("state", "item")
    search_fields = ("holder__personnel_number", "holder__user__last_name", "item__name")
    list_select_related = ("holder__user", "item")
    readonly_fields = [f.name for f in Entitlement._meta.fields]

    def has_add_permission(self, request):
        return False
