"""The catalogue editor's page for an item's provisioning actions, with the dry run.

It lives here, not in ``catalogue.editor``: the catalogue sits below provisioning and must
not import it (tests/test_layout.py).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from catalogue.editor.forms import rows
from catalogue.editor.views import require_editor
from catalogue.forms import PersonField
from catalogue.models import CatalogueItem
from provisioning import dry_run, services
from provisioning.models import ProvisioningAction


class ActionRowForm(forms.ModelForm):
    class Meta:
        model = ProvisioningAction
        fields = ["position", "kind", "target", "attributes"]
        widgets = {"attributes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False

    def _post_clean(self):
        pass  # checked by the service with the whole item


ActionFormSet = forms.formset_factory(
    ActionRowForm, extra=1, can_delete=True, max_num=50, absolute_max=50, validate_max=True
)


class DryRunForm(forms.Form):
    person = PersonField(
        label=gettext_lazy("For whom"),
        help_text=gettext_lazy("Personnel number (or “Name (number)”) of the person to check."),
    )
    answers = forms.CharField(
        label=gettext_lazy("Sample answers"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One “key = value” per line, e.g. share_group = cn=…"),
    )

    def clean_answers(self):
        try:
            return dry_run.parse_answers(self.cleaned_data["answers"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class ItemActionsView(View):
    template_name = "provisioning/editor_actions.html"

    def _item(self, request, pk) -> CatalogueItem:
        require_editor(request)
        if not request.user.has_perm("provisioning.change_provisioningaction"):
            raise PermissionDenied(_("You may not change provisioning actions."))
        return get_object_or_404(CatalogueItem, pk=pk)

    def _render(self, request, item, formset, check, lines=None, status=200):
        context = {"item": item, "formset": formset, "check": check, "lines": lines}
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk):
        item = self._item(request, pk)
        initial = [
            {"position": a.position, "kind": a.kind, "target": a.target, "attributes": a.attributes}
            for a in item.provisioning_actions.all()
        ]
        employee = getattr(request.user, "employee", None)
        check = DryRunForm(initial={"person": employee.personnel_number if employee else ""})
        return self._render(request, item, ActionFormSet(prefix="actions", initial=initial), check)

    def post(self, request, pk):
        item = self._item(request, pk)
        formset = ActionFormSet(request.POST, prefix="actions")
        valid = formset.is_valid()
        if "dry_run" in request.POST:
            # The dry run checks the actions as typed, saved or not.
            check = DryRunForm(request.POST)
            lines = None
            if check.is_valid():
                actions = [
                    ProvisioningAction(item=item, **values)
                    for _i, values in rows(formset, lenient=True)
                ]
                lines = dry_run.dry_run(
                    actions=actions,
                    beneficiary=check.cleaned_data["person"],
                    answers=check.cleaned_data["answers"],
                )
            return self._render(
                request, item, formset, check, lines, status=200 if lines is not None else 400
            )
        check = DryRunForm(initial={"person": request.POST.get("person", "")})
        if valid:
            kept = rows(formset)
            try:
                services.item_actions_save(item=item, actions=[v for _i, v in kept])
            except ValidationError as exc:
                for where, errors in exc.message_dict.items():
                    head, _sep, field = where.partition(".")
                    index = int(head.partition("[")[2].rstrip("]") or 0)
                    form = formset.forms[kept[index][0]]
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, _("The provisioning actions have been saved."))
                return redirect("provisioning:item_actions", pk=item.pk)
        return self._render(request, item, formset, check, status=400)
