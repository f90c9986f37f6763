from django.contrib import admin

from governance import sod_services as services
from governance.models import GroupNesting, SodException, SodRule, SodRuleMember


class SodRuleMemberInline(admin.TabularInline):
    model = SodRuleMember
    extra = 2
    fields = ("side", "item", "group_dn")
    autocomplete_fields = ("item",)


@admin.register(SodRule)
class SodRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "first_match", "second_match", "version", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "members__item__name", "members__group_dn")
    readonly_fields = ("version", "created_at", "changed_at")
    inlines = [SodRuleMemberInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Every save is a version, with its members: the "Warum?" pages name it.
        services.sod_rule_record_version(rule_id=form.instance.pk, user=request.user)


@admin.register(SodException)
class SodExceptionAdmin(admin.ModelAdmin):
    """Read-only: exceptions are asked for and decided in the portal, where the rule that
    nobody decides their own exception is enforced."""

    list_display = ("rule", "holder", "state", "valid_until", "decided_by")
    list_filter = ("state",)
    list_select_related = ("rule", "holder__user", "decided_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GroupNesting)
class GroupNestingAdmin(admin.ModelAdmin):
    list_display = ("child_dn", "parent_dn", "seen_at")
    search_fields = ("child_dn", "parent_dn")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
