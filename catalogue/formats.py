"""Named answer formats: what IT admins choose for a text field instead of writing a pattern.

A form field stores the format's name (``FormField.answer_format``); its regular expression,
its description (used in the help text) and its error message live here, so fixing a format
fixes every field that uses it. Experts can still enter their own pattern instead
(``FormField.pattern``, checked by ``catalogue.patterns``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from catalogue.patterns import PatternValidator


@dataclass(frozen=True)
class AnswerFormat:
    name: str  # stored in the database: never rename
    label: Promise | str
    regex: str  # matched against the whole answer
    description: Promise | str  # "e.g. …": shown under the field and in the error message

    @property
    def message(self) -> str:
        return _("Expected format: %(format)s, %(description)s.") % {
            "format": self.label,
            "description": self.description,
        }

    def validator(self) -> PatternValidator:
        return PatternValidator(self.regex, message=self.message)


FORMATS: dict[str, AnswerFormat] = {
    f.name: f
    for f in (
        AnswerFormat(
            "room_number",
            _("room number"),
            r"[A-Z]{1,3}[ -]?[0-9]{1,2}\.[0-9]{2,3}",
            _("building letter, floor and room, e.g. B 2.014"),
        ),
        AnswerFormat(
            "phone_number",
            _("telephone number"),
            r"\+?[0-9][0-9 /()-]{3,23}[0-9]",
            _("digits with area code, spaces, / and - allowed, e.g. 0211 899-1234"),
        ),
        AnswerFormat(
            "personnel_number",
            _("personnel number"),
            r"[a-z][0-9]{5}",
            _("one lower-case letter and five digits, e.g. m10042"),
        ),
        AnswerFormat(
            "email",
            _("e-mail address"),
            r"[^@\s<>]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
            r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
            _("name@domain, e.g. anna.schmidt@musterstadt.de"),
        ),
        AnswerFormat(
            "postcode",
            _("postcode"),
            r"[0-9]{5}",
            _("five digits, e.g. 40213"),
        ),
        AnswerFormat(
            "iban",
            _("IBAN"),
            r"DE[0-9]{2}(?: ?[0-9]{4}){4} ?[0-9]{2}",
            _("DE and 20 digits, spaces allowed, e.g. DE89 3704 0044 0532 0130 00"),
        ),
        AnswerFormat(
            "ipv4_address",
            _("IPv4 address"),
            r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
            _("four numbers from 0 to 255 separated by dots, e.g. 10.20.30.40"),
        ),
        AnswerFormat(
            "hostname",
            _("computer name"),
            r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
            _("letters, digits and hyphens, at most 63, e.g. pc-ba-0142"),
        ),
        AnswerFormat(
            "licence_plate",
            _("licence plate"),
            r"[A-ZÄÖÜ]{1,3}-[A-Z]{1,2} ?[0-9]{1,4}[EH]?",
            _("district, letters and digits, e.g. D-MS 1234"),
        ),
    )
}


def format_choices() -> list[tuple[str, object]]:
    """Choices for the field's format: the empty choice means none (or an expert pattern)."""
    return [("", _("none")), *((f.name, f.label) for f in FORMATS.values())]


def get_format(name: str) -> AnswerFormat | None:
    return FORMATS.get(name or "")
