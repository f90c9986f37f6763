"""The catalogue editor's bundle pages: the list, and one bundle with its items.

IT admins put items together for one occasion ("Neue Mitarbeiterin / neuer Mitarbeiter")
without the Django admin; ``catalogue.services.bundle_save`` checks and saves all or nothing.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from catalogue import services
from catalogue.editor.forms import RowForm, rows
from catalogue.editor.views import require_editor
from catalogue.models import Bundle, BundleItem, CatalogueItem

BUNDLE_FIELDS = ["name", "slug", "description", "position", "is_active"]


class BundleEditorForm(forms.ModelForm):
    class Meta:
        model = Bundle
        fields = BUNDLE_FIELDS
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}


class EntryRowForm(RowForm):
    class Meta:
        model = BundleItem
        fields = ["position", "item", "selected"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Empty for a new row, so that it goes last (not the model's 0, which sorts first).
        self.fields["position"].initial = None
        # One query for the options; retired items are listed too (they show as such).
        self.fields["item"].queryset = CatalogueItem.objects.select_related("category")
        self.fields["item"].label_from_instance = _item_label


def _item_label(item) -> str:
    if item.is_active:
        return f"{item.name} ({item.category.name})"
    return _("%(name)s (%(category)s, retired)") % {
        "name": item.name,
        "category": item.category.name,
    }


EntryFormSet = forms.formset_factory(
    EntryRowForm,
    extra=1,
    can_delete=True,
    max_num=services.BUNDLE_MAX_ITEMS,
    absolute_max=services.BUNDLE_MAX_ITEMS,
    validate_max=True,
)


def _require_bundle_editor(request, *, create: bool) -> None:
    require_editor(request)
    needed = "catalogue.add_bundle" if create else "catalogue.change_bundle"
    if not request.user.has_perm(needed):
        raise PermissionDenied(_("You may not change bundles."))


class BundleListView(View):
    def get(self, request):
        _require_bundle_editor(request, create=False)
        bundles = Bundle.objects.annotate(item_count=Count("entries")).order_by("position", "name")
        return render(request, "catalogue/editor/bundle_list.html", {"bundles": bundles})


class BundleEditView(View):
    """Create (no pk) or change a bundle and its items."""

    template_name = "catalogue/editor/bundle_edit.html"

    def _bundle(self, request, pk):
        _require_bundle_editor(request, create=pk is None)
        return None if pk is None else get_object_or_404(Bundle, pk=pk)

    def _render(self, request, bundle, form, formset, status=200):
        context = {"bundle": bundle, "form": form, "formset": formset}
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk=None):
        bundle = self._bundle(request, pk)
        initial = []
        if bundle is not None:
            initial = [
                {"position": e.position, "item": e.item_id, "selected": e.selected}
                for e in bundle.entries.all()
            ]
        form = BundleEditorForm(instance=bundle)
        formset = EntryFormSet(prefix="entries", initial=initial)
        return self._render(request, bundle, form, formset)

    def post(self, request, pk=None):
        bundle = self._bundle(request, pk)
        # The form gets its own copy: it writes the posted values into its instance.
        copy = Bundle.objects.get(pk=bundle.pk) if bundle else Bundle()
        form = BundleEditorForm(request.POST, instance=copy)
        formset = EntryFormSet(request.POST, prefix="entries")
        valid = form.is_valid() & formset.is_valid()
        if valid:
            kept = rows(formset)
            data = {name: form.cleaned_data[name] for name in BUNDLE_FIELDS}
            try:
                saved = services.bundle_save(
                    bundle=bundle, data=data, entries=[values for _i, values in kept]
                )
            except ValidationError as exc:
                _place_errors(exc, form, formset, kept)
            else:
                messages.success(request, _("The bundle has been saved."))
                return redirect("catalogue:editor_bundle", pk=saved.pk)
        return self._render(request, bundle, form, formset, status=400)


def _place_errors(exc: ValidationError, form, formset, kept) -> None:
    for where, errors in exc.message_dict.items():
        head, _sep, field = where.partition(".")
        name, _bracket, index = head.partition("[")
        if name == "entries" and index:
            row = formset.forms[kept[int(index.rstrip("]"))][0]]
            for error in errors:
                row.add_error(field if field in row.fields else None, error)
        else:
            target = where if where in form.fields else None
            for error in errors:
                form.add_error(target, error)
