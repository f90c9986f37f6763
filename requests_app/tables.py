import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from requests_app.models import ServiceRequest


class RequestTable(tables.Table):
    id = tables.Column(verbose_name=_("No."), linkify=True)
    item = tables.Column(
        verbose_name=_("Service"), accessor="item__name", order_by=("item__name",), linkify=False
    )
    beneficiary = tables.Column(
        verbose_name=_("For"),
        accessor="beneficiary__user__last_name",
        order_by=("beneficiary__user__last_name", "beneficiary__user__first_name"),
    )
    requester = tables.Column(
        verbose_name=_("Requested by"),
        accessor="requester__last_name",
        order_by=("requester__last_name", "requester__first_name"),
    )
    cost_centre = tables.Column(verbose_name=_("Cost centre"), accessor="cost_centre__code")
    state = tables.Column(verbose_name=_("State"))
    created_at = tables.DateTimeColumn(verbose_name=_("Ordered"), format="SHORT_DATETIME_FORMAT")

    class Meta:
        model = ServiceRequest
        fields = ("id", "item", "beneficiary", "requester", "cost_centre", "state", "created_at")
        order_by = ("-created_at",)
        empty_text = _("No requests found.")

    def render_item(self, record):
        return record.item_name

    def render_beneficiary(self, record):
        return record.beneficiary.display_name

    def render_requester(self, record):
        return record.requester.get_full_name() or record.requester.get_username()

    def render_state(self, record):
        return record.get_state_display()


class MyRequestTable(RequestTable):
    class Meta(RequestTable.Meta):
        exclude = ("requester",)


class QueueTable(RequestTable):
    assignee = tables.Column(
        verbose_name=_("Taken by"),
        accessor="assignee__last_name",
        order_by=("assignee__last_name",),
        default="—",
    )
    fulfilment_group = tables.Column(verbose_name=_("Queue"), accessor="fulfilment_group__name")

    class Meta(RequestTable.Meta):
        fields = (
            "id",
            "item",
            "beneficiary",
            "cost_centre",
            "state",
            "fulfilment_group",
            "assignee",
            "created_at",
        )
        order_by = ("created_at",)

    def render_assignee(self, record):
        return record.assignee.get_full_name() or record.assignee.get_username()
