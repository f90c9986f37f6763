"""The API's JSON parser: DRF's, plus limits every request body must keep.

- nesting at most MAX_DEPTH levels: deeper bodies made the decoder and the code after
  it run out of stack (RecursionError, a 500);
- no lone surrogates (``"\\ud800"``) in any string or key: they can neither be stored in
  PostgreSQL nor encoded as UTF-8 when the value is shown again. (NUL characters are
  refused by each field, which can name itself in the error.)

Violations are a 400 with a message (ParseError), before any view code runs.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _bad_text(text: str) -> str | None:
    """The message for a string that cannot be stored, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _("Text must not contain lone surrogate characters (e.g. \\ud800).")
    return None


def check_value(data, max_depth: int = MAX_DEPTH) -> None:
    """Raise ParseError if ``data`` (decoded JSON) breaks a limit. Iterative: no recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise ParseError(
                    _("The JSON body is nested too deeply (at most %(depth)s levels).")
                    % {"depth": max_depth}
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    message = _bad_text(key)
                    if message:
                        raise ParseError(message)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            message = _bad_text(value)
            if message:
                raise ParseError(message)


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(
                _("The JSON body is nested too deeply (at most %(depth)s levels).")
                % {"depth": MAX_DEPTH}
            ) from exc
        check_value(data)
        return data
