"""The 'directory group' order-form field and the 'owner of the chosen group' approver.

Registered with catalogue.forms and requests_app.services in AppConfig.ready, so
neither of those apps imports the directory code.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from catalogue.models import Employee
from provisioning.backends import get_backend
from provisioning.backends.errors import DirectoryError


@dataclass(frozen=True)
class ChosenGroup:
    dn: str
    name: str

    def as_answer(self) -> dict:
        return {"dn": self.dn, "name": self.name}


class DirectoryGroupField(forms.ChoiceField):
    """Offers the groups below a base DN; the answer is the chosen group's DN and name."""

    default_error_messages = {
        "directory": _("The directory cannot be reached just now; please try again later."),
    }

    def __init__(self, *, base: str, **kwargs):
        self.base = base
        self._groups: dict[str, str] | None = None
        super().__init__(choices=self._choices, **kwargs)

    def _load(self) -> dict[str, str]:
        if self._groups is None:
            try:
                groups = get_backend().list_groups(self.base)
            except DirectoryError:
                groups = []
            self._groups = {
                g["dn"]: f"{g['name']} – {g['description']}" if g["description"] else g["name"]
                for g in groups
            }
        return self._groups

    def _choices(self):
        return [("", "—"), *self._load().items()]

    def valid_value(self, value):
        return value in self._load()

    def clean(self, value):
        if value and not self._load():
            raise ValidationError(self.error_messages["directory"], code="directory")
        value = super().clean(value)
        if not value:
            return None
        return ChosenGroup(dn=value, name=self._load()[value].split(" – ")[0])


def groups_below_group_base() -> list[dict] | None:
    """Every group below DIRECTORY_GROUP_BASE (for mapping imported placeholders), or None
    without a configured, reachable directory."""
    base = settings.DIRECTORY.get("group_base")
    if not settings.DIRECTORY.get("url") or not base:
        return None
    try:
        return get_backend().list_groups(base)
    except DirectoryError:
        return None


def build_directory_group_field(definition, **common) -> forms.Field:
    return DirectoryGroupField(base=definition.directory_base, **common)


def resolve_group_owner(step: dict, service_request) -> Employee | None:
    """Approver step 'owner of the chosen group': the group's owner attribute in the directory."""
    answer = (service_request.answers or {}).get(step.get("person_field_key") or "") or {}
    dn = answer.get("dn") if isinstance(answer, dict) else None
    if not dn:
        return None
    try:
        uid = get_backend().group_owner_uid(dn)
    except DirectoryError:
        return None
    if not uid:
        return None
    return Employee.objects.select_related("user").filter(personnel_number=uid).first()
