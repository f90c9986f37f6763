"""JSON order bodies in, through the browser's OrderForm, and its errors back out.

The API does not validate answers itself: it turns the JSON into the form data a browser
would post, lets ``catalogue.forms.OrderForm`` judge it, and reports the form's errors
under the names the API uses (``answers.<key>`` for the item's own fields).
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _

from catalogue.choices import FieldType
from catalogue.forms import OrderForm

SCALAR = (str, int, float, Decimal)


def _scalar(value, definition) -> str | bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        if definition.field_type == FieldType.YES_NO:
            return ("yes" if value else "no") if definition.required else value
        return None  # reported as a type error by the caller
    if isinstance(value, SCALAR):
        return str(value)
    return None


def order_form_data(body: dict, item) -> tuple[MultiValueDict, dict]:
    """Form data for OrderForm from an API body, and type errors the form cannot see."""
    data = MultiValueDict()
    errors: dict[str, list[str]] = {}
    data["item_version"] = str(body["item_version"])
    if body.get("beneficiary"):
        data["beneficiary"] = body["beneficiary"]
    if body.get("cost_centre") is not None:
        data["cost_centre"] = str(body["cost_centre"])
    data["justification"] = body.get("justification") or ""
    answers = body.get("answers") or {}
    definitions = {d.key: d for d in item.form_fields.all()}
    for key in answers:
        if key not in definitions:
            errors[f"answers.{key[:100]}"] = [_("This item's form has no such field.")]
    for key, definition in definitions.items():
        name = OrderForm.FIELD_PREFIX + key
        value = answers.get(key)
        if value is None:
            continue
        if definition.field_type == FieldType.MULTIPLE_CHOICE:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[f"answers.{key}"] = [_("Expected a list of options.")]
                continue
            data.setlist(name, value)
            continue
        if definition.field_type == FieldType.YES_NO and not isinstance(value, bool):
            errors[f"answers.{key}"] = [_("Expected true or false.")]
            continue
        converted = _scalar(value, definition)
        if converted is None:
            errors[f"answers.{key}"] = [
                _("Expected a single value, not %(type)s.") % {"type": type(value).__name__}
            ]
            continue
        data[name] = converted
    return data, errors


def order_form_errors(form: OrderForm) -> dict[str, list[str]]:
    """The form's errors under the API's names."""
    result = {}
    for name, errors in form.errors.items():
        if name.startswith(OrderForm.FIELD_PREFIX):
            name = "answers." + name[len(OrderForm.FIELD_PREFIX) :]
        elif name == "__all__":
            name = "non_field_errors"
        result[name] = list(errors)
    return result


def bundle_form_data(body: dict, entries_by_slug: dict) -> tuple[MultiValueDict, set, dict]:
    """The bundle page's form data from an API body: the shared fields once, each chosen
    item's answers under its entry's prefix; with the chosen entry ids and the type errors."""
    data = MultiValueDict()
    chosen: set[int] = set()
    errors: dict[str, list[str]] = {}
    shared = {name: body.get(name) for name in ("beneficiary", "cost_centre", "justification")}
    for choice in body["items"]:
        slug = choice["item"]
        entry = entries_by_slug.get(slug)
        if entry is None:
            errors[f"items.{slug}"] = [_("The bundle has no such item.")]
            continue
        chosen.add(entry.pk)
        item_body = {
            **shared,
            "item_version": choice["item_version"],
            "answers": choice.get("answers"),
        }
        item_data, item_errors = order_form_data(item_body, entry.item)
        for name, values in item_data.lists():
            data.setlist(name if name in shared else f"e{entry.pk}-{name}", values)
        errors.update({f"items.{slug}.{name}": messages for name, messages in item_errors.items()})
    return data, chosen, errors


def bundle_line_errors(lines, slug_of: dict) -> dict[str, list[str]]:
    """Errors of the checked bundle lines under the API's names (``items.<slug>.…``); the
    shared fields' errors once under their own names."""
    errors: dict[str, list[str]] = {}
    for line in lines:
        if not line.errors:
            continue
        slug = slug_of[line.key]
        if line.closed or line.form.is_valid():
            errors[f"items.{slug}"] = list(line.errors)
            continue
        for name, messages in order_form_errors(line.form).items():
            if name in ("beneficiary", "cost_centre", "justification"):
                errors.setdefault(name, messages)
            else:
                errors[f"items.{slug}.{name}"] = messages
    return errors
