import django_filters
from django import forms
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalogue.models import CatalogueItem, Category, CostCentre, Employee
from itportal.inputs import BoundedDateFilter
from itportal.memo import Memo
from requests_app.choices import RequestState
from requests_app.models import FulfilmentTask, ServiceRequest

# The search's conditions by their text (RequestFilterSet.search).
_SEARCH_CONDITIONS = Memo(256, 1 << 20)


class RequestFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Search"), method="search")
    state = django_filters.MultipleChoiceFilter(
        label=_("State"),
        choices=RequestState.choices,
        widget=forms.CheckboxSelectMultiple,
        # A column of the row itself: no join, no duplicates. The default DISTINCT made
        # PostgreSQL sort an employee's thousands of whole rows (item snapshots included).
        distinct=False,
    )
    category = django_filters.ModelChoiceFilter(
        label=_("Category"), field_name="item__category", queryset=Category.objects.all()
    )
    cost_centre = django_filters.ModelChoiceFilter(
        label=_("Cost centre"), queryset=CostCentre.objects.all()
    )
    created_after = BoundedDateFilter(
        label=_("Ordered from"),
        field_name="created_at",
        lookup_expr="date__gte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    created_before = BoundedDateFilter(
        label=_("Ordered until"),
        field_name="created_at",
        lookup_expr="date__lte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = ServiceRequest
        fields = ["q", "state", "category", "cost_centre", "created_after", "created_before"]

    def search(self, queryset, name, value):
        """The service's name, the beneficiary's name or personnel number, the number."""
        value = value.strip()[:100]
        if not value:
            return queryset
        # Built once per process and text: "my requests" filters the list and each of its
        # parts, and the same search is asked again (0.2 ms of CPU to build it). The
        # condition holds only SQL to build (subqueries), no rows; filtering copies it.
        condition = _SEARCH_CONDITIONS.get(value)
        if condition is None:
            condition = self._search_condition(value)
            _SEARCH_CONDITIONS.put(value, condition, 2048 + len(value))
        return queryset.filter(condition)

    @staticmethod
    def _search_condition(value: str) -> Q:
        # The services and the people that match, each read once from its own small table
        # (``= ANY(ARRAY(…))``, itportal/lookups.py): the requests are then filtered on
        # their own columns, which the lists' indexes include. Joined, the planner matched
        # each of a user's thousands of requests against every person: 0.8 s at 1M.
        services = CatalogueItem.objects.filter(name__icontains=value).order_by().values("pk")
        people = Employee.objects.filter(
            Q(user__last_name__icontains=value)
            | Q(user__first_name__icontains=value)
            | Q(personnel_number__iexact=value)
        )
        people = people.order_by().values("pk")
        condition = Q(item__any=ArraySubquery(services)) | Q(beneficiary__any=ArraySubquery(people))
        number = value.lstrip("#")
        if number.isdecimal() and len(number) <= 18:  # isdigit() lets "²" through
            condition |= Q(pk=int(number))
        return condition


class TaskFilterSet(django_filters.FilterSet):
    """Fulfilment tasks by state, kind and the fulfilling group's name."""

    state = django_filters.ChoiceFilter(label=_("State"), choices=FulfilmentTask.State.choices)
    kind = django_filters.ChoiceFilter(label=_("Task"), choices=FulfilmentTask.Kind.choices)
    group = django_filters.CharFilter(
        label=_("Fulfilling group"), field_name="fulfilment_group__name", max_length=150
    )

    class Meta:
        model = FulfilmentTask
        fields = ["state", "kind", "group"]
