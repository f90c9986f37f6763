import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from notifications import registry
from notifications.choices import MailState
from notifications.models import OutgoingMail


class MailFilterSet(django_filters.FilterSet):
    """Without a chosen state the page shows every mail not sent yet."""

    state = django_filters.MultipleChoiceFilter(
        label=_("State"),
        choices=MailState.choices,
        widget=forms.CheckboxSelectMultiple,
        distinct=False,
    )
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=registry.choices)
    q = django_filters.CharFilter(label=_("Address or subject"), method="search")

    class Meta:
        model = OutgoingMail
        fields = ["state", "kind", "q"]

    @property
    def qs(self):
        queryset = super().qs
        chosen = self.is_bound and self.form.is_valid() and self.form.cleaned_data.get("state")
        return queryset if chosen else queryset.exclude(state=MailState.SENT)

    def search(self, queryset, name, value):
        value = value.replace("\x00", "").strip()[:200]
        if not value:
            return queryset
        return queryset.filter(Q(to__icontains=value) | Q(subject__icontains=value))
