"""Conditional fields and rules across answers: one evaluator for every way of ordering.

The order page and the API judge answers through ``OrderForm``, which asks this module which
fields are shown and required and which rules are broken. ``form_logic`` serialises the same
definitions for ``static/js/form-conditions.js``, which mirrors ``field_states`` in the
browser (show/hide, mark required); the server's judgement is the one that counts.

Answers are compared in their JSON form (``OrderForm.answers``): strings, lists for multiple
choice, booleans for yes/no, decimal strings for numbers, ISO dates, ``{"uid": …}`` for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from catalogue.choices import ConditionEffect, ConditionOperator, FieldType, RuleKind

# Rules comparing two answers need two fields of one of these types (the same for both).
ORDERED_TYPES = {
    RuleKind.AFTER: (FieldType.DATE,),
    RuleKind.NOT_GREATER: (FieldType.NUMBER, FieldType.DATE),
}


@dataclass(frozen=True)
class FieldState:
    visible: bool
    required: bool


def is_empty(value) -> bool:
    """Not answered: nothing, blanks, no option, or a yes/no left at "no"."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return not value
    return False


def _scalar_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):  # a person
        return str(value.get("uid", ""))
    return str(value).strip()


def _equal(answer, expected: str) -> bool:
    expected = expected.strip()
    if isinstance(answer, list):
        return expected in [str(v).strip() for v in answer]
    text = _scalar_text(answer)
    if text == expected:
        return True
    try:
        return Decimal(text) == Decimal(expected)
    except (InvalidOperation, ValueError):
        return False


def condition_values(definition) -> list[str]:
    lines = (definition.condition_value or "").splitlines()
    return [line.strip() for line in lines if line.strip()]


def condition_holds(definition, answer) -> bool:
    operator = definition.condition_operator
    if operator == ConditionOperator.IS_SET:
        return not is_empty(answer)
    if is_empty(answer) and not isinstance(answer, bool):
        return False
    values = condition_values(definition)
    if operator == ConditionOperator.EQUALS:
        return bool(values) and _equal(answer, values[0])
    if operator == ConditionOperator.ONE_OF:
        return any(_equal(answer, v) for v in values)
    return False


def has_condition(definition) -> bool:
    return bool(definition.condition_effect and definition.condition_field)


def field_states(definitions, answers: dict) -> dict[str, FieldState]:
    """Shown and required, per field key, for these answers.

    A field whose controlling field is hidden counts that answer as empty, so chains
    (C depends on B, B on A) hide together. Cycles are refused when saving; here a cycle
    resolves to "condition not met" rather than recursing forever.
    """
    by_key = {d.key: d for d in definitions}
    states: dict[str, FieldState] = {}
    resolving: set[str] = set()

    def state(key: str) -> FieldState:
        if key in states:
            return states[key]
        definition = by_key[key]
        if not has_condition(definition):
            result = FieldState(True, definition.required)
        else:
            holds = False
            controller = definition.condition_field
            if controller in by_key and key not in resolving:
                resolving.add(key)
                if state(controller).visible:
                    holds = condition_holds(definition, answers.get(controller))
                resolving.discard(key)
            if definition.condition_effect == ConditionEffect.SHOW:
                result = FieldState(holds, holds and definition.required)
            else:
                result = FieldState(True, holds)
        states[key] = result
        return result

    for definition in definitions:
        state(definition.key)
    return states


def rule_fields(rule) -> list[str]:
    keys = [rule.first_field, rule.second_field]
    keys += [line.strip() for line in (rule.more_fields or "").splitlines() if line.strip()]
    return [k for k in keys if k]


def _ordered(value, field_type):
    if field_type == FieldType.NUMBER:
        try:
            return Decimal(str(value))
        except (InvalidOperation, ValueError):
            return None
    return str(value)  # ISO dates sort as text


def rule_message(rule, labels: dict[str, str]) -> str:
    if rule.message:
        return rule.message
    first, second = labels.get(rule.first_field, ""), labels.get(rule.second_field, "")
    if rule.kind == RuleKind.AFTER:
        return _("“%(first)s” must be after “%(second)s”.") % {"first": first, "second": second}
    if rule.kind == RuleKind.NOT_GREATER:
        return _("“%(first)s” must not be greater than “%(second)s”.") % {
            "first": first,
            "second": second,
        }
    return _("Please answer at least one of: %(fields)s.") % {
        "fields": ", ".join(f"„{labels.get(k, k)}“" for k in rule_fields(rule))
    }


def broken_rules(rules, definitions, answers: dict, states: dict[str, FieldState]):
    """(rule, field key to report at or None, message) for every rule the answers break.

    Hidden fields count as unanswered; a comparison with an unanswered side is not judged
    (whether it must be answered is the fields' own rule).
    """
    by_key = {d.key: d for d in definitions}
    labels = {d.key: d.label for d in definitions}

    def answer(key):
        if key not in by_key or not states.get(key, FieldState(False, False)).visible:
            return None
        return answers.get(key)

    broken = []
    for rule in rules:
        if rule.kind == RuleKind.AT_LEAST_ONE:
            if all(is_empty(answer(k)) for k in rule_fields(rule)):
                broken.append((rule, None, rule_message(rule, labels)))
            continue
        a, b = answer(rule.first_field), answer(rule.second_field)
        if is_empty(a) or is_empty(b):
            continue
        field_type = by_key[rule.first_field].field_type
        a, b = _ordered(a, field_type), _ordered(b, field_type)
        if a is None or b is None:
            continue
        ok = a > b if rule.kind == RuleKind.AFTER else a <= b
        if not ok:
            broken.append((rule, rule.first_field, rule_message(rule, labels)))
    return broken


# --- checking definitions when they are saved -------------------------------------------


def definition_problems(definitions, rules) -> dict[str, list[str]]:
    """What is wrong with an item's conditions and rules as a whole: unknown keys, a field
    depending on itself or in a cycle, values a choice field cannot have, rules over fields
    of the wrong type. Keys: ``form_fields[i].condition_field`` / ``form_rules[i].…``."""
    problems: dict[str, list[str]] = {}
    by_key = {d.key: d for d in definitions}

    def add(where, message):
        problems.setdefault(where, []).append(message)

    for index, definition in enumerate(definitions):
        if not has_condition(definition):
            continue
        at = f"form_fields[{index}]"
        controller = by_key.get(definition.condition_field)
        if controller is None:
            add(
                f"{at}.condition_field",
                _("The order form has no field with the key “%(key)s”.")
                % {"key": definition.condition_field},
            )
            continue
        if controller.key == definition.key:
            add(f"{at}.condition_field", _("A field cannot depend on itself."))
            continue
        if controller.field_type in (FieldType.CHOICE, FieldType.MULTIPLE_CHOICE):
            unknown = [v for v in condition_values(definition) if v not in controller.choice_list]
            if unknown and definition.condition_operator != ConditionOperator.IS_SET:
                add(
                    f"{at}.condition_value",
                    _("“%(field)s” has no option %(values)s.")
                    % {"field": controller.label, "values": ", ".join(f"„{v}“" for v in unknown)},
                )
        if controller.field_type == FieldType.YES_NO and definition.condition_operator in (
            ConditionOperator.EQUALS,
            ConditionOperator.ONE_OF,
        ):
            wrong = [v for v in condition_values(definition) if v not in ("yes", "no")]
            if wrong:
                add(f"{at}.condition_value", _("A yes/no field is compared with yes or no."))
    # Cycles: follow each field's controller chain.
    for index, definition in enumerate(definitions):
        if definition.condition_field == definition.key:
            continue  # reported above
        seen = {definition.key}
        current = definition
        while has_condition(current) and current.condition_field in by_key:
            current = by_key[current.condition_field]
            if current.key in seen:
                if current.key == definition.key:
                    add(
                        f"form_fields[{index}].condition_field",
                        _("The conditions of these fields depend on each other in a circle."),
                    )
                break
            seen.add(current.key)

    for index, rule in enumerate(rules):
        at = f"form_rules[{index}]"
        keys = rule_fields(rule)
        for key in keys:
            if key not in by_key:
                add(
                    at,
                    _("The order form has no field with the key “%(key)s”.") % {"key": key},
                )
        if rule.kind == RuleKind.AT_LEAST_ONE:
            if len(keys) < 2:
                add(at, _("Name at least two fields."))
            continue
        if not rule.first_field or not rule.second_field:
            add(at, _("Name both fields."))
            continue
        if rule.first_field == rule.second_field:
            add(at, _("Name two different fields."))
            continue
        first, second = by_key.get(rule.first_field), by_key.get(rule.second_field)
        if first is None or second is None:
            continue
        allowed = ORDERED_TYPES[rule.kind]
        if first.field_type not in allowed or first.field_type != second.field_type:
            add(
                at,
                _("This rule compares two fields of the same type: %(types)s.")
                % {"types": " / ".join(str(FieldType(t).label) for t in allowed)},
            )
    return problems


def describe(definition, labels: dict[str, str]) -> str:
    """The condition in words, for the editor's preview."""
    other = labels.get(definition.condition_field, definition.condition_field)
    values = ", ".join(f"„{v}“" for v in condition_values(definition))
    if definition.condition_operator == ConditionOperator.IS_SET:
        test = _("“%(field)s” is answered") % {"field": other}
    elif definition.condition_operator == ConditionOperator.ONE_OF:
        test = _("“%(field)s” is one of %(values)s") % {"field": other, "values": values}
    else:
        test = _("“%(field)s” is %(values)s") % {"field": other, "values": values}
    if definition.condition_effect == ConditionEffect.SHOW:
        return _("Shown only when %(test)s.") % {"test": test}
    return _("Required only when %(test)s.") % {"test": test}


# --- the browser's copy -------------------------------------------------------------------


def form_logic(definitions, prefix: str) -> dict:
    """The conditions as JSON for the browser; field names as the form posts them."""
    fields = []
    for d in definitions:
        entry = {"name": prefix + d.key, "key": d.key, "type": d.field_type, "required": d.required}
        if has_condition(d):
            entry["condition"] = {
                "effect": d.condition_effect,
                "field": d.condition_field,
                "operator": d.condition_operator,
                "values": condition_values(d),
            }
        fields.append(entry)
    return {"fields": fields}
