import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from provisioning.choices import ActionKind, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob


class JobFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Account, group or error"), method="search")
    state = django_filters.MultipleChoiceFilter(
        label=_("State"),
        choices=JobState.choices,
        widget=forms.CheckboxSelectMultiple,
        distinct=False,
    )
    kind = django_filters.ChoiceFilter(label=_("Action"), choices=ActionKind.choices)

    class Meta:
        model = ProvisioningJob
        fields = ["q", "state", "kind"]

    def search(self, queryset, name, value):
        value = value.replace("\x00", "").strip()[:200]
        if not value:
            return queryset
        return queryset.filter(
            Q(user_uid__icontains=value)
            | Q(target_dn__icontains=value)
            | Q(last_error__icontains=value)
        )


class EntitlementFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Service or person"), method="search")
    state = django_filters.ChoiceFilter(label=_("State"), choices=EntitlementState.choices)

    class Meta:
        model = Entitlement
        fields = ["q", "state"]

    def search(self, queryset, name, value):
        value = value.replace("\x00", "").strip()[:100]
        if not value:
            return queryset
        return queryset.filter(
            Q(item__name__icontains=value)
            | Q(holder__user__last_name__icontains=value)
            | Q(holder__personnel_number__iexact=value)
        )
