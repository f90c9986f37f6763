"""Forms of the catalogue editor. They shape the posted rows; ``catalogue.services.item_save``
validates them as a whole (the same path as the API) and saves all or nothing."""

from __future__ import annotations

from django import forms

from catalogue.models import ApprovalPolicyStep, CatalogueItem, FormField, FormRule

ITEM_FIELDS = [
    "name",
    "slug",
    "category",
    "summary",
    "description",
    "keywords",
    "service_owner",
    "fulfilment_kind",
    "grants_access",
    "collect_on_leaving",
    "independent_fulfilment",
    "price_once",
    "price_monthly",
    "sla_target_days",
    "response_target_hours",
    "orderable_for_others",
    "is_active",
]


class ItemEditorForm(forms.ModelForm):
    class Meta:
        model = CatalogueItem
        fields = ITEM_FIELDS
        widgets = {
            "description": forms.Textarea(attrs={"rows": 6}),
            "keywords": forms.TextInput(),
        }


class RowForm(forms.ModelForm):
    """One row of a formset: position optional (empty rows go to the end)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False

    def _post_clean(self):
        # The model checks need the whole item (other rows, the item itself): item_save.
        pass


class FieldRowForm(RowForm):
    class Meta:
        model = FormField
        fields = [
            "position",
            "key",
            "label",
            "field_type",
            "required",
            "help_text",
            "choices",
            "answer_format",
            "pattern",
            "min_value",
            "max_value",
            "max_length",
            "earliest_days",
            "latest_days",
            "needed_from",
            "directory_base",
            "condition_effect",
            "condition_field",
            "condition_operator",
            "condition_value",
        ]
        widgets = {
            "choices": forms.Textarea(attrs={"rows": 3}),
            "condition_value": forms.Textarea(attrs={"rows": 2}),
        }


class RuleRowForm(RowForm):
    class Meta:
        model = FormRule
        fields = ["position", "kind", "first_field", "second_field", "more_fields", "message"]
        widgets = {"more_fields": forms.Textarea(attrs={"rows": 2})}


class StepRowForm(RowForm):
    class Meta:
        model = ApprovalPolicyStep
        fields = ["position", "approver_kind", "group", "person_field_key", "label"]


def _formset(form, max_num):
    return forms.formset_factory(
        form,
        extra=1,
        can_delete=True,
        max_num=max_num,
        absolute_max=max_num,
        validate_max=True,
    )


FieldFormSet = _formset(FieldRowForm, 100)
RuleFormSet = _formset(RuleRowForm, 50)
StepFormSet = _formset(StepRowForm, 20)


NULLABLE = ("min_value", "max_value", "max_length", "earliest_days", "latest_days", "group")


def rows(formset, lenient=False) -> list[tuple[int, dict]]:
    """(form index, model values) of the kept, filled-in rows, in position order; positions
    renumbered 1, 2, … so a new row without one goes last and gaps close. ``lenient``
    (the preview): rows with errors are left out instead of expected to be absent."""
    names = list(formset.form.Meta.fields)
    kept = []
    for index, form in enumerate(formset.forms):
        if not form.has_changed() and form.empty_permitted:
            continue
        if lenient and not form.is_valid():
            continue
        data = form.cleaned_data
        if not data or data.get("DELETE"):
            continue
        kept.append((index, {name: data.get(name) for name in names}))
    kept.sort(key=lambda entry: (entry[1]["position"] is None, entry[1]["position"] or 0, entry[0]))
    for number, (_index, values) in enumerate(kept, start=1):
        values["position"] = number
        for name, value in values.items():
            if value is None and name not in NULLABLE:
                values[name] = ""
    return kept
