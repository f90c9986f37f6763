"""Database expressions and query parsing for the catalogue search (PostgreSQL only).

Both sides of a comparison are folded the same way: lower case, "ä/ö/ü" as "a/o/u" and "ß" as
"ss" — what PostgreSQL's German stemmer does too, so "Straße" and "Strasse" meet. Spellings
with "ae/oe/ue" for an umlaut are tried as a second variant of each search word.
"""

import re

from django.db.models import F, Func, TextField, Value
from django.db.models.functions import Concat, Lower, Replace

# Words of the search: letters and digits only, so nothing typed reaches tsquery syntax.
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_WORDS = 6
_UMLAUT_SPELLINGS = (("ae", "a"), ("oe", "o"), ("ue", "u"))


class _Translate(Func):
    function = "TRANSLATE"
    output_field = TextField()


def folded(*fields: str):
    """The fields joined by spaces, folded; immutable, so it can be a stored generated column."""
    parts = []
    for field in fields:
        if parts:
            parts.append(Value(" "))
        parts.append(F(field))
    text = Concat(*parts, output_field=TextField()) if len(parts) > 1 else F(fields[0])
    return Replace(
        _Translate(Lower(text), Value("äöü"), Value("aou")),
        Value("ß"),
        Value("ss"),
        output_field=TextField(),
    )


def fold(word: str) -> str:
    """The Python twin of ``folded`` for one search word."""
    return word.lower().translate(str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss"}))


def search_words(query: str) -> list[list[str]]:
    """Each search word with its spelling variants, folded; at most six words.

    "Schluessel" gives ["schluessel", "schlussel"]: the second meets "Schlüssel".
    """
    words = []
    for raw in _WORD.findall(query)[:_MAX_WORDS]:
        word = fold(raw.replace("_", ""))
        if not word:
            continue
        variants = [word]
        plain = word
        for spelled, umlaut in _UMLAUT_SPELLINGS:
            plain = plain.replace(spelled, umlaut)
        if plain != word:
            variants.append(plain)
        words.append(variants)
    return words


def tsquery_text(words: list[list[str]]) -> str:
    """A raw tsquery: any word (or variant); from three letters on also as a prefix, so a
    half-typed word matches.

    Safe to hand to ``to_tsquery``: the words hold letters and digits only.
    """
    return " | ".join(
        f"{variant}:*" if len(variant) >= 3 else variant
        for variants in words
        for variant in variants
    )
