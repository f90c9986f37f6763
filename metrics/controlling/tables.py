import datetime

import django_tables2 as tables
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class MonthColumn(tables.Column):
    def render(self, value):
        return value.strftime("%Y-%m")


class CaptionedTable(tables.Table):
    """A table over aggregated rows; the caption says what it shows."""

    caption = ""

    class Meta:
        template_name = "controlling/table.html"
        orderable = False


class CostTable(CaptionedTable):
    caption = _("Charges per cost centre and month")

    month = MonthColumn(verbose_name=_("Month"))
    cost_centre_code = tables.Column(verbose_name=_("Cost centre"))
    cost_centre_name = tables.Column(verbose_name=_("Name"))
    fulfilled = tables.Column(verbose_name=_("Fulfilled requests"))
    once = tables.Column(verbose_name=_("One-off costs (EUR)"))
    entitlements = tables.Column(verbose_name=_("Charged entitlements"))
    monthly = tables.Column(verbose_name=_("Monthly costs (EUR)"))
    total = tables.Column(verbose_name=_("Total (EUR)"))

    class Meta(CaptionedTable.Meta):
        empty_text = _("No costs in this period.")


class UsageTable(CaptionedTable):
    caption = _("Orders and active entitlements per service and month")

    month = MonthColumn(verbose_name=_("Month"))
    service = tables.Column(verbose_name=_("Service"))
    group = tables.Column(verbose_name=_("Department / cost centre"))
    orders = tables.Column(verbose_name=_("Orders"))
    active = tables.Column(verbose_name=_("Active entitlements at month end"))

    class Meta(CaptionedTable.Meta):
        empty_text = _("No orders or entitlements in this period.")


def localized(value, places: int) -> str:
    """The number rounded half-even to ``places`` decimals (Django's number_format cuts them
    off), with the active language's decimal separator."""
    return number_format(round(value, places), places)


def format_duration(value: datetime.timedelta) -> str:
    """Minutes under an hour, hours (one decimal) under a day, else days (one decimal)."""
    seconds = value.total_seconds()
    if seconds < 3600:
        return gettext("%(value)s min") % {"value": localized(seconds / 60, 0)}
    if seconds < 86400:
        return gettext("%(value)s h") % {"value": localized(seconds / 3600, 1)}
    return gettext("%(value)s days") % {"value": localized(seconds / 86400, 1)}


class DurationColumn(tables.Column):
    def render(self, value):
        return format_duration(value)


class ServiceColumn(tables.Column):
    """The service's name; the row of all services together is marked as the total."""

    def render(self, value, record):
        if record.is_total:
            return format_html("<strong>{}</strong>", gettext("All services"))
        return value


class TotalRowTable(CaptionedTable):
    class Meta(CaptionedTable.Meta):
        row_attrs = {"class": lambda record: "total" if record.is_total else ""}


class LeadTimeTable(TotalRowTable):
    caption = _(
        "Lead times per service for requests fulfilled in the period: median (p50) and "
        "90th percentile (p90), calendar time"
    )

    service = ServiceColumn(verbose_name=_("Service"), empty_values=())
    fulfilled = tables.Column(verbose_name=_("Fulfilled requests"))
    with_approval = tables.Column(verbose_name=_("With approval steps"))
    approval_p50 = DurationColumn(verbose_name=_("Approval waiting p50"))
    approval_p90 = DurationColumn(verbose_name=_("Approval waiting p90"))
    fulfilment_p50 = DurationColumn(verbose_name=_("Fulfilment p50"))
    fulfilment_p90 = DurationColumn(verbose_name=_("Fulfilment p90"))
    total_p50 = DurationColumn(verbose_name=_("Total p50"))
    total_p90 = DurationColumn(verbose_name=_("Total p90"))

    class Meta(TotalRowTable.Meta):
        empty_text = _("No requests were fulfilled in this period.")


class PercentColumn(tables.Column):
    def render(self, value):
        return f"{localized(float(value) * 100, 1)} %"


class AutomationTable(TotalRowTable):
    caption = _("Automation rate per service: requests fulfilled without manual work")

    service = ServiceColumn(verbose_name=_("Service"), empty_values=())
    fulfilled = tables.Column(verbose_name=_("Fulfilled requests"))
    automated = tables.Column(verbose_name=_("Fulfilled automatically"))
    automation_rate = PercentColumn(verbose_name=_("Automation rate"))

    class Meta(TotalRowTable.Meta):
        empty_text = _("No requests were fulfilled in this period.")


class AverageColumn(tables.Column):
    def render(self, value):
        return localized(value, 2)


class SatisfactionTable(TotalRowTable):
    caption = _(
        "Satisfaction per service: ratings (1 = very dissatisfied, 5 = very satisfied) of the "
        "requests fulfilled in the period"
    )

    service = ServiceColumn(verbose_name=_("Service"), empty_values=())
    fulfilled = tables.Column(verbose_name=_("Fulfilled requests"))
    rated = tables.Column(verbose_name=_("Ratings"))
    average = AverageColumn(verbose_name=_("Average score"))
    score_1 = tables.Column(verbose_name=_("Score 1"))
    score_2 = tables.Column(verbose_name=_("Score 2"))
    score_3 = tables.Column(verbose_name=_("Score 3"))
    score_4 = tables.Column(verbose_name=_("Score 4"))
    score_5 = tables.Column(verbose_name=_("Score 5"))

    class Meta(TotalRowTable.Meta):
        empty_text = _("No requests were fulfilled in this period.")


class RatingCommentTable(CaptionedTable):
    caption = _("Comments of the requesters, latest first (shown without names)")

    service = tables.Column(verbose_name=_("Service"), accessor="request__item__name")
    score = tables.Column(verbose_name=_("Score"))
    comment = tables.Column(verbose_name=_("Comment"), attrs={"td": {"class": "pre"}})
    fulfilled = tables.DateTimeColumn(
        verbose_name=_("Fulfilled"), accessor="request__closed_at", format="SHORT_DATE_FORMAT"
    )
    rated_at = tables.DateTimeColumn(verbose_name=_("Rated"), format="SHORT_DATE_FORMAT")

    class Meta(CaptionedTable.Meta):
        empty_text = _("No comments in this period.")
