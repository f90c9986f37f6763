"""Catalogue management for IT admins: items, their forms and approval policies, without code."""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _

from catalogue import conditions
from catalogue.models import (
    ApprovalPolicyStep,
    Bundle,
    BundleItem,
    CatalogueItem,
    Category,
    CostCentre,
    Department,
    Employee,
    FormField,
    FormRule,
)
from itportal.admin import BoundedInlineFormSet, BoundedInlineMixin


class FormFieldFormSet(BoundedInlineFormSet):
    def clean(self):
        super().clean()
        # Conditions name other fields of the same form: checked across the rows, as the
        # portal's editor and the API do (catalogue.conditions).
        kept = [
            form.instance
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        problems = conditions.definition_problems(kept, [])
        if problems:
            raise ValidationError([m for messages in problems.values() for m in messages])


class FormFieldInline(BoundedInlineMixin, admin.StackedInline):
    model = FormField
    formset = FormFieldFormSet
    extra = 0
    max_num = 100
    fields = (
        ("key", "label", "field_type"),
        ("required", "position"),
        "help_text",
        "choices",
        ("answer_format", "pattern", "max_length"),
        ("min_value", "max_value"),
        ("earliest_days", "latest_days", "needed_from"),
        "directory_base",
        ("condition_effect", "condition_field", "condition_operator", "condition_value"),
    )


class FormRuleInline(BoundedInlineMixin, admin.TabularInline):
    model = FormRule
    extra = 0
    max_num = 50
    fields = ("position", "kind", "first_field", "second_field", "more_fields", "message")


class ApprovalPolicyStepInline(BoundedInlineMixin, admin.TabularInline):
    model = ApprovalPolicyStep
    extra = 0
    max_num = 20
    fields = ("position", "approver_kind", "group", "person_field_key", "label")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name",)


@admin.register(CatalogueItem)
class CatalogueItemAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "category",
        "fulfilment_kind",
        "price_once",
        "price_monthly",
        "licence_pool_size",
        "is_active",
        "version",
    )
    list_filter = ("category", "fulfilment_kind", "is_active", "audience")
    search_fields = ("name", "slug", "summary", "keywords")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("version", "created_at", "updated_at")
    filter_horizontal = ("allowed_departments", "allowed_groups")
    inlines = [FormFieldInline, FormRuleInline, ApprovalPolicyStepInline]
    list_select_related = ("category",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "category", "summary", "description", "keywords")}),
        (_("Delivery and price"), {
            "fields": (
                "service_owner", "fulfilment_kind", "grants_access", "collect_on_leaving",
                "independent_fulfilment",
                "price_once", "price_monthly",
                "sla_target_days",
                "response_target_hours",
            ),
        }),
        (_("Licence pool"), {
            "fields": ("licence_pool_size", "licence_warning_below"),
            "description": _(
                "Leave the size empty for a service without a licence limit. The pool's use, "
                "warnings and expected exhaustion are shown under Controlling › Licence pools."
            ),
        }),
        (_("Who may order"), {
            "fields": ("audience", "allowed_departments", "allowed_groups", "orderable_for_others"),
        }),
        (_("Status"), {"fields": ("is_active", "version", "created_at", "updated_at")}),
    )  # fmt: skip

    def history_view(self, request, object_id, extra_context=None):
        # The admin's "History" button opens the portal's field-by-field history.
        if not str(object_id).isdigit():
            raise Http404
        return redirect("catalogue:item_history", pk=object_id)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The licence pool is not part of what an order promises: resizing it makes no new
        # version (which would turn orders being filled in at that moment stale).
        item_changed = set(form.changed_data) - {"licence_pool_size", "licence_warning_below"}
        changed = bool(item_changed) or any(fs.has_changed() for fs in formsets)
        if change and changed:
            # Every saved change makes a new version; orders keep the one they were placed on.
            with transaction.atomic():
                CatalogueItem.objects.filter(pk=form.instance.pk).update(version=F("version") + 1)
            form.instance.refresh_from_db(fields=["version"])


class BundleItemInline(BoundedInlineMixin, admin.TabularInline):
    model = BundleItem
    extra = 0
    max_num = 50
    fields = ("position", "item", "selected")
    autocomplete_fields = ("item",)


@admin.register(Bundle)
class BundleAdmin(admin.ModelAdmin):
    """Bundles such as "Neue Mitarbeiterin / neuer Mitarbeiter": items ordered in one go."""

    list_display = ("name", "slug", "position", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [BundleItemInline]


@admin.register(CostCentre)
class CostCentreAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "owner")
    search_fields = ("code", "name")
    autocomplete_fields = ("owner",)


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "cost_centre", "head")
    search_fields = ("code", "name")
    autocomplete_fields = ("head", "parent", "cost_centre", "chargeable_cost_centres")


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ("personnel_number", "display_name", "department", "manager", "is_active")
    list_filter = ("is_active", "department")
    search_fields = ("personnel_number", "user__first_name", "user__last_name", "user__username")
    autocomplete_fields = (
        "user",
        "manager",
        "department",
        "cost_centre",
        "chargeable_cost_centres",
    )
    list_select_related = ("user", "department", "manager__user")
    readonly_fields = ("directory_last_logon",)
