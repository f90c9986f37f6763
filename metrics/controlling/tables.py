import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


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
