import django_tables2 as tables
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from itportal.formatting import age
from itportal.reversing import reverse_number
from itportal.tables import DateTimeColumn
from requests_app import progress, selectors
from requests_app.choices import HoldReason, RequestState
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


STATE_LABELS = dict(RequestState.choices)
HOLD_LABELS = dict(HoldReason.choices)


def person_name(record, prefix: str) -> str:
    """``User.get_full_name() or get_username()`` (``Employee.display_name``) of a person
    read as flat values."""
    full = f"{record[prefix + '_first_name']} {record[prefix + '_last_name']}".strip()
    return full or record[prefix + "_username"]


class RequestRowTable(tables.Table):
    """RequestTable's columns over rows read as values (``selectors.list_rows``, dicts of
    ``row_columns``): the same cells, each from a key of the row. The sorts are the same
    paths of the model."""

    # Columns, headers and attributes as declared, the same for every instance: the header
    # row is kept per process by sort, query string and language (``table_head_cells``).
    head_is_static = True

    row_columns = (
        "id",
        "item_name",
        "beneficiary_first_name",
        "beneficiary_last_name",
        "beneficiary_username",
        "requester_first_name",
        "requester_last_name",
        "requester_username",
        "cost_centre_code",
        "state",
        "created_at",
    )

    id = tables.Column(verbose_name=_("No."))
    item = tables.Column(verbose_name=_("Service"), accessor="item_name", order_by=("item__name",))
    # The accessor is the last name, as on RequestTable: without one, the cell is empty ("—").
    beneficiary = tables.Column(
        verbose_name=_("For"),
        accessor="beneficiary_last_name",
        order_by=("beneficiary__user__last_name", "beneficiary__user__first_name"),
    )
    requester = tables.Column(
        verbose_name=_("Requested by"),
        accessor="requester_last_name",
        order_by=("requester__last_name", "requester__first_name"),
    )
    cost_centre = tables.Column(
        verbose_name=_("Cost centre"), accessor="cost_centre_code", order_by=("cost_centre__code",)
    )
    state = tables.Column(verbose_name=_("State"))
    created_at = DateTimeColumn(verbose_name=_("Ordered"), format="SHORT_DATETIME_FORMAT")

    class Meta(RequestTable.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._badges = {}  # the state badges of this page (one language)

    def render_id(self, value):
        return format_html(
            '<a href="{}">{}</a>', reverse_number("requests:detail", "pk", value), value
        )

    def render_beneficiary(self, record):
        return person_name(record, "beneficiary")

    def render_requester(self, record):
        return person_name(record, "requester")

    def render_state(self, record):
        return self._badge(record["state"])

    def _badge(self, state):
        badge = self._badges.get(state)
        if badge is None:
            badge = self._badges[state] = format_html(
                '<span class="status-badge is-{}">{}</span>',
                progress.tone(state),
                STATE_LABELS.get(state, state),
            )
        return badge


class ApprovalTable(RequestRowTable):
    """The approvals list: RequestTable's columns over value rows."""

    # As on MyRequestTable: every cell a function of the row's values, the language and the
    # time zone, so a row's markup is kept per process until its values change.
    rows_are_values = True

    class Meta(RequestRowTable.Meta):
        pass


class MyRequestTable(RequestRowTable):
    row_columns = tuple(c for c in RequestRowTable.row_columns if not c.startswith("requester"))
    # Every cell a function of the row's values, the language and the time zone (no "since"
    # or "overdue" as in the queue): a row's markup is kept per process until its values
    # change (itportal/templatetags/portal_tables.py), a user's list mostly shows the same.
    rows_are_values = True

    class Meta(RequestRowTable.Meta):
        exclude = ("requester",)


# The queue's order by service, ascending and descending (QueueTable.order_item): one
# expression each, so the keys its statements are kept under hash the same object.
_BY_ITEM_NAME = (selectors.item_name_rank().asc(), selectors.item_name_rank().desc())


class QueueTable(RequestRowTable):
    row_columns = (
        *(c for c in RequestRowTable.row_columns if c not in ("cost_centre_code", "created_at")),
        "assignee_first_name",
        "assignee_last_name",
        "assignee_username",
        "fulfilment_group_name",
        "approved_at",
        "fulfilment_due_on",
        "hold_reason",
    )

    assignee = tables.Column(
        verbose_name=_("Taken by"),
        accessor="assignee_last_name",
        order_by=("assignee__last_name",),
        default="—",
    )
    fulfilment_group = tables.Column(
        verbose_name=_("Queue"),
        accessor="fulfilment_group_name",
        order_by=("fulfilment_group__name",),
    )
    approved_at = tables.Column(verbose_name=_("Waiting since"), default="—")
    # The deadline from the item's SLA target (requests_app/sla.py); empty without one.
    due = tables.Column(
        verbose_name=_("Due"),
        accessor="fulfilment_due_on",
        order_by=("fulfilment_due_on",),
        default="—",
    )

    class Meta(RequestRowTable.Meta):
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

    # Every cell a function of the row's values, the language, the time zone and the clock:
    # what the clock changes in a row (its age, whether it is overdue) is part of the key
    # its markup is kept under (``row_clock``), so a row is rendered again only when its
    # values or its age's text or its overdue mark change.
    rows_are_values = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One moment for the whole page, so every row's age is counted to the same time.
        self._now = timezone.now()
        self._today = timezone.localdate(self._now)
        # The texts and the date format of the page's language, looked up once, not per row.
        self._ago = gettext("%(age)s ago")
        self._paused = gettext("paused")
        self._overdue = gettext("overdue")
        self._date_format = get_format("SHORT_DATE_FORMAT")

    def render_assignee(self, record):
        return person_name(record, "assignee")

    def order_item(self, queryset, is_descending):
        # By the item's rank among the names (selectors.item_name_rank): the order of
        # ``item__name``, ties included, without joining the items to every queue row.
        return queryset.order_by(_BY_ITEM_NAME[is_descending]), True

    def row_clock(self, record) -> tuple:
        """What the row's cells show of the clock: its age's text and its overdue mark."""
        approved_at = record["approved_at"]
        return (approved_at and self._age(approved_at), self._is_overdue(record))

    def _age(self, moment) -> str:
        return age(moment, self._now)

    def _is_overdue(self, record) -> bool:
        due = record["fulfilment_due_on"]
        return due is not None and not record["hold_reason"] and due < self._today

    def render_approved_at(self, value):
        return format_html(
            '<time datetime="{}">{}</time>',
            value.isoformat(),
            self._ago % {"age": self._age(value)},
        )

    def render_state(self, record):
        hold = record["hold_reason"]
        if not hold:
            return self._badge(record["state"])
        return format_html(
            '{} <span class="status-badge is-waiting">{}</span>',
            self._badge(record["state"]),
            HOLD_LABELS.get(hold, hold),
        )

    def render_due(self, value, record):
        # The stored due date already moved by the finished holds; while on hold the clock
        # stands still, so it is not overdue and moves again when resumed.
        text = dateformat.format(value, self._date_format)  # date_format(), the format kept
        if record["hold_reason"]:
            return format_html("{} ({})", text, self._paused)
        if self._is_overdue(record):
            return format_html('<span class="overdue">{} ({})</span>', text, self._overdue)
        return text
