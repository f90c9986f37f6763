import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from webhooks.choices import DeliveryState, EventType
from webhooks.models import WebhookDelivery, WebhookEndpoint


class EndpointFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("URL or description"), method="search")
    is_active = django_filters.BooleanFilter(label=_("Active"))

    class Meta:
        model = WebhookEndpoint
        fields = ["q", "is_active"]

    def search(self, queryset, name, value):
        value = value.replace("\x00", "").strip()[:200]
        if not value:
            return queryset
        return queryset.filter(Q(url__icontains=value) | Q(description__icontains=value))


class DeliveryFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(
        label=_("State"),
        choices=DeliveryState.choices,
        widget=forms.CheckboxSelectMultiple,
        distinct=False,
    )
    event_type = django_filters.ChoiceFilter(
        label=_("Event"), field_name="event__event_type", choices=EventType.choices
    )

    class Meta:
        model = WebhookDelivery
        fields = ["state", "event_type"]
