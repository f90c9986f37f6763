"""Placeholders in provisioning actions: ``{{ beneficiary.uid }}``, ``{{ answers.key }}``.

Deliberately not a template language: a fixed set of names, plain substitution,
and DN escaping where a value lands inside a DN.
"""

import re

from ldap3.utils.dn import parse_dn

from provisioning.backends.base import rdn_value

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-zA-Z0-9_]+)?)\s*\}\}")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# Passwords never go through templates: they would be stored in the job row and its log.
SECRET_ATTRIBUTES = {"password", "userpassword", "unicodepwd"}


def parse_attribute_lines(text: str) -> dict[str, str]:
    """``name = template`` lines to a dict; raises ValueError naming the bad line."""
    result: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, template = line.partition("=")
        name = name.strip()
        if not sep or not ATTRIBUTE_NAME.match(name):
            raise ValueError(f"Line {number}: expected 'attribute = value', got {line!r}")
        if name.lower() in SECRET_ATTRIBUTES:
            raise ValueError(
                f"Line {number}: passwords cannot be set by a template; new accounts are "
                "created without a password (disabled in Active Directory) for IT to hand out."
            )
        result[name] = template.strip()
    return result


def context_for(service_request) -> dict[str, str]:
    """The values placeholders may use, from the order and the beneficiary's record."""
    beneficiary = service_request.beneficiary
    user = beneficiary.user
    values = {
        "beneficiary.uid": beneficiary.personnel_number,
        "beneficiary.first_name": user.first_name,
        "beneficiary.last_name": user.last_name,
        "beneficiary.mail": user.email,
        "beneficiary.department": beneficiary.department.code,
        "request.id": str(service_request.pk),
    }
    for key, answer in (service_request.answers or {}).items():
        if isinstance(answer, dict):
            answer = answer.get("dn") or answer.get("uid") or ""
        elif isinstance(answer, list):
            answer = ",".join(str(a) for a in answer)
        values[f"answers.{key}"] = "" if answer is None else str(answer)
    return values


def render(template: str, context: dict[str, str]) -> str:
    """Plain substitution; an unknown placeholder is an error, never silently empty."""

    def replace(match):
        name = match.group(1)
        if name not in context:
            raise ValueError(f"Unknown placeholder {{{{ {name} }}}}")
        return context[name]

    return PLACEHOLDER.sub(replace, template)


def render_dn(template: str, context: dict[str, str]) -> str:
    """A DN from a template: a placeholder standing alone is a whole DN (validated),
    inside a DN its value is escaped as one RDN value."""
    stripped = template.strip()
    whole = PLACEHOLDER.fullmatch(stripped)
    if whole:
        dn = render(stripped, context)
        parse_dn(dn)  # raises on anything that is not a DN
        return dn

    def replace(match):
        name = match.group(1)
        if name not in context:
            raise ValueError(f"Unknown placeholder {{{{ {name} }}}}")
        return rdn_value(context[name])

    dn = PLACEHOLDER.sub(replace, stripped)
    parse_dn(dn)
    return dn
