import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from governance.models import SodException, SodFinding
from itportal.tables import DateColumn


def _sides(evidence: dict, side: str) -> str:
    return ", ".join(dict.fromkeys(row["label"] for row in (evidence or {}).get(side, [])))


class ConflictTable(tables.Table):
    # Columns, headers and attributes as declared, the same for every instance: the header
    # row and the rows' shape are kept per process (itportal/templatetags/portal_tables.py).
    head_is_static = True

    holder = tables.Column(
        verbose_name=_("Person"),
        accessor="holder__display_name",
        order_by=("holder__user__last_name", "holder__user__first_name"),
    )
    department = tables.Column(verbose_name=_("Department"), accessor="holder__department__name")
    rule = tables.Column(verbose_name=_("Rule"), accessor="rule__name", order_by=("rule__name",))
    holds = tables.Column(verbose_name=_("Holds"), accessor="evidence", orderable=False)
    and_also = tables.Column(verbose_name=_("and also"), accessor="evidence", orderable=False)
    overlap_from = DateColumn(verbose_name=_("Since"), format="SHORT_DATE_FORMAT")
    excepted_until = tables.Column(verbose_name=_("Exception"), orderable=False, default="—")
    why = tables.Column(verbose_name=_("Why?"), accessor="pk", orderable=False)

    class Meta:
        model = SodFinding
        fields = (
            "holder",
            "department",
            "rule",
            "holds",
            "and_also",
            "overlap_from",
            "excepted_until",
            "why",
        )
        order_by = ("rule", "holder")
        empty_text = _("Nobody holds two services that a rule keeps apart.")

    def render_holds(self, value):
        return _sides(value, "first")

    def render_and_also(self, value):
        return _sides(value, "second")

    def render_excepted_until(self, value):
        from django.utils.formats import date_format

        return _("until %(date)s") % {"date": date_format(value, "SHORT_DATE_FORMAT")}

    def render_why(self, value, record):
        return format_html(
            '<a href="{}" aria-label="{}">{}</a>',
            reverse("governance:finding", args=[value]),
            _("Why? %(rule)s, %(person)s")
            % {"rule": record.rule.name, "person": record.holder.display_name},
            _("Why?"),
        )


class ExceptionTable(tables.Table):
    holder = tables.Column(
        verbose_name=_("Person"),
        accessor="holder__display_name",
        order_by=("holder__user__last_name", "holder__user__first_name"),
    )
    rule = tables.Column(verbose_name=_("Rule"), accessor="rule__name")
    state = tables.Column(verbose_name=_("State"))
    valid_until = DateColumn(verbose_name=_("Valid until"), format="SHORT_DATE_FORMAT")
    requested_by = tables.Column(verbose_name=_("Requested by"), default="—")
    decided_by = tables.Column(verbose_name=_("Decided by"), default="—")
    open = tables.Column(verbose_name=_("Details"), accessor="pk", orderable=False)

    class Meta:
        model = SodException
        fields = ("holder", "rule", "state", "valid_until", "requested_by", "decided_by", "open")
        order_by = ("valid_until",)
        empty_text = _("No exceptions.")

    def render_requested_by(self, value):
        return value.get_full_name() or value.get_username()

    def render_decided_by(self, value):
        return value.get_full_name() or value.get_username()

    def render_open(self, value, record):
        return format_html(
            '<a href="{}" aria-label="{}">{}</a>',
            reverse("governance:exception", args=[value]),
            _("Exception for %(person)s") % {"person": record.holder.display_name},
            _("Open"),
        )
