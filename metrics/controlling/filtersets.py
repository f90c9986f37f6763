import django_filters
from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from catalogue.models import CatalogueItem, Category, CostCentre, Department
from itportal.inputs import BoundedDateField
from metrics.controlling import selectors
from metrics.controlling.rollup import Scope
from requests_app.models import ServiceRequest


class MonthField(BoundedDateField):
    """A calendar month, entered as YYYY-MM (``<input type="month">``)."""

    input_formats = ["%Y-%m", "%Y-%m-%d"]
    widget = forms.DateInput(attrs={"type": "month"}, format="%Y-%m")

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace(day=1) if value else value


class MonthFilter(django_filters.Filter):
    field_class = MonthField


class ControllingFilterSet(django_filters.FilterSet):
    """Narrows the requests that are counted; the period chooses the months shown."""

    period_from = MonthFilter(label=_("From month"), method="keep")
    period_to = MonthFilter(label=_("To month"), method="keep")
    department = django_filters.ModelChoiceFilter(
        label=_("Department"),
        field_name="beneficiary__department",
        queryset=Department.objects.order_by("code"),
    )
    cost_centre = django_filters.ModelChoiceFilter(
        label=_("Cost centre"), queryset=CostCentre.objects.order_by("code")
    )
    category = django_filters.ModelChoiceFilter(
        label=_("Category"), field_name="item__category", queryset=Category.objects.all()
    )

    class Meta:
        model = ServiceRequest
        fields = ["period_from", "period_to", "department", "cost_centre", "category"]

    def keep(self, queryset, name, value):
        return queryset

    def scope(self) -> Scope:
        """What the reports count: the filters as ids; invalid filters count nothing, a page
        opened without any (unbound) counts everything."""
        if not self.is_bound:
            return Scope()
        if not self.is_valid():
            return Scope(nothing=True)
        data = self.form.cleaned_data

        def pk(name):
            value = data.get(name)
            return value.pk if value is not None else None

        return Scope(
            department_id=pk("department"),
            cost_centre_id=pk("cost_centre"),
            category_id=pk("category"),
            item_id=pk("item"),
        )

    def period(self):
        """The first and last month to show; the last twelve months by default."""
        first, last = selectors.default_period()
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        first = data.get("period_from") or first
        last = data.get("period_to") or last
        if last < first:
            first, last = last, first
        # At most ten years, so a typo cannot ask for thousands of months.
        if (last.year - first.year) * 12 + last.month - first.month > 120:
            first = last.replace(year=last.year - 10)
        return first, last


class UsageFilterSet(ControllingFilterSet):
    breakdown = django_filters.ChoiceFilter(
        label=_("Broken down by"),
        method="keep",
        empty_label=None,
        choices=[
            (selectors.BREAKDOWN_SERVICE, _("Service only")),
            (selectors.BREAKDOWN_DEPARTMENT, _("Department")),
            (selectors.BREAKDOWN_COST_CENTRE, _("Cost centre")),
        ],
    )

    class Meta(ControllingFilterSet.Meta):
        fields = [*ControllingFilterSet.Meta.fields, "breakdown"]

    def breakdown_value(self) -> str:
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        return data.get("breakdown") or selectors.BREAKDOWN_SERVICE


def _with_default(data, name: str, value: str):
    """The query data with ``name`` set when absent, so the form shows the value in use.

    A page opened without a query string gets data too (django-filter passes ``None``): the
    filter set is then bound and valid with its defaults, not empty."""
    if data is None:
        data = QueryDict(mutable=True)
    elif name in data:
        return data
    else:
        data = data.copy()
    data[name] = value
    return data


class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


class CheckboxFilter(django_filters.Filter):
    field_class = forms.BooleanField


class PoolFilterSet(django_filters.FilterSet):
    """Licence pools are counted across the whole administration: only the item filters."""

    category = django_filters.ModelChoiceFilter(
        label=_("Category"), queryset=Category.objects.all()
    )
    attention_only = CheckboxFilter(label=_("Only pools below their warning level"), method="keep")

    class Meta:
        model = CatalogueItem
        fields = ["category", "attention_only"]

    def keep(self, queryset, name, value):
        return queryset

    def attention_only_value(self) -> bool:
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        return bool(data.get("attention_only"))


HISTORY_CHOICES = [("12", _("12 months")), ("24", _("24 months")), ("36", _("36 months"))]
DEFAULT_HISTORY = 24


class ForecastFilterSet(ControllingFilterSet):
    """The history always ends with the last complete month; its length is chosen."""

    period_from = None
    period_to = None
    item = django_filters.ModelChoiceFilter(
        label=_("Service"), queryset=CatalogueItem.objects.active().order_by("name")
    )
    history = django_filters.ChoiceFilter(
        label=_("History"), method="keep", choices=HISTORY_CHOICES, empty_label=None
    )

    class Meta(ControllingFilterSet.Meta):
        fields = ["department", "cost_centre", "category", "item", "history"]

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(_with_default(data, "history", str(DEFAULT_HISTORY)), *args, **kwargs)

    def history_value(self) -> int:
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        return int(data.get("history") or DEFAULT_HISTORY)


DEFAULT_FEWER_THAN = 3


class RarelyOrderedFilterSet(ControllingFilterSet):
    fewer_than = IntegerFilter(
        label=_("Fewer orders than"),
        method="keep",
        min_value=1,
        max_value=100000,
        help_text=_("Services with fewer orders than this in the period are listed."),
    )

    class Meta(ControllingFilterSet.Meta):
        fields = [*ControllingFilterSet.Meta.fields, "fewer_than"]

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(_with_default(data, "fewer_than", str(DEFAULT_FEWER_THAN)), *args,
                         **kwargs)  # fmt: skip

    def fewer_than_value(self) -> int:
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        return data.get("fewer_than") or DEFAULT_FEWER_THAN

    def category_value(self):
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        return data.get("category")
