"""The API's JSON parser: DRF's, plus limits every request body must keep.

- nesting at most MAX_DEPTH levels: deeper bodies made the decoder and the code after
  it run out of stack (RecursionError, a 500) — a ParseError;
- no NUL characters and no lone surrogates (``"\\ud800"``) in any string or key,
  wherever it sits: PostgreSQL cannot store or even compare them, so a lookup such as
  ``"category": "a\\u0000"`` failed in the database, and a surrogate cannot be encoded
  as UTF-8 when shown again. A ValidationError naming the place (``answers.room``,
  ``form_fields[1].label``), with the messages of Django's and DRF's own validators.

Both are a 400, before any view code runs.
"""

from __future__ import annotations

from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.fields import ProhibitSurrogateCharactersValidator
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _too_deep() -> ParseError:
    return ParseError(
        _("The JSON body is nested too deeply (at most %(depth)s levels).") % {"depth": MAX_DEPTH}
    )


def _text_problem(text: str) -> str | None:
    """The message for a string that cannot be stored, or None."""
    if "\x00" in text:
        return str(ProhibitNullCharactersValidator.message)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code_point = ord(text[exc.start])
        return str(ProhibitSurrogateCharactersValidator.message).format(code_point=code_point)
    return None


def _place(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def check_value(data, max_depth: int = MAX_DEPTH) -> None:
    """Raise if ``data`` (decoded JSON) breaks a limit. Iterative: no recursion."""
    stack = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                place = _place(path, key)
                if isinstance(key, str) and (problem := _text_problem(key)):
                    # The key itself cannot be shown: name the place without it.
                    raise ValidationError({path or "non_field_errors": [problem]})
                stack.append((item, depth + 1, place))
        elif isinstance(value, str) and (problem := _text_problem(value)):
            raise ValidationError({path or "non_field_errors": [problem]})


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise _too_deep() from exc
        check_value(data)
        return data
