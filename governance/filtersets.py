import django_filters
from django.utils.translation import gettext_lazy as _

from catalogue.models import Department
from governance.models import SodException, SodFinding, SodRule


class ConflictFilterSet(django_filters.FilterSet):
    rule = django_filters.ModelChoiceFilter(
        label=_("Rule"), queryset=SodRule.objects.filter(is_active=True)
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.all(), field_name="holder__department"
    )

    class Meta:
        model = SodFinding
        fields = ["rule", "department"]


class ExceptionFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(label=_("State"), choices=SodException.State.choices)
    rule = django_filters.ModelChoiceFilter(label=_("Rule"), queryset=SodRule.objects.all())

    class Meta:
        model = SodException
        fields = ["state", "rule"]
