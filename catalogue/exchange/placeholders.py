"""Local names as named placeholders: found on export, checked and filled in on import.

Kinds: ``group`` (a Django group by name: service owners, approval groups, who may order),
``department`` (by code), ``directory_group`` (a group DN a provisioning action writes),
``directory_base`` (a DN below which groups live: order-form bases, the part of a templated
DN after its templated RDNs) and ``directory_dn`` (any other DN in an attribute template).
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.translation import gettext as _
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

GROUP = "group"
DEPARTMENT = "department"
DIRECTORY_GROUP = "directory_group"
DIRECTORY_BASE = "directory_base"
DIRECTORY_DN = "directory_dn"
KINDS = (GROUP, DEPARTMENT, DIRECTORY_GROUP, DIRECTORY_BASE, DIRECTORY_DN)
DN_KINDS = (DIRECTORY_GROUP, DIRECTORY_BASE, DIRECTORY_DN)

REFERENCE = re.compile(r"\$\{([a-z][a-z0-9_]{0,63})\}")
TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
ATTRIBUTE_TYPE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def ref(name: str) -> str:
    return "${" + name + "}"


def references(text: str) -> list[str]:
    return REFERENCE.findall(text or "")


def parse_literal_dn(text: str) -> list | None:
    """The RDNs of ``text`` if it is a plain DN (no templates, no placeholders), else None."""
    if not text or "{" in text or "$" in text or CONTROL.search(text):
        return None
    try:
        parts = parse_dn(text)
    except (LDAPInvalidDnError, ValueError, IndexError):
        return None
    if not parts or not all(ATTRIBUTE_TYPE.match(attr) and value for attr, value, _ in parts):
        return None
    return parts


def looks_like_dn(text: str) -> bool:
    """A plain DN of at least two RDNs: directory names a sharing city must not inherit."""
    parts = parse_literal_dn(text)
    return parts is not None and len(parts) >= 2


def split_templated_dn(text: str) -> tuple[str, str] | None:
    """``cn={{ answers.x }},ou=groups,dc=a`` → (``cn={{ answers.x }}``, ``ou=groups,dc=a``):
    the plain DN after the last template, or None if there is none."""
    matches = list(TEMPLATE.finditer(text or ""))
    if not matches:
        return None
    last = matches[-1]
    rest = text[last.end() :]
    # The first comma not escaped by a backslash ends the templated RDN.
    index = 0
    while index < len(rest):
        if rest[index] == "\\":
            index += 2
            continue
        if rest[index] == ",":
            suffix = rest[index + 1 :]
            if parse_literal_dn(suffix) is not None:
                return text[: last.end() + index], suffix
            return None
        index += 1
    return None


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    for umlaut, ascii_form in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, ascii_form)
    text = text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def base_name(kind: str, value: str) -> str:
    """A readable placeholder name: the kind and the group name, department code or first RDN."""
    if kind in DN_KINDS:
        parts = parse_literal_dn(value)
        value = parts[0][1] if parts else value
    return f"{kind}_{_slug(value) or 'x'}"[:60]


class Collector:
    """Hands out one placeholder per (kind, value); names are fixed when the export ends."""

    def __init__(self):
        self._values: dict[tuple[str, str], str] = {}  # (kind, value) → description

    def use(self, kind: str, value: str, description: str = "") -> tuple[str, str]:
        self._values.setdefault((kind, value), description)
        return (kind, value)

    def names(self) -> dict[tuple[str, str], str]:
        """Deterministic names: in (kind, value) order, numbered on collisions."""
        taken: set[str] = set()
        result = {}
        for key in sorted(self._values):
            base = base_name(*key)
            name, number = base, 2
            while name in taken:
                name, number = f"{base}_{number}", number + 1
            taken.add(name)
            result[key] = name
        return result

    def declarations(self, names) -> dict:
        return {
            names[key]: {"kind": key[0], "example": key[1], "description": description}
            for key, description in sorted(self._values.items(), key=lambda kv: names[kv[0]])
        }


def resolve_tokens(obj, names):
    """Replace the (kind, value) tokens left by the exporter with ``${name}`` strings."""
    if isinstance(obj, dict):
        return {k: resolve_tokens(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve_tokens(v, names) for v in obj]
    if isinstance(obj, Token):
        return obj.render(names)
    return obj


class Token:
    """A string with one placeholder in it, rendered once the names are known."""

    def __init__(self, key: tuple[str, str], prefix: str = ""):
        self.key = key
        self.prefix = prefix

    def render(self, names) -> str:
        return f"{self.prefix}{ref(names[self.key])}"


def check_dn_value(value: str, *, group_base: str = "", below_base: bool = False) -> str | None:
    """Why ``value`` cannot stand for a DN placeholder, or None if it can.

    A mapped value becomes (part of) a DN the portal writes to, so it must be one plain,
    well-formed DN: no templates or placeholders (they would be expanded again), no control
    characters, and, for groups and bases, inside the configured group base.
    """
    if not value or not value.strip():
        return _("Enter a DN.")
    if CONTROL.search(value):
        return _("A DN cannot contain line breaks or control characters.")
    if "{" in value or "}" in value or "$" in value:
        return _("A DN cannot contain templates or placeholders ({, }, $).")
    if parse_literal_dn(value) is None:
        return _("This is not a valid DN, e.g. cn=vpn-users,ou=groups,dc=example,dc=org.")
    if below_base and group_base and not dn_within(value, group_base):
        return _("The DN must lie within the directory's group base %(base)s.") % {
            "base": group_base
        }
    return None


def _normal(dn: str) -> list[tuple[str, str]]:
    return [(attr.lower(), value.lower()) for attr, value, _ in parse_dn(dn)]


def dn_within(dn: str, base: str) -> bool:
    try:
        inner, outer = _normal(dn), _normal(base)
    except (LDAPInvalidDnError, ValueError, IndexError):
        return False  # a malformed base contains nothing
    return len(inner) >= len(outer) and inner[len(inner) - len(outer) :] == outer
