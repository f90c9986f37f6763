import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from itportal.inputs import BoundedDateField


class CampaignForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=200,
        help_text=_("For example “Rezertifizierung 2027”. At most 200 characters."),
    )
    due_on = BoundedDateField(
        label=_("Decisions due by"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("A date within the next year."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("due_on", timezone.localdate() + datetime.timedelta(days=28))
