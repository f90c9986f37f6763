import django_tables2 as tables
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
