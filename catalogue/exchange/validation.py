"""Reading and checking an exchange document, before anything touches the database.

Every problem names where it is, as a JSON path (``$.items[2].form_fields[0].field_type``),
and says in plain words what is wrong. Nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator

from catalogue import conditions
from catalogue.choices import ApproverKind, FieldType
from catalogue.exchange import FORMAT_VERSION
from catalogue.exchange import fields as exchange_fields
from catalogue.exchange import placeholders as ph
from catalogue.formats import FORMATS
from catalogue.models import FormField, FormRule

SCHEMA_PATH = Path(__file__).parent / "schema" / f"catalogue-exchange-{FORMAT_VERSION}.json"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_PROBLEMS = 50  # a broken file should not produce a page of thousands of lines
GROUP_ACTIONS = ("add_to_group", "remove_from_group")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ExchangeError(Exception):
    """The document cannot be imported (or exported); ``problems`` says why, each with a path."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems[:MAX_PROBLEMS]
        super().__init__("; ".join(str(p) for p in self.problems))


def fail(message: str, path: str = "") -> ExchangeError:
    return ExchangeError([Problem(path, message)])


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


# --- reading a file ----------------------------------------------------------------------


def _no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(_("The key “%(key)s” appears twice in one object.") % {"key": key})
        seen[key] = value
    return seen


def _no_constant(name):
    raise ValueError(_("%(name)s is not allowed in this format.") % {"name": name})


def parse_bytes(raw: bytes) -> dict:
    """The document in an uploaded file; refuses big, binary, non-UTF-8 and non-JSON files."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise fail(
            _("The file is larger than %(limit)s MB.") % {"limit": MAX_UPLOAD_BYTES // 1024 // 1024}
        )
    if not raw.strip():
        raise fail(_("The file is empty."))
    if b"\x00" in raw:
        raise fail(_("This is a binary file, not a JSON text file."))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(
            _("The file is not valid UTF-8 text (byte %(position)s).") % {"position": exc.start}
        ) from exc
    return parse_text(text)


def parse_text(text: str) -> dict:
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant
        )
    except json.JSONDecodeError as exc:
        raise fail(
            _("The file is not valid JSON: %(error)s (line %(line)s, column %(column)s).")
            % {"error": exc.msg, "line": exc.lineno, "column": exc.colno}
        ) from exc
    except ValueError as exc:
        raise fail(_("The file is not valid JSON: %(error)s") % {"error": exc}) from exc
    except RecursionError as exc:
        raise fail(_("The file is nested too deeply.")) from exc
    if not isinstance(document, dict):
        raise fail(_("The file must contain one JSON object."), "$")
    return document


# --- the schema ----------------------------------------------------------------------------


def _schema_message(error) -> str:
    v, value = error.validator, error.instance
    if v == "required":
        missing = [name for name in error.validator_value if name not in value]
        return _("required field(s) missing: %(fields)s") % {"fields": ", ".join(missing)}
    if v == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed)
        return _("unknown field(s): %(fields)s") % {"fields": ", ".join(extra)}
    if v == "enum":
        if error.path and error.path[-1] == "field_type":
            return _("unknown field type “%(value)s”; known types: %(allowed)s") % {
                "value": value,
                "allowed": ", ".join(error.validator_value),
            }
        return _("“%(value)s” is not one of: %(allowed)s") % {
            "value": value,
            "allowed": ", ".join(map(str, error.validator_value)),
        }
    if v == "type":
        expected = error.validator_value
        expected = " / ".join(expected) if isinstance(expected, list) else expected
        return _("expected a value of type %(type)s") % {"type": expected}
    if v == "maxLength":
        return _("longer than %(limit)s characters") % {"limit": error.validator_value}
    if v == "minLength":
        return _("must not be empty")
    if v in ("maxItems", "maxProperties"):
        return _("more than %(limit)s entries") % {"limit": error.validator_value}
    if v == "uniqueItems":
        return _("an entry appears twice")
    if v in ("minimum", "maximum"):
        return _("the number is out of range")
    if v == "pattern":
        return _("the value “%(value)s” does not have the expected form") % {
            "value": str(value)[:100]
        }
    if v == "oneOf":
        return _("the value “%(value)s” does not have the expected form") % {
            "value": str(value)[:100]
        }
    return error.message


def schema_problems(document: dict) -> list[Problem]:
    validator = Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [Problem(error.json_path, _schema_message(error)) for error in errors]


# --- meaning ------------------------------------------------------------------------------


def _duplicates(values) -> set:
    seen, twice = set(), set()
    for value in values:
        (twice if value in seen else seen).add(value)
    return twice


def _nul_problems(value, path: str = "$") -> list[Problem]:
    """NUL characters: JSON allows them, PostgreSQL text does not."""
    if isinstance(value, str):
        return [Problem(path, _("contains a NUL character"))] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_problems(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_problems(v, f"{path}[{i}]")]
    return []


def semantic_problems(document: dict) -> list[Problem]:
    """What the schema cannot say: duplicates, cross references, placeholder use."""
    problems: list[Problem] = _nul_problems(document)
    declared = document["placeholders"]

    def add(path, message):
        problems.append(Problem(path, message))

    def use(path, text, kinds):
        for name in ph.references(text):
            if name not in declared:
                add(path, _("the placeholder “%(name)s” is not declared") % {"name": name})
            elif declared[name]["kind"] not in kinds:
                add(
                    path,
                    _("the placeholder “%(name)s” is a %(kind)s; here a %(expected)s is needed")
                    % {"name": name, "kind": declared[name]["kind"], "expected": kinds[0]},
                )

    category_slugs = [c["slug"] for c in document["categories"]]
    for slug in sorted(_duplicates(category_slugs)):
        add("$.categories", _("the category slug “%(slug)s” appears twice") % {"slug": slug})
    for slug in sorted(_duplicates(i["slug"] for i in document["items"])):
        add("$.items", _("the item slug “%(slug)s” appears twice") % {"slug": slug})

    for i, item in enumerate(document["items"]):
        at = f"$.items[{i}]"
        if item["category"] not in category_slugs:
            add(
                f"{at}.category",
                _("the category “%(slug)s” is not in the file") % {"slug": item["category"]},
            )
        use(f"{at}.service_owner", item["service_owner"], (ph.GROUP,))
        for j, value in enumerate(item["allowed_groups"]):
            use(f"{at}.allowed_groups[{j}]", value, (ph.GROUP,))
        for j, value in enumerate(item["allowed_departments"]):
            use(f"{at}.allowed_departments[{j}]", value, (ph.DEPARTMENT,))

        fields = item["form_fields"]
        for key in sorted(_duplicates(f["key"] for f in fields)):
            add(f"{at}.form_fields", _("the field key “%(key)s” appears twice") % {"key": key})
        field_types = {f["key"]: f["field_type"] for f in fields}
        for j, field in enumerate(fields):
            base_at = f"{at}.form_fields[{j}].directory_base"
            use(base_at, field["directory_base"], (ph.DIRECTORY_BASE,))
            if field["field_type"] == FieldType.DIRECTORY_GROUP and not field["directory_base"]:
                add(base_at, _("directory-group fields need a directory base"))

        for j, field in enumerate(fields):
            name = field.get("answer_format") or ""
            if name and name not in FORMATS:
                add(
                    f"{at}.form_fields[{j}].answer_format",
                    _("unknown format “%(name)s”; known formats: %(known)s")
                    % {"name": name, "known": ", ".join(FORMATS)},
                )
        # Conditions and rules must name fields of this item's form, in no circle.
        definitions = [
            FormField(**exchange_fields.load(x, exchange_fields.FORM_FIELD_FIELDS)) for x in fields
        ]
        rules = [
            FormRule(**exchange_fields.load(x, exchange_fields.FORM_RULE_FIELDS))
            for x in item.get("form_rules", [])
        ]
        for where, messages in conditions.definition_problems(definitions, rules).items():
            for message in messages:
                add(f"{at}.{where}", message)

        steps = item["approval_steps"]
        for position in sorted(_duplicates(s["position"] for s in steps)):
            add(
                f"{at}.approval_steps",
                _("two approval steps have the position %(position)s") % {"position": position},
            )
        wanted_field = {
            ApproverKind.PERSON_FIELD: FieldType.PERSON,
            ApproverKind.GROUP_OWNER: FieldType.DIRECTORY_GROUP,
        }
        for j, step in enumerate(steps):
            step_at = f"{at}.approval_steps[{j}]"
            if step["group"] is not None:
                use(f"{step_at}.group", step["group"], (ph.GROUP,))
            if step["approver_kind"] == ApproverKind.GROUP and step["group"] is None:
                add(f"{step_at}.group", _("group steps need a group"))
            kind = wanted_field.get(step["approver_kind"])
            if kind and field_types.get(step["person_field_key"]) != kind:
                add(
                    f"{step_at}.person_field_key",
                    _("the order form has no %(type)s field with the key “%(key)s”")
                    % {"type": kind, "key": step["person_field_key"]},
                )

        actions = item["provisioning_actions"]
        for position in sorted(_duplicates(a["position"] for a in actions)):
            add(
                f"{at}.provisioning_actions",
                _("two provisioning actions have the position %(position)s")
                % {"position": position},
            )
        for j, action in enumerate(actions):
            action_at = f"{at}.provisioning_actions[{j}]"
            target = action["target"]
            whole = ph.REFERENCE.fullmatch(target)
            use(
                f"{action_at}.target",
                target,
                (ph.DIRECTORY_GROUP,) if whole else (ph.DIRECTORY_BASE,),
            )
            if action["kind"] in GROUP_ACTIONS and not target:
                add(f"{action_at}.target", _("group actions need a group"))
            for k, attribute in enumerate(action["attributes"]):
                template = attribute["template"]
                use(f"{action_at}.attributes[{k}].template", template, ph.DN_KINDS)
                if ph.looks_like_dn(template) or ph.split_templated_dn(template):
                    add(
                        f"{action_at}.attributes[{k}].template",
                        _("directory names must be placeholders, not literal DNs"),
                    )
    return problems + bundle_problems(document)


def bundle_problems(document: dict) -> list[Problem]:
    """Bundles (optional): unique slugs, each item once per bundle. Whether an item exists
    is checked on import, where the portal's own items are known."""
    problems = []
    bundles = document.get("bundles") or []
    for slug in sorted(_duplicates(b["slug"] for b in bundles)):
        problems.append(
            Problem("$.bundles", _("the bundle slug “%(slug)s” appears twice") % {"slug": slug})
        )
    for i, bundle in enumerate(bundles):
        for slug in sorted(_duplicates(entry["item"] for entry in bundle["items"])):
            problems.append(
                Problem(
                    f"$.bundles[{i}].items",
                    _("the item “%(slug)s” appears twice in the bundle") % {"slug": slug},
                )
            )
    return problems


def used_placeholders(document: dict) -> list[str]:
    """The declared placeholders the items refer to, sorted: these need a local value."""
    text = json.dumps(document["items"], ensure_ascii=False)
    return sorted(set(ph.references(text)) & set(document["placeholders"]))


def check_document(document) -> dict:
    """The document if it can be imported (shape and meaning); raises ExchangeError."""
    if not isinstance(document, dict):
        raise fail(_("The file must contain one JSON object."), "$")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise fail(
            _("The file has format version “%(found)s”; this portal reads version %(expected)s.")
            % {"found": version if version is not None else "–", "expected": FORMAT_VERSION},
            "$.format_version",
        )
    problems = schema_problems(document)
    if problems:
        raise ExchangeError(problems)
    problems = semantic_problems(document)
    if problems:
        raise ExchangeError(problems)
    return document
