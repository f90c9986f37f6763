"""Read-mostly admin views of requests: state changes go through the portal's actions."""

from django.contrib import admin

from itportal.admin import (
    BoundedInlineMixin,
    LargeTableAdminMixin,
    related_filter_reading,
    user_name_columns,
)
from requests_app.models import (
    Approval,
    FulfilmentTask,
    RequestEvent,
    ServiceRequest,
    Substitution,
)


class ApprovalInline(BoundedInlineMixin, admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in Approval._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


class RequestEventInline(BoundedInlineMixin, admin.TabularInline):
    model = RequestEvent
    extra = 0
    can_delete = False
    readonly_fields = (
        "created_at",
        "actor",
        "on_behalf_of",
        "kind",
        "from_state",
        "to_state",
        "comment",
    )
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ServiceRequest)
class ServiceRequestAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "item", "beneficiary", "requester", "state", "created_at")
    # Category.__str__: its name.
    list_filter = ("state", ("item__category", related_filter_reading("name", label=str)))
    search_fields = (
        "id",
        "item__name",
        "beneficiary__personnel_number",
        "beneficiary__user__last_name",
    )
    list_select_related = ("item", "beneficiary__user", "requester")
    # What the cells show (the item's, employee's and user's __str__); not the wide columns
    # (the item snapshot is a kilobyte of JSON per row), which the request's own page reads.
    list_only = (
        "id",
        "state",
        "created_at",
        "item__name",
        "beneficiary__personnel_number",
        *user_name_columns("beneficiary__user__"),
        "requester__username",
    )
    readonly_fields = [f.name for f in ServiceRequest._meta.fields]
    inlines = [ApprovalInline, RequestEventInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Substitution)
class SubstitutionAdmin(admin.ModelAdmin):
    list_display = ("principal", "substitute", "starts_on", "ends_on")
    autocomplete_fields = ("principal", "substitute")


@admin.register(RequestEvent)
class RequestEventAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ("request", "created_at", "actor", "kind", "from_state", "to_state")
    # Newest first along the primary key: six audit records per request, so sorting them
    # by time (the model's order) meant sorting millions of rows for each page.
    ordering = ("-id",)
    list_filter = ("kind",)
    # The request column names the request: in the same query, not one query per row;
    # of the request only its number (its __str__) and its state (read when a request is
    # loaded, ConcurrentTransitionMixin), of the actor the user name.
    list_select_related = ("actor", "request")
    list_only = (
        "id",
        "created_at",
        "kind",
        "from_state",
        "to_state",
        "request__id",
        "request__state",
        "actor__username",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FulfilmentTask)
class FulfilmentTaskAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    """Read only: tasks are opened by the portal and marked done in the fulfilment queue."""

    list_display = ("id", "kind", "request", "person", "fulfilment_group", "state", "created_at")
    list_filter = ("state", "kind")
    list_select_related = ("request", "person__user", "fulfilment_group")
    readonly_fields = [f.name for f in FulfilmentTask._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
