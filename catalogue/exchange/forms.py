"""Forms of the exchange pages: what to export, the file to import, the placeholder mapping."""

from django import forms
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from catalogue.exchange import placeholders as ph
from catalogue.exchange.services import CONFLICT_POLICIES, SKIP
from catalogue.exchange.validation import MAX_UPLOAD_BYTES, used_placeholders
from catalogue.models import CatalogueItem, Category, Department

KIND_LABELS = {
    ph.GROUP: _("portal group"),
    ph.DEPARTMENT: _("department"),
    ph.DIRECTORY_GROUP: _("directory group (DN)"),
    ph.DIRECTORY_BASE: _("directory base (DN)"),
    ph.DIRECTORY_DN: _("directory entry (DN)"),
}
CONFLICT_LABELS = {
    "skip": _("Skip them: keep the local item unchanged"),
    "update": _("Update them: replace the local item's content with the file's"),
    "rename": _("Import them as new items under a new slug (e.g. vpn-zugang-2)"),
}


class ExportForm(forms.Form):
    categories = forms.ModelMultipleChoiceField(
        queryset=Category.objects.all(),
        to_field_name="slug",
        required=False,
        label=_("Categories"),
        widget=forms.CheckboxSelectMultiple,
    )
    items = forms.ModelMultipleChoiceField(
        queryset=CatalogueItem.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        label=_("Items"),
        help_text=_("Nothing chosen: the whole catalogue is exported."),
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("Exchange file (JSON)"),
        help_text=_("A catalogue exchange document, at most %(limit)s MB.")
        % {"limit": MAX_UPLOAD_BYTES // 1024 // 1024},
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s MB."),
                params={"limit": MAX_UPLOAD_BYTES // 1024 // 1024},
            )
        return upload


class MappingForm(forms.Form):
    """One field per placeholder the items use, and what to do with existing slugs."""

    on_conflict = forms.ChoiceField(
        label=_("Items whose slug already exists here"),
        choices=[(policy, CONFLICT_LABELS[policy]) for policy in CONFLICT_POLICIES],
        initial=SKIP,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, document: dict, directory_groups: list[dict] | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.names = used_placeholders(document)
        groups = list(Group.objects.order_by("name").values_list("name", flat=True))
        departments = list(Department.objects.order_by("code").values_list("code", "name"))
        for name in self.names:
            declared = document["placeholders"][name]
            kind, example = declared["kind"], declared["example"]
            label = f"{name} ({KIND_LABELS[kind]})"
            help_text = _("In the file: %(example)s") % {
                "example": " – ".join(v for v in (example, declared["description"]) if v)
            }
            if kind == ph.GROUP:
                field = forms.ChoiceField(choices=[("", "—"), *((g, g) for g in groups)])
                initial = example if example in groups else ""
            elif kind == ph.DEPARTMENT:
                codes = {code for code, _name in departments}
                field = forms.ChoiceField(
                    choices=[("", "—"), *((c, f"{c} {n}") for c, n in departments)]
                )
                initial = example if example in codes else ""
            elif kind == ph.DIRECTORY_GROUP and directory_groups is not None:
                dns = [g["dn"] for g in directory_groups]
                field = forms.ChoiceField(
                    choices=[
                        ("", "—"),
                        *((g["dn"], f"{g['name']} ({g['dn']})") for g in directory_groups),
                    ]
                )
                initial = example if example in dns else ""
            else:
                field = forms.CharField(max_length=500, strip=True)
                initial = example
            field.label, field.help_text, field.initial = label, help_text, initial
            field.required = True
            self.fields[f"ph_{name}"] = field

    def placeholder_fields(self):
        return [self[f"ph_{name}"] for name in self.names]

    def mapping(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(f"ph_{name}") or "" for name in self.names}

    def add_problems(self, problems) -> None:
        """Show the service's mapping problems at their fields."""
        for problem in problems:
            name = problem.path.rpartition(".")[2]
            key = f"ph_{name}" if f"ph_{name}" in self.fields else None
            self.add_error(key, problem.message if key else str(problem))
