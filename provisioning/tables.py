import django_tables2 as tables
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from itportal.reversing import reverse_number
from itportal.tables import DateColumn, DateTimeColumn
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob


class JobTable(tables.Table):
    """The provisioning jobs page. Its rows are dicts (provisioning.selectors.job_list_rows):
    the job's own columns, no joins (the request's link needs only its number)."""

    # Every cell a function of the row's values, the language, the time zone and the
    # script prefix: a row's markup is kept per process until its values change
    # (itportal/templatetags/portal_tables.py); a job's state, attempts, error or update
    # time changing makes a new row.
    rows_are_values = True
    # Columns, headers and attributes as declared, the same for every instance: the header
    # row is kept per process by sort, query string and language (``table_head_cells``).
    head_is_static = True

    id = tables.Column(verbose_name=_("No."))
    request = tables.Column(verbose_name=_("Request"), accessor="request_id")
    kind = tables.Column(verbose_name=_("Action"))
    user_uid = tables.Column(verbose_name=_("Account"))
    target_dn = tables.Column(verbose_name=_("Group"))
    direction = tables.Column(verbose_name=_("Direction"))
    state = tables.Column(verbose_name=_("State"))
    attempts = tables.Column(verbose_name=_("Attempts"))
    last_error = tables.Column(verbose_name=_("Last error"))
    updated_at = DateTimeColumn(verbose_name=_("Updated"), format="SHORT_DATETIME_FORMAT")

    class Meta:
        model = ProvisioningJob
        fields = (
            "id", "request", "kind", "user_uid", "target_dn", "direction", "state", "attempts",
            "last_error", "updated_at",
        )  # fmt: skip
        order_by = ("-updated_at",)
        empty_text = _("No provisioning jobs found.")

    # The links as linkify= made them, without its attribute machinery per cell.
    def render_id(self, value):
        return _number_link("provisioning:job", value)

    def render_request(self, value):
        return _number_link("requests:detail", value)

    def render_state(self, value):
        return str(_JOB_STATES.get(value, value))

    def render_kind(self, value):
        return str(_ACTION_KINDS.get(value, value))

    def render_direction(self, value):
        return str(_DIRECTIONS.get(value, value))


def _number_link(viewname: str, number: int) -> str:
    return mark_safe(f'<a href="{reverse_number(viewname, "pk", number)}">{number}</a>')


# The labels (lazy: translated when rendered), as get_FOO_display() gives them.
_JOB_STATES = dict(JobState.choices)
_ACTION_KINDS = dict(ActionKind.choices)
_DIRECTIONS = dict(Direction.choices)


class EntitlementTable(tables.Table):
    """The entitlements page. Its rows are dicts (provisioning.selectors.
    entitlement_list_rows): the accessors name their keys, the sorts the model's fields."""

    # Every cell a function of the row's values, the language, the time zone and the
    # script prefix (the links hold the row's numbers, the buttons depend on its state, not
    # on the viewer): a row's markup is kept per process until its values change
    # (itportal/templatetags/portal_tables.py).
    rows_are_values = True
    # Columns, headers and attributes as declared, the same for every instance: the header
    # row is kept per process by sort, query string and language (``table_head_cells``).
    head_is_static = True

    item = tables.Column(verbose_name=_("Service"), accessor="item_name", order_by=("item__name",))
    holder = tables.Column(
        verbose_name=_("Holder"),
        accessor="holder_last_name",
        order_by=("holder__user__last_name", "holder__user__first_name"),
    )
    department = tables.Column(
        verbose_name=_("Department"),
        accessor="department_name",
        order_by=("holder__department__name",),
    )
    granted_at = DateTimeColumn(verbose_name=_("Since"), format="SHORT_DATE_FORMAT")
    expires_on = DateColumn(verbose_name=_("Until"), format="SHORT_DATE_FORMAT", default="—")
    state = tables.Column(verbose_name=_("State"))
    # The link as linkify= would make it, without its attribute machinery per cell.
    request = tables.Column(verbose_name=_("Request"), accessor="request_id")
    # Rendered in Python: a template per row copied the page's whole context 25 times.
    actions = tables.Column(
        verbose_name=_("Actions"), accessor="id", orderable=False, empty_values=()
    )

    class Meta:
        model = Entitlement
        fields = ("item", "holder", "department", "granted_at", "expires_on", "state", "request")
        # Newest first, as the API: an index serves it, where sorting a manager's 30,000
        # entitlements by service name for each page took a quarter of a second.
        order_by = ("-granted_at",)
        empty_text = _("No entitlements found.")

    def render_holder(self, record):
        # Employee.display_name from the row's columns.
        return _full_name(record)

    def render_state(self, record):
        return str(_ENTITLEMENT_STATES.get(record["state"], record["state"]))

    def render_request(self, value):
        return _number_link("requests:detail", value)

    def render_actions(self, record):
        labels = self.__dict__.get("_action_labels")
        if labels is None:  # translated once per table, not per row
            labels = self._action_labels = (escape(gettext("Why?")), escape(gettext("Remove…")))
        hidden = (
            f'<span class="visually-hidden"> {escape(record["item_name"])}, '
            f"{escape(_full_name(record))}</span></a>"
        )
        why = (
            f'<a class="button small secondary" '
            f'href="{reverse_number("why:entitlement", "pk", record["id"])}">{labels[0]}{hidden}'
        )
        if record["state"] != EntitlementState.ACTIVE:
            return mark_safe(why)  # the names are escaped above, the URLs hold numbers
        revoke = reverse_number("provisioning:entitlement_revoke", "pk", record["id"])
        return mark_safe(
            f'{why} <a class="button small danger" href="{revoke}">{labels[1]}{hidden}'
        )


# The states' labels (lazy: translated when rendered), as get_state_display() gives them.
_ENTITLEMENT_STATES = dict(EntitlementState.choices)


def _full_name(record) -> str:
    """``user.get_full_name() or user.get_username()`` of the holder, from the row."""
    name = f"{record['holder_first_name']} {record['holder_last_name']}".strip()
    return name or record["holder_username"]
