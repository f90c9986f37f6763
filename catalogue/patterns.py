"""Answer patterns of order-form fields: checked when saved, matched safely when ordering.

IT admins type the pattern, employees the answer, so both sides are untrusted. The
``regex`` engine matches the whole answer (``fullmatch``: no wrapping in ``^(?:…)$``,
which broke patterns that start with inline flags such as ``(?i)`` or ``(?x)``) and gives
up after PATTERN_TIMEOUT seconds, so a pattern with catastrophic backtracking cannot
stall a worker. A pattern is saved only if this same engine compiles it.
"""

from __future__ import annotations

import functools

import regex
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

PATTERN_TIMEOUT = 0.2  # seconds per answer


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str):
    return regex.compile(pattern)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used, or None."""
    try:
        _compiled(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        return str(exc)
    return None


class PatternValidator:
    """Form-field validator: the whole answer must match ``pattern``."""

    message = _("The answer does not have the required format.")

    def __init__(self, pattern: str, message=None):
        self.pattern = pattern
        if message is not None:
            self.message = message  # a named format's own words (catalogue.formats)

    def __call__(self, value) -> None:
        if pattern_problem(self.pattern) is not None:
            # Saved before patterns were checked with this engine: nothing can match.
            raise ValidationError(self.message, code="invalid")
        try:
            matched = _compiled(self.pattern).fullmatch(str(value), timeout=PATTERN_TIMEOUT)
        except TimeoutError as exc:
            raise ValidationError(
                _("The answer could not be checked against the required format in time."),
                code="pattern_timeout",
            ) from exc
        if matched is None:
            raise ValidationError(self.message, code="invalid")

    def __eq__(self, other):
        return (
            isinstance(other, PatternValidator)
            and other.pattern == self.pattern
            and str(other.message) == str(self.message)
        )
