from django import forms
from django.utils.translation import gettext_lazy as _

from catalogue.models import CatalogueItem, Department
from governance.choices import CampaignScope, OutcomeStrategy, ReviewerRule, UndecidedDefault
from governance.services import StageSpec

NO_STAGE = [("", _("No second stage"))]


class CampaignForm(forms.Form):
    """Start a recertification: what is in scope, one or two stages, and the default for
    what nobody decides."""

    name = forms.CharField(
        label=_("Name"),
        max_length=200,
        help_text=_("For example “Rezertifizierung 2027”. At most 200 characters."),
    )
    scope = forms.ChoiceField(
        label=_("What to review"),
        choices=CampaignScope.choices,
        initial=CampaignScope.ALL,
        widget=forms.RadioSelect,
    )
    scope_item = forms.ModelChoiceField(
        label=_("Service (when reviewing one service)"),
        queryset=CatalogueItem.objects.filter(grants_access=True).order_by("name"),
        required=False,
    )
    scope_department = forms.ModelChoiceField(
        label=_("Department (when reviewing one department)"),
        queryset=Department.objects.order_by("code"),
        required=False,
        help_text=_("Its sub-departments are included."),
    )
    risk_limit = forms.IntegerField(
        label=_("Number of riskiest accesses (when reviewing by risk)"),
        min_value=1,
        max_value=100_000,
        required=False,
        help_text=_(
            "Risk: services in a segregation-of-duties rule first, then directory access, "
            "access without an end date and the monthly price."
        ),
    )
    rule_1 = forms.ChoiceField(
        label=_("Stage 1: who reviews"),
        choices=ReviewerRule.choices,
        initial=ReviewerRule.LINE_MANAGER,
        help_text=_("Nobody reviews their own access: it goes to IT administration instead."),
    )
    strategy_1 = forms.ChoiceField(
        label=_("Stage 1: outcome when several review"),
        choices=OutcomeStrategy.choices,
        initial=OutcomeStrategy.ONE_ACCEPT_ACCEPTS,
    )
    days_1 = forms.IntegerField(
        label=_("Stage 1: working days to decide"), min_value=1, max_value=250, initial=20
    )
    rule_2 = forms.ChoiceField(
        label=_("Stage 2: who reviews"),
        choices=NO_STAGE + list(ReviewerRule.choices),
        required=False,
        help_text=_("Only what stage 1 kept goes on to stage 2."),
    )
    strategy_2 = forms.ChoiceField(
        label=_("Stage 2: outcome when several review"),
        choices=OutcomeStrategy.choices,
        initial=OutcomeStrategy.ONE_ACCEPT_ACCEPTS,
    )
    days_2 = forms.IntegerField(
        label=_("Stage 2: working days to decide"), min_value=1, max_value=250, initial=10
    )
    undecided_default = forms.ChoiceField(
        label=_("Access nobody decided on when a stage closes"),
        choices=UndecidedDefault.choices,
        widget=forms.RadioSelect,
    )

    def stages(self) -> list[StageSpec]:
        data = self.cleaned_data
        stages = [StageSpec(data["rule_1"], data["strategy_1"], data["days_1"])]
        if data.get("rule_2"):
            stages.append(StageSpec(data["rule_2"], data["strategy_2"], data["days_2"]))
        return stages


class RerunForm(forms.Form):
    working_days = forms.IntegerField(
        label=_("Working days for the new round"), min_value=1, max_value=250, initial=5
    )
