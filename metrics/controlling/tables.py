import datetime

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from itportal.formatting import format_amount
from itportal.tables import DateTimeColumn


class MonthColumn(tables.Column):
    def render(self, value):
        return value.strftime("%Y-%m")


class CaptionedTable(tables.Table):
    """A table over aggregated rows; the caption says what it shows.

    Its rows are dataclasses of plain values (numbers, texts, dates, such dataclasses), each
    cell and the row's attributes a function of its row, the language and the time zone, so
    its markup is rendered once per process (``rows_are_values``: metrics/templatetags/
    reports.py, itportal/templatetags/portal_tables.py). A table over model rows would say
    ``rows_are_values = False`` (rows of other kinds are rendered anyway)."""

    caption = ""
    rows_are_values = True

    class Meta:
        template_name = "controlling/table.html"
        orderable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Columns, headers and cell attributes as the class declares them (some perhaps
        # excluded): their part of the markup's key is worked out once per class
        # (metrics/templatetags/reports.py). Columns added by a view (the forecast's
        # months) or attributes given to this table are not the class's.
        self.head_is_declared = not kwargs.get("extra_columns") and "attrs" not in kwargs


class AmountColumn(tables.Column):
    """Euro amounts with grouped thousands: "1.149,00" (the header says EUR)."""

    def render(self, value):
        return format_amount(value)


class CostTable(CaptionedTable):
    caption = _("Charges per cost centre and month")

    month = MonthColumn(verbose_name=_("Month"))
    cost_centre_code = tables.Column(verbose_name=_("Cost centre"))
    cost_centre_name = tables.Column(verbose_name=_("Name"))
    fulfilled = tables.Column(verbose_name=_("Fulfilled requests"))
    once = AmountColumn(verbose_name=_("One-off costs (EUR)"))
    entitlements = tables.Column(verbose_name=_("Charged entitlements"))
    monthly = AmountColumn(verbose_name=_("Monthly costs (EUR)"))
    total = AmountColumn(verbose_name=_("Total (EUR)"))

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


class DateColumn(tables.Column):
    def render(self, value):
        return date_format(value, "SHORT_DATE_FORMAT")


class PoolStatusColumn(tables.Column):
    """Says in words what the row's state is: the warning is never colour alone."""

    def render(self, record):
        if record.is_exhausted:
            text = _("Exhausted: no free licence")
        elif record.is_warning:
            text = ngettext(
                "Warning: only %(free)s licence free (warning below %(level)s)",
                "Warning: only %(free)s licences free (warning below %(level)s)",
                record.free,
            ) % {"free": record.free, "level": record.warning_level}
        else:
            return _("Sufficient")
        return format_html('<strong class="pool-warning">{}</strong>', text)


class ExhaustionColumn(tables.Column):
    def render(self, record):
        if record.is_exhausted:
            return _("now")
        if record.exhausted_on is None:
            return _("no exhaustion expected")
        return date_format(record.exhausted_on, "SHORT_DATE_FORMAT")


class ServiceLinkColumn(tables.Column):
    def render(self, record, value):
        return format_html('<a href="{}">{}</a>', reverse("catalogue:item", args=[record.slug]),
                           value)  # fmt: skip


class PoolTable(CaptionedTable):
    caption = _("Licence pools")

    service = ServiceLinkColumn(verbose_name=_("Service"))
    category = tables.Column(verbose_name=_("Category"))
    size = tables.Column(verbose_name=_("Pool size"))
    in_use = tables.Column(verbose_name=_("Held"))
    reserved = tables.Column(verbose_name=_("Reserved by open requests"))
    used = tables.Column(verbose_name=_("Used"))
    free = tables.Column(verbose_name=_("Free"))
    percent_used = tables.Column(verbose_name=_("Used (%)"))
    status = PoolStatusColumn(verbose_name=_("Status"), empty_values=())
    growth_per_30_days = tables.Column(verbose_name=_("Net growth per 30 days"))
    exhausted_on = ExhaustionColumn(verbose_name=_("Expected to run out"), empty_values=())

    class Meta(CaptionedTable.Meta):
        empty_text = _("No catalogue item has a licence pool.")

    def render_percent_used(self, value):
        return number_format(value, decimal_pos=1)

    def render_growth_per_30_days(self, value):
        return number_format(value, decimal_pos=1)


class ForecastTable(CaptionedTable):
    """The forecast months are added by the view (their headers name the month)."""

    caption = _("Demand trend and forecast per service")

    service = tables.Column(verbose_name=_("Service"))
    category = tables.Column(verbose_name=_("Category"))
    history_months = tables.Column(verbose_name=_("Months of history"))
    orders_last_12 = tables.Column(verbose_name=_("Orders in the last 12 months"))
    trend = tables.Column(
        verbose_name=_("Trend (orders per month)"), accessor="forecast__slope", empty_values=()
    )
    method = tables.Column(verbose_name=_("Method"), accessor="forecast__seasonal")
    total = tables.Column(
        verbose_name=_("Forecast next quarter"), accessor="forecast__total", empty_values=()
    )

    class Meta(CaptionedTable.Meta):
        empty_text = _("No orders in the history period.")

    def render_trend(self, value):
        text = number_format(round(value, 2), decimal_pos=2)
        return f"+{text}" if value > 0 else text

    def render_method(self, value):
        return _("trend × season") if value else _("trend only")

    def render_total(self, value):
        return number_format(round(value, 1), decimal_pos=1)


class ForecastMonthColumn(tables.Column):
    def __init__(self, index, **kwargs):
        self.index = index
        super().__init__(accessor="forecast__values", empty_values=(), **kwargs)

    def render(self, value):
        return number_format(round(value[self.index], 1), decimal_pos=1)


class RareTable(CaptionedTable):
    caption = _("Rarely or never ordered services")

    service = ServiceLinkColumn(verbose_name=_("Service"))
    category = tables.Column(verbose_name=_("Category"))
    orders = tables.Column(verbose_name=_("Orders in the period"))
    last_ordered_at = tables.Column(verbose_name=_("Last ordered"), default=_("never"))
    in_catalogue_since = tables.Column(verbose_name=_("In the catalogue since"))

    class Meta(CaptionedTable.Meta):
        empty_text = _("Every active service was ordered often enough in this period.")

    def render_last_ordered_at(self, value):
        return date_format(timezone.localtime(value), "SHORT_DATE_FORMAT")

    def render_in_catalogue_since(self, value):
        return date_format(timezone.localtime(value), "SHORT_DATE_FORMAT")


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
    """The comments (``metrics.controlling.selectors.CommentRows``)."""

    caption = _("Comments of the requesters, latest first (shown without names)")

    service = tables.Column(verbose_name=_("Service"))
    score = tables.Column(verbose_name=_("Score"))
    comment = tables.Column(verbose_name=_("Comment"), attrs={"td": {"class": "pre"}})
    fulfilled = DateTimeColumn(verbose_name=_("Fulfilled"), format="SHORT_DATE_FORMAT")
    rated_at = DateTimeColumn(verbose_name=_("Rated"), format="SHORT_DATE_FORMAT")

    class Meta(CaptionedTable.Meta):
        empty_text = _("No comments in this period.")


class AnomalyTable(CaptionedTable):
    """Months outside the forecast's band (issue 16): size and direction."""

    caption = _("Months with unusual demand")
    # Its columns are the class's on every page (reports.py keeps their part of the key).
    head_is_static = True

    service = tables.Column(verbose_name=_("Service"))
    category = tables.Column(verbose_name=_("Category"))
    month = MonthColumn(verbose_name=_("Month"))
    orders = tables.Column(verbose_name=_("Orders"))
    expected = tables.Column(verbose_name=_("Expected"), accessor="band__expected")
    band = tables.Column(verbose_name=_("Ordinary range"), empty_values=())
    direction = tables.Column(verbose_name=_("Deviation"), empty_values=())

    class Meta(CaptionedTable.Meta):
        empty_text = _("No month fell outside its band.")

    def render_expected(self, value):
        return localized(value, 1)

    def render_band(self, record):
        return f"{localized(record.band.low, 1)} – {localized(record.band.high, 1)}"

    def render_direction(self, record):
        size = localized(abs(record.size), 1)
        if record.direction == "up":
            text = gettext("%(size)s more than expected") % {"size": size}
        else:
            text = gettext("%(size)s fewer than expected") % {"size": size}
        if record.percent is not None:
            text += f" ({'+' if record.size > 0 else '−'}{localized(abs(record.percent), 0)} %)"
        return text


class ReclaimTable(CaptionedTable):
    """Entitlements that cost something and show signs of not being needed
    (``assist.reclaim.CandidateRow``)."""

    caption = _("Rarely used entitlements: candidates to reclaim")
    head_is_static = True  # as AnomalyTable's

    holder = tables.Column(verbose_name=_("Holder"))
    department = tables.Column(verbose_name=_("Department"))
    service = tables.Column(verbose_name=_("Service"))
    since = tables.Column(verbose_name=_("Since"))
    monthly = tables.Column(verbose_name=_("Monthly price (EUR)"))
    risk = tables.Column(verbose_name=_("Risk"))
    reasons = tables.Column(verbose_name=_("Why"), empty_values=())

    class Meta(CaptionedTable.Meta):
        empty_text = _("No entitlement that costs something shows a sign of not being used.")

    def render_since(self, value):
        return date_format(timezone.localtime(value), "SHORT_DATE_FORMAT")

    def render_monthly(self, value):
        return localized(value, 2)

    def render_reasons(self, value):
        return "; ".join(value)
