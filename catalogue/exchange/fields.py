"""The one list of exported fields per model.

A new plain model field is one line here plus one line in the schema. Relations (category,
groups, departments, DNs) are written by ``services`` because they become slugs or placeholders.
"""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Plain:
    """A field stored as is (text, number, boolean)."""

    name: str

    def dump(self, value):
        return value

    def load(self, value):
        return value


@dataclass(frozen=True)
class Money:
    """A decimal, as a string so no precision is lost ("12.50"); ``None`` stays ``None``."""

    name: str

    def dump(self, value):
        return None if value is None else str(value)

    def load(self, value):
        return None if value is None else Decimal(value)


@dataclass(frozen=True)
class Lines:
    """A one-entry-per-line text field, as a list of its non-empty lines."""

    name: str

    def dump(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def load(self, value):
        return "\n".join(value)


CATEGORY_FIELDS = (Plain("slug"), Plain("name"), Plain("description"), Plain("position"))

ITEM_FIELDS = (
    Plain("slug"),
    Plain("name"),
    Plain("summary"),
    Plain("description"),
    Plain("fulfilment_kind"),
    Money("price_once"),
    Money("price_monthly"),
    Plain("audience"),
    Plain("orderable_for_others"),
    Plain("is_active"),
    Plain("valid_until_field"),
    # Optional in the schema (added after 1.0 was first published): a city may drop them.
    Plain("licence_pool_size"),
    Plain("licence_warning_below"),
    Plain("keywords"),
    Plain("independent_fulfilment"),
    Plain("grants_access"),
    Plain("sla_target_days"),
    Plain("collect_on_leaving"),
    Plain("response_target_hours"),
)

FORM_FIELD_FIELDS = (
    Plain("key"),
    Plain("label"),
    Plain("help_text"),
    Plain("field_type"),
    Plain("required"),
    Plain("position"),
    Lines("choices"),
    Plain("pattern"),
    Money("min_value"),
    Money("max_value"),
    Plain("max_length"),
    # directory_base: a DN, exported as a placeholder (services).
    # Optional in the schema (added in 1.x): named formats and conditions.
    Plain("answer_format"),
    Plain("condition_effect"),
    Plain("condition_field"),
    Plain("condition_operator"),
    Plain("condition_value"),
    # Optional in the schema (added in 1.x): date bounds and the 'needed from' date.
    Plain("earliest_days"),
    Plain("latest_days"),
    Plain("needed_from"),
)

FORM_RULE_FIELDS = (
    Plain("position"),
    Plain("kind"),
    Plain("first_field"),
    Plain("second_field"),
    Plain("more_fields"),
    Plain("message"),
)

APPROVAL_STEP_FIELDS = (
    Plain("position"),
    Plain("approver_kind"),
    Plain("person_field_key"),
    Plain("label"),
    # group: a placeholder (services).
)

BUNDLE_FIELDS = (
    Plain("slug"),
    Plain("name"),
    Plain("description"),
    Plain("is_active"),
    Plain("position"),
)

BUNDLE_ITEM_FIELDS = (
    Plain("position"),
    Plain("selected"),
    # item: its slug (services).
)

PROVISIONING_ACTION_FIELDS = (
    Plain("position"),
    Plain("kind"),
    # target and attributes: templates whose DNs become placeholders (services).
)


def dump(obj, fields) -> dict:
    return {f.name: f.dump(getattr(obj, f.name)) for f in fields}


def load(data: dict, fields) -> dict:
    """Model values from the document; a field the schema leaves optional (one added in a
    later 1.x version) may be missing, and the model's default applies."""
    return {f.name: f.load(data[f.name]) for f in fields if f.name in data}
