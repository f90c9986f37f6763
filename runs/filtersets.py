import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from runs.models import Run, RunState


class RunFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(label=_("Run"), lookup_expr="icontains", max_length=100)
    state = django_filters.MultipleChoiceFilter(
        label=_("State"),
        choices=RunState.choices,
        widget=forms.CheckboxSelectMultiple,
        distinct=False,
    )

    class Meta:
        model = Run
        fields = ["name", "state"]
