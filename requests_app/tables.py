import django_tables2 as tables
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from itportal.tables import DateTimeColumn
from requests_app import progress
from requests_app.models import ServiceRequest


def state_badge(record) -> str:
    """The state as a badge: colour for a quick look, the text says it for everyone."""
    return format_html(
        '<span class="status-badge is-{}">{}</span>',
        progress.tone(record.state),
        record.get_state_display(),
    )


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
    created_at = DateTimeColumn(verbose_name=_("Ordered"), format="SHORT_DATETIME_FORMAT")

    class Meta:
        model = ServiceRequest
        fields = ("id", "item", "beneficiary", "requester", "cost_centre", "state", "created_at")
        order_by = ("-created_at",)
        empty_text = _("No requests found.")
        # Rows become cards on small screens; the number's link covers the whole row.
        attrs = {"class": "table stack row-links"}

    def render_item(self, record):
        return record.item_name

    def render_beneficiary(self, record):
        return record.beneficiary.display_name

    def render_requester(self, record):
        return record.requester.get_full_name() or record.requester.get_username()

    def render_state(self, record):
        return state_badge(record)


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
    approved_at = tables.Column(verbose_name=_("Waiting since"), default="—")
    # The deadline from the item's SLA target (requests_app/sla.py); empty without one.
    due = tables.Column(verbose_name=_("Due"), accessor="fulfilment_due_on", default="—")

    class Meta(RequestTable.Meta):
        fields = (
            "id",
            "item",
            "beneficiary",
            "state",
            "fulfilment_group",
            "assignee",
            "approved_at",
            "due",
            "requester",
        )
        # "Waiting since" says more than the order date here, and the cost centre is on the
        # request page: without them the queue fits a desktop window in German too (axe
        # cannot judge the contrast of cells scrolled out of the table's container).
        exclude = ("cost_centre", "created_at")
        # Newest approvals first, so what just arrived is on the first page; the due date
        # column sorts the other way for the oldest.
        order_by = ("-approved_at",)

    def render_assignee(self, record):
        return record.assignee.get_full_name() or record.assignee.get_username()

    def render_approved_at(self, value):
        return format_html(
            '<time datetime="{}">{}</time>',
            value.isoformat(),
            _("%(age)s ago") % {"age": timesince(value)},
        )

    def render_state(self, record):
        if not record.hold_reason:
            return state_badge(record)
        return format_html(
            '{} <span class="status-badge is-waiting">{}</span>',
            state_badge(record),
            record.get_hold_reason_display(),
        )

    def render_due(self, value, record):
        # The stored due date already moved by the finished holds; while on hold the clock
        # stands still, so it is not overdue and moves again when resumed.
        due = value
        text = date_format(due, "SHORT_DATE_FORMAT")
        if record.hold_reason:
            return format_html("{} ({})", text, _("paused"))
        if due < timezone.localdate():
            return format_html('<span class="overdue">{} ({})</span>', text, _("overdue"))
        return text
