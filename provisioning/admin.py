"""Admin: provisioning actions inline on the catalogue item; jobs and entitlements read-only."""

from django.contrib import admin

from catalogue.admin import CatalogueItemAdmin
from itportal.admin import (
    BoundedInlineMixin,
    LargeTableAdminMixin,
    related_filter_reading,
    user_name_columns,
)
from provisioning.models import (
    DriftFinding,
    Entitlement,
    ManualMembership,
    ProvisioningAction,
    ProvisioningJob,
    SyncRun,
)


class ProvisioningActionInline(BoundedInlineMixin, admin.TabularInline):
    model = ProvisioningAction
    extra = 0
    max_num = 50
    fields = ("position", "kind", "target", "attributes")


# provisioning extends the catalogue's item admin; catalogue does not know about us.
CatalogueItemAdmin.inlines = [*CatalogueItemAdmin.inlines, ProvisioningActionInline]


@admin.register(ProvisioningJob)
class ProvisioningJobAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "request", "kind", "user_uid", "target_dn", "state", "attempts")
    list_filter = ("state", "kind", "direction")
    search_fields = ("user_uid", "target_dn", "last_error")
    readonly_fields = [f.name for f in ProvisioningJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Entitlement)
class EntitlementAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ("holder", "item", "state", "granted_at", "expires_on")
    # CatalogueItem.__str__: its name.
    list_filter = ("state", ("item", related_filter_reading("name", label=str)))
    search_fields = ("holder__personnel_number", "holder__user__last_name", "item__name")
    list_select_related = ("holder__user", "item")
    # The holder's and the item's __str__, not the items' texts and search columns.
    list_only = (
        "id",
        "state",
        "granted_at",
        "expires_on",
        "holder__personnel_number",
        *user_name_columns("holder__user__"),
        "item__name",
    )
    readonly_fields = [f.name for f in Entitlement._meta.fields]

    def has_add_permission(self, request):
        return False


class DriftFindingInline(BoundedInlineMixin, admin.TabularInline):
    model = DriftFinding
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "group_dn", "member", "entitlement", "repaired_by_job")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    """What the directory sync and the reconciliation found: leavers, movers, drift."""

    list_display = ("kind", "started_at", "finished_at", "succeeded", "counts")
    list_filter = ("kind", "succeeded")
    readonly_fields = [f.name for f in SyncRun._meta.fields]
    inlines = [DriftFindingInline]

    def has_add_permission(self, request):
        return False


@admin.register(ManualMembership)
class ManualMembershipAdmin(admin.ModelAdmin):
    """Memberships reconciliation found given by hand; they keep a member in a group when an
    entitlement to it ends. Delete one to let the portal remove the member with the last
    entitlement."""

    list_display = ("member_uid", "member_dn", "group_dn", "first_seen", "last_seen")
    search_fields = ("member_uid", "member_dn", "group_dn")
    readonly_fields = [f.name for f in ManualMembership._meta.fields]

    def has_add_permission(self, request):
        return False
