import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalogue.models import Category, CostCentre
from itportal.inputs import BoundedDateFilter
from requests_app.choices import RequestState
from requests_app.models import FulfilmentTask, ServiceRequest


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
        value = value.strip()[:100]
        if not value:
            return queryset
        condition = (
            Q(item__name__icontains=value)
            | Q(beneficiary__user__last_name__icontains=value)
            | Q(beneficiary__user__first_name__icontains=value)
            | Q(beneficiary__personnel_number__iexact=value)
        )
        number = value.lstrip("#")
        if number.isdecimal() and len(number) <= 18:  # isdigit() lets "²" through
            condition |= Q(pk=int(number))
        return queryset.filter(condition)


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
