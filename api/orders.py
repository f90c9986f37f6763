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
