from django import forms
from django.utils.translation import gettext_lazy as _


class PersonForm(forms.Form):
    person = forms.CharField(
        label=_("Person"),
        max_length=150,
        help_text=_("Personnel number or user name."),
    )


class AuditFilterForm(forms.Form):
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    request = forms.IntegerField(
        label=_("Request number"), required=False, min_value=1, max_value=2**31 - 1
    )
    person = forms.CharField(
        label=_("Person"),
        max_length=150,
        required=False,
        help_text=_("Personnel number or user name: as actor, requester or beneficiary."),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        return cleaned
