import django_filters
from django.utils.translation import gettext_lazy as _

from catalogue.models import Department
from governance.models import SodRule
from provisioning.models import Entitlement


class ConflictFilterSet(django_filters.FilterSet):
    rule = django_filters.ModelChoiceFilter(
        label=_("Rule"), queryset=SodRule.objects.filter(is_active=True), method="by_rule"
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.all(), field_name="holder__department"
    )

    def by_rule(self, queryset, name, value):
        # The rows carry their rule as an annotation; a second join on the item's rules
        # would match other rules of the same service.
        return queryset.filter(rule_id=value.pk) if value else queryset

    class Meta:
        model = Entitlement
        fields = ["rule", "department"]
