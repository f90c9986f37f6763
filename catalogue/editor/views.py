"""The catalogue editor's pages: the item list, one item with its order form, rules and
approval steps, and the live preview of the order form being built."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from catalogue import conditions, selectors, services
from catalogue.editor.forms import (
    ITEM_FIELDS,
    FieldFormSet,
    ItemEditorForm,
    RuleFormSet,
    StepFormSet,
    rows,
)
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem, FormField, FormRule
from itportal.roles import is_it_admin

# formset prefix → (formset class, item_save argument, its name in item_save's errors)
SECTIONS = {
    "fields": (FieldFormSet, "form_fields", "form_fields"),
    "rules": (RuleFormSet, "form_rules", "form_rules"),
    "steps": (StepFormSet, "approval_steps", "approval_policy"),
}


def require_editor(request) -> None:
    """IT administration with the right to change items (the IT-admin role has it)."""
    if not (is_it_admin(request.user) and request.user.has_perm("catalogue.change_catalogueitem")):
        raise PermissionDenied(_("Only IT administration edits the catalogue."))


def _initial(item: CatalogueItem | None, prefix: str) -> list[dict]:
    if item is None:
        return []
    formset_class = SECTIONS[prefix][0]
    names = formset_class.form.Meta.fields
    related = {
        "fields": item.form_fields.all(),
        "rules": item.form_rules.all(),
        "steps": item.approval_steps.all(),
    }[prefix]
    return [
        {name: getattr(row, "group_id" if name == "group" else name) for name in names}
        for row in related
    ]


class Editor:
    """The item form and its three formsets, bound to a post or filled from the item."""

    def __init__(self, item: CatalogueItem | None, data=None):
        self.item = item
        # The form gets its own copy: it writes the posted values into its instance while
        # validating, and item_save compares the item before and after (the version).
        copy = CatalogueItem.objects.get(pk=item.pk) if item else CatalogueItem()
        self.form = ItemEditorForm(data, instance=copy)
        self.formsets = {
            prefix: cls(data, prefix=prefix, initial=None if data else _initial(item, prefix))
            for prefix, (cls, _arg, _name) in SECTIONS.items()
        }

    def is_valid(self) -> bool:
        results = [self.form.is_valid()] + [fs.is_valid() for fs in self.formsets.values()]
        return all(results)

    def save(self) -> CatalogueItem | None:
        """Saved item, or None with the errors put on the forms."""
        kept = {prefix: rows(fs) for prefix, fs in self.formsets.items()}
        arguments = {
            SECTIONS[prefix][1]: [values for _index, values in entries]
            for prefix, entries in kept.items()
        }
        data = {name: self.form.cleaned_data[name] for name in ITEM_FIELDS}
        try:
            return services.item_save(item=self.item, data=data, **arguments)
        except ValidationError as exc:
            self._place_errors(exc, kept)
            return None

    def _place_errors(self, exc: ValidationError, kept) -> None:
        by_name = {SECTIONS[prefix][2]: prefix for prefix in SECTIONS}
        for where, messages_ in exc.message_dict.items():
            head, _sep, field = where.partition(".")
            name, _bracket, index = head.partition("[")
            if name in by_name and index:
                prefix = by_name[name]
                position = int(index.rstrip("]"))
                form = self.formsets[prefix].forms[kept[prefix][position][0]]
                target = field if field in form.fields else None
                for message in messages_:
                    form.add_error(target, message)
            else:
                target = where if where in self.form.fields else None
                for message in messages_:
                    self.form.add_error(target, message)

    def preview(self) -> OrderForm:
        """The order form as employees would see it, from the rows posted so far."""
        if self.form.is_bound:
            fields, rules = self.formsets["fields"], self.formsets["rules"]
            definitions = [FormField(**values) for _i, values in rows(fields, lenient=True)]
            rules = [FormRule(**values) for _i, values in rows(rules, lenient=True)]
        elif self.item is not None:
            definitions, rules = list(self.item.form_fields.all()), list(self.item.form_rules.all())
        else:
            definitions, rules = [], []
        form = OrderForm(
            item=self.item or CatalogueItem(),
            requester_employee=None,
            definitions=definitions,
            rules=rules,
            auto_id="preview_%s",
        )
        labels = {d.key: d.label for d in definitions}
        form.condition_notes = {
            OrderForm.FIELD_PREFIX + d.key: conditions.describe(d, labels)
            for d in definitions
            if conditions.has_condition(d)
        }
        return form

    def has_errors(self) -> bool:
        return bool(self.form.errors) or any(
            fs.total_error_count() for fs in self.formsets.values()
        )


class ItemListView(View):
    def get(self, request):
        require_editor(request)
        context = {"items": selectors.items_for_editor()}
        return render(request, "catalogue/editor/list.html", context)


class ItemEditView(View):
    """Create (no pk) or change an item; "Vorschau aktualisieren" renders without saving."""

    template_name = "catalogue/editor/edit.html"

    def _item(self, request, pk):
        require_editor(request)
        if pk is None:
            return None
        return get_object_or_404(CatalogueItem.objects.select_related("category"), pk=pk)

    def _render(self, request, editor, status=200):
        context = {"item": editor.item, "editor": editor, "preview": editor.preview()}
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk=None):
        item = self._item(request, pk)
        return self._render(request, Editor(item))

    def post(self, request, pk=None):
        item = self._item(request, pk)
        editor = Editor(item, request.POST)
        valid = editor.is_valid()
        if "preview" in request.POST:
            return self._render(request, editor)
        saved = editor.save() if valid else None
        if saved is None:
            return self._render(request, editor, status=400)
        messages.success(
            request,
            _("The item has been saved (version %(version)s).") % {"version": saved.version},
        )
        return redirect("catalogue:editor_edit", pk=saved.pk)


class ItemPreviewView(View):
    """The preview partial for the editor's script: posted editor data in, HTML out."""

    def post(self, request, pk=None):
        item = ItemEditView()._item(request, pk)
        editor = Editor(item, request.POST)
        editor.is_valid()
        return render(request, "catalogue/editor/preview.html", {"preview": editor.preview()})
