from django import forms
from django.utils.translation import gettext_lazy as _

from webhooks import addresses
from webhooks.choices import SUBSCRIBABLE


class EndpointForm(forms.Form):
    """The fields an IT admin edits; services.endpoint_create/update check them again."""

    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        widget=forms.URLInput(attrs={"autocomplete": "url", "spellcheck": "false"}),
        help_text=_(
            "Where the portal sends the events, e.g. https://intranet.example/hooks/itportal. "
            "Must be https:// and reachable; internal addresses only if the operators "
            "allowed their network."
        ),
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=200,
        required=False,
        help_text=_("Which system receives the events and who is responsible for it."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=SUBSCRIBABLE,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Please choose at least one event.")},
    )
    is_active = forms.BooleanField(
        label=_("Active (events are sent)"), required=False, initial=True
    )

    def clean_url(self):
        # Checked here too, so every wrong field is reported at once.
        url = self.cleaned_data["url"].strip()
        try:
            addresses.check_url(url)
        except addresses.UnsafeURL as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url
