"""Ordering in words: a sentence ("Ich brauche Zugriff auf das Laufwerk der Kämmerei") to the
catalogue items that fit it best, each with why it matched and what can be filled in already.

Computed inside the portal, with nothing sent anywhere and nothing downloaded:

1. The sentence is cut into words, folded like the catalogue search folds them (lower case,
   ä→a, ö→o, ü→u, ß→ss) and stripped of stop words (PostgreSQL's German list plus
   ``data/stopwords.de.txt``: "brauche", "bitte", …). Everyday words are widened through
   ``data/synonyms.de.txt`` ("Laptop" → "Notebook", "Homeoffice" → "VPN").
2. PostgreSQL's German stemmer gives each word and each word of the items' name, keywords,
   summary and description its stem (``to_tsvector('german', …)``), so "Bildschirme" meets
   "Bildschirm"; the items come in one query with those stems.
3. Each word scores on each item by where it matches: the name most, then the keywords,
   the answers of a choice field, the summary, the description; a word that is only part of a
   compound ("Laufwerk" in "Netzlaufwerk") or a likely typo (trigram similarity as pg_trgm
   computes it, "Bildschrim" → "Bildschirm") counts less, a synonym less than the word
   itself. Words found in many items weigh less (inverse document frequency).
4. Items with a directory-group field (the file share, the group) compare the words with the
   names and descriptions of the groups offered there and with the departments' names; a
   group that fits is pre-filled, and it adds to the item's score. A choice field whose
   option contains a word ("Mobiles Arbeiten / Homeoffice") is pre-filled too.

Nothing is decided: the person sees the reasons and picks. With nothing good enough the
general request ("Sonstige Anfrage", ``PORTAL_GENERAL_REQUEST_ITEM``) is offered with the
sentence as its description.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchVector
from django.core.cache import cache as django_cache
from django.db import connection
from django.db.models import Func, Prefetch, TextField
from django.urls import reverse
from django.utils.http import urlencode

from catalogue.choices import FieldType
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem, Department, FormField
from catalogue.search import fold

DATA = Path(__file__).resolve().parent / "data"
MAX_TEXT = 300
MAX_WORDS = 16
SHOWN = 5
# Below this score an item is not offered (one keyword match of a rare word scores ~3).
MIN_SCORE = 1.5
GROUPS_CACHE_SECONDS = 300

# Where a word matched, and how much that counts.
NAME, KEYWORD, CHOICE, SUMMARY, DESCRIPTION, GROUP, DEPARTMENT = (
    "name",
    "keyword",
    "choice",
    "summary",
    "description",
    "group",
    "department",
)
WEIGHTS = {NAME: 3.0, KEYWORD: 2.6, GROUP: 2.4, CHOICE: 1.2, SUMMARY: 1.2, DESCRIPTION: 0.5}
PART_OF_WORD = 0.6  # "laufwerk" inside "netzlaufwerk"
TYPO = 0.75  # × the similarity
SYNONYM = 0.8
TYPO_SIMILARITY = 0.55
DAMERAU_SIMILARITY = 0.82
MIN_PART = 5

_WORD = re.compile(r"\w+", re.UNICODE)
_UMLAUT_SPELLINGS = (("ae", "a"), ("oe", "o"), ("ue", "u"))


def _lines(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@cache
def stopwords() -> frozenset[str]:
    return frozenset(fold(word) for word in _lines("stopwords.de.txt"))


@cache
def synonyms() -> dict[str, tuple[str, ...]]:
    """Folded everyday word → folded catalogue words (each may be several words)."""
    table = {}
    for line in _lines("synonyms.de.txt"):
        word, _, targets = line.partition(":")
        table[fold(word.strip())] = tuple(fold(t.strip()) for t in targets.split(",") if t.strip())
    return table


def plain(word: str) -> str:
    """A folded word with "ae/oe/ue" read as umlauts: "kaemmerei" → "kammerei"."""
    for spelled, umlaut in _UMLAUT_SPELLINGS:
        word = word.replace(spelled, umlaut)
    return word


def trigrams(word: str) -> set[str]:
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    """pg_trgm's similarity of two words: shared trigrams over all trigrams of both."""
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0


def _damerau(a: str, b: str) -> float:
    from rapidfuzz.distance import DamerauLevenshtein

    return DamerauLevenshtein.normalized_similarity(a, b)


def typo_similarity(a: str, b: str) -> float:
    """How likely ``a`` is a typo of ``b`` (0 when not): trigram similarity from 0.55 on;
    with ``ASSIST_WORDS_SIMILARITY = "damerau"`` also one edit in five letters (a swap of
    two neighbours counts as one: "Bildschrim"), by rapidfuzz's Damerau-Levenshtein."""
    value = similarity(a, b)
    value = value if value >= TYPO_SIMILARITY else 0.0
    if settings.ASSIST_WORDS_SIMILARITY == "damerau" and min(len(a), len(b)) >= 5:
        edits = _damerau(a, b)
        if edits >= DAMERAU_SIMILARITY:
            value = max(value, edits)
    return value


@dataclass(frozen=True)
class Reason:
    """Why an item matched: the person's word, where it matched and the catalogue's word."""

    kind: str
    word: str  # as the person wrote it
    matched: str  # the catalogue's word, group or department
    via: str = ""  # the synonym the word stood for, if it went through the list
    how: str = ""  # "", "part" (part of a compound) or "typo" (similar spelling)


@dataclass
class Prefill:
    """One answer of the order form filled in from the sentence."""

    key: str
    label: str
    value: str  # what the form field takes (a DN, an option)
    shown: str  # what the person reads
    word: str  # the word that led to it


@dataclass
class Suggestion:
    item: CatalogueItem
    score: float
    reasons: list[Reason] = field(default_factory=list)
    prefills: list[Prefill] = field(default_factory=list)
    # Other groups that fit as well as the pre-filled one: (Prefill, order url).
    alternatives: list[tuple[Prefill, str]] = field(default_factory=list)

    @property
    def order_url(self) -> str:
        return order_url(self.item, self.prefills)


@dataclass
class Interpretation:
    text: str
    words: list[str]  # the words looked at, as written
    ignored: list[str]  # stop words, as written
    suggestions: list[Suggestion]
    general: CatalogueItem | None = None  # the general request, offered below or instead
    general_url: str = ""

    @property
    def understood(self) -> bool:
        return bool(self.suggestions)


def order_url(item: CatalogueItem, prefills) -> str:
    url = reverse("ordering:order", kwargs={"slug": item.slug})
    query = [(OrderForm.FIELD_PREFIX + p.key, p.value) for p in prefills]
    return f"{url}?{urlencode(query)}" if query else url


# --- the sentence --------------------------------------------------------------------------


@dataclass
class Word:
    raw: str  # as written
    folded: str
    stems: tuple[str, ...] = ()
    via: str = ""  # set for a word that came from the synonym list: the person's word
    joined: bool = False  # two words written apart ("amt 20")


def sentence_words(text: str) -> tuple[list[Word], list[str]]:
    """The words to look at (with synonyms added) and the stop words left out."""
    words, ignored, seen = [], [], set()
    raws = _WORD.findall(text.replace("_", " "))[:MAX_WORDS]
    for raw in raws:
        folded = fold(raw)
        if folded in stopwords() or len(folded) < 2:
            ignored.append(raw)
            continue
        if folded in seen:
            continue
        seen.add(folded)
        words.append(Word(raw, folded))
        for target in synonyms().get(folded, ()):
            for part in target.replace("-", " ").split():
                if part != folded and (part, raw) not in seen:
                    seen.add((part, raw))
                    words.append(Word(raw, part, via=target))
    return words, ignored


# --- the catalogue side --------------------------------------------------------------------


class _Lexemes(Func):
    """The stems of a text, as PostgreSQL's German configuration makes them."""

    function = "tsvector_to_array"
    output_field = ArrayField(TextField())

    def __init__(self, column: str):
        super().__init__(SearchVector(column, config="german"))


def _stems(texts: list[str]) -> dict[str, tuple[str, ...]]:
    """Each text's German stems, in one query (stop words give none)."""
    if not texts:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.s, tsvector_to_array(to_tsvector('german', t.s)) "
            "FROM unnest(%s::text[]) AS t(s)",
            [texts],
        )
        return {text: tuple(stems or ()) for text, stems in cursor.fetchall()}


def _tokens(text: str) -> list[str]:
    return [fold(t) for t in _WORD.findall(text.replace("_", " "))]


def _groups_cached(base: str) -> list[dict]:
    """The groups a directory-group field offers, from the directory, kept five minutes."""
    from provisioning.backends import get_backend
    from provisioning.backends.errors import DirectoryError

    key = f"assist:groups:{base}"
    groups = django_cache.get(key)
    if groups is None:
        try:
            groups = get_backend().list_groups(base)
        except (DirectoryError, Exception):
            return []
        django_cache.set(key, groups, GROUPS_CACHE_SECONDS)
    return groups


GroupSource = Callable[[str], list[dict]]


@dataclass
class _Field:
    definition: FormField
    options: list[str]  # choice options
    groups: list[dict]  # directory groups


def _catalogue(employee, items=None):
    """The items the person may order, with the stems of their texts and their fillable
    fields (one query for the items, one for the fields)."""
    fields = FormField.objects.filter(
        field_type__in=[FieldType.CHOICE, FieldType.MULTIPLE_CHOICE, FieldType.DIRECTORY_GROUP]
    ).order_by("position", "id")
    qs = items if items is not None else CatalogueItem.objects.orderable_by(employee)
    return list(
        qs.annotate(
            lex_name=_Lexemes("name"),
            lex_keywords=_Lexemes("keywords"),
            lex_summary=_Lexemes("summary"),
            lex_description=_Lexemes("description"),
        )
        .prefetch_related(Prefetch("form_fields", queryset=fields, to_attr="fillable"))
        .order_by("name")
    )


# --- matching ------------------------------------------------------------------------------


def _match_word(word: Word, stems: set[str], tokens: set[str]) -> tuple[float, str, str]:
    """How well one word meets one text: (factor, how, the text's word)."""
    for stem in word.stems:
        if stem in stems:
            return 1.0, "", stem
    # Whole words compared as written (folded): a stem ("auf" of "aufs") is compared with
    # stems only, or a stop word of the item's text would match.
    candidates = {word.folded, plain(word.folded)}
    parts = {c for c in candidates | set(word.stems) if len(c) >= MIN_PART}
    best = (0.0, "", "")
    for token in tokens:
        token_plain = plain(token)
        if token in candidates or token_plain in candidates:
            return 1.0, "", token
        for mine in parts:
            if len(token_plain) > len(mine) and mine in token_plain:
                if best[0] < PART_OF_WORD:
                    best = (PART_OF_WORD, "part", token)
            elif (
                not word.via
                and len(token_plain) >= MIN_PART - 1
                and len(mine) > len(token_plain) + 2
                and token_plain in mine
                and best[0] < PART_OF_WORD * 0.8
            ):
                best = (PART_OF_WORD * 0.8, "part", token)
        if len(word.folded) >= 4 and len(token) >= 4:
            sim = typo_similarity(plain(word.folded), token_plain)
            if sim and TYPO * sim > best[0]:
                best = (TYPO * sim, "typo", token)
    return best


@dataclass
class _ItemText:
    item: CatalogueItem
    parts: dict[str, tuple[set[str], set[str], str]]  # kind → (stems, tokens, text)
    fields: list[_Field]


def _group_tokens(group: dict) -> set[str]:
    return {plain(t) for t in _tokens(f"{group['name']} {group.get('description', '')}")}


def _match_groups(words: list[Word], departments: list[tuple[set[str], str, str]], groups):
    """The groups that fit the words best: (groups, [(word, matched, kind)]), or ([], [])."""
    scored = []
    for group in groups:
        tokens = _group_tokens(group)
        hits = []
        for word in words:
            if word.via:
                continue
            factor, how, token = _match_word(word, set(), tokens)
            # "personal" inside "Personalakten" says nothing about a share "…-personal".
            if factor > 0 and not (how == "part" and len(token) < len(word.folded)):
                hits.append((word, token, GROUP))
                continue
            for dept_tokens, code, name in departments:
                dept_factor, _, _ = _match_word(word, set(), dept_tokens)
                if dept_factor >= 0.9 and (f"amt{code.lower()}" in tokens or code in tokens):
                    hits.append((word, name, DEPARTMENT))
                    break
        if hits:
            scored.append((len({h[0].folded for h in hits}), group, hits))
    if not scored:
        return [], []
    best = max(s[0] for s in scored)
    top = [s for s in scored if s[0] == best]
    return [s[1] for s in top], top[0][2]


def interpret(
    text: str,
    employee,
    *,
    groups: GroupSource | None = None,
    general=None,
    items=None,
    limit: int = SHOWN,
) -> Interpretation:
    """The best items for ``text`` among those ``employee`` may order, with their reasons.

    ``groups`` lists a directory-group field's groups by base DN (default: the directory,
    cached); ``general`` is the general request item (default: looked up by setting)."""
    text = (text or "").replace("\x00", "").strip()[:MAX_TEXT]
    words, ignored = sentence_words(text)
    # "Amt 20" written apart: also as "amt20", as group descriptions write it.
    for first, second in itertools.pairwise(list(words)):
        if not first.via and not second.via and second.folded.isdigit():
            words.append(
                Word(f"{first.raw} {second.raw}", first.folded + second.folded, joined=True)
            )
    interpretation = Interpretation(text=text, words=[w.raw for w in words if not w.via],
                                    ignored=ignored, suggestions=[])  # fmt: skip
    if general is None:
        from catalogue.selectors import general_request_item

        general = general_request_item(employee)
    if general is not None:
        interpretation.general = general
        interpretation.general_url = _general_url(general, text)
    if not words:
        return interpretation
    catalogue = _catalogue(employee, items)
    groups = groups or _groups_cached
    options = {
        option
        for item in catalogue
        for definition in item.fillable
        for option in definition.choice_list
    }
    stems = _stems(sorted({w.folded for w in words} | options))
    for word in words:
        word.stems = stems.get(word.folded, ())
    # PostgreSQL's German stop words ("auf", "das", "einen") have no stem: not looked at.
    dropped = [w for w in words if not w.stems and not w.joined and not w.folded.isdigit()]
    interpretation.ignored += [w.raw for w in dropped if not w.via]
    words = [w for w in words if w not in dropped]
    interpretation.words = [w.raw for w in words if not w.via]
    if not words:
        return interpretation
    texts = []
    for item in catalogue:
        fields = []
        for definition in item.fillable:
            found = groups(definition.directory_base) if (
                definition.field_type == FieldType.DIRECTORY_GROUP and definition.directory_base
            ) else []  # fmt: skip
            fields.append(_Field(definition, definition.choice_list, found))
        texts.append(
            _ItemText(
                item,
                {
                    NAME: (set(item.lex_name or ()), set(_tokens(item.name)), item.name),
                    KEYWORD: (
                        set(item.lex_keywords or ()),
                        set(_tokens(item.keywords)),
                        item.keywords,
                    ),
                    SUMMARY: (set(item.lex_summary or ()), set(_tokens(item.summary)), ""),
                    DESCRIPTION: (set(item.lex_description or ()), set(), ""),
                },
                fields,
            )
        )
    departments = _departments() if any(f.groups for t in texts for f in t.fields) else []
    # How many items each word meets at all: rare words weigh more.
    found_in: dict[str, int] = {}
    per_item: list[tuple[_ItemText, dict[str, tuple[float, Reason]]]] = []
    for entry in texts:
        best: dict[str, tuple[float, Reason]] = {}
        for word in words:
            for kind, (kind_stems, tokens, _text) in entry.parts.items():
                factor, how, matched = _match_word(word, kind_stems, tokens)
                if kind == DESCRIPTION and how:
                    continue
                value = WEIGHTS[kind] * factor * (SYNONYM if word.via else 1.0)
                key = word.raw
                if value > 0 and value > best.get(key, (0, None))[0]:
                    best[key] = (value, Reason(kind, word.raw, matched, word.via, how))
        per_item.append((entry, best))
        for key, (_value, reason) in best.items():
            if not reason.how:
                found_in[key] = found_in.get(key, 0) + 1
    total = max(len(texts), 1)
    suggestions = []
    for entry, best in per_item:
        prefills, alternatives, extra = _prefills(entry, words, stems, departments)
        for reason in extra:
            value = WEIGHTS[GROUP if reason.kind == DEPARTMENT else reason.kind]
            if value > best.get(reason.word, (0, None))[0]:
                best[reason.word] = (value, reason)
                found_in.setdefault(reason.word, 1)
        if not best:
            continue
        score = sum(
            value * math.log(1 + total / found_in.get(key, 1)) for key, (value, _r) in best.items()
        )
        suggestion = Suggestion(entry.item, score, [r for _v, r in best.values()], prefills)
        suggestion.alternatives = [(p, order_url(entry.item, [p])) for p in alternatives]
        suggestions.append(suggestion)
    suggestions.sort(key=lambda s: (-s.score, s.item.name))
    interpretation.suggestions = [s for s in suggestions if s.score >= MIN_SCORE][:limit]
    for suggestion in interpretation.suggestions:
        suggestion.reasons.sort(
            key=lambda r: list(WEIGHTS).index(r.kind) if r.kind in WEIGHTS else 9
        )
    return interpretation


def _departments() -> list[tuple[set[str], str, str]]:
    return [
        ({plain(t) for t in _tokens(name)}, code, name)
        for code, name in Department.objects.values_list("code", "name")
    ]


def _prefills(entry: _ItemText, words, stems, departments):
    """Answers the sentence gives: a fitting option of a choice field, a fitting group."""
    prefills, alternatives, reasons = [], [], []
    for fillable in entry.fields:
        definition = fillable.definition
        if fillable.groups:
            top, hits = _match_groups(words, departments, fillable.groups)
            if top:
                chosen = [
                    Prefill(
                        definition.key, definition.label, g["dn"], _group_label(g), hits[0][0].raw
                    )
                    for g in top[:4]
                ]
                prefills.append(chosen[0])
                alternatives.extend(chosen[1:])
                for word, matched, kind in hits:
                    reasons.append(Reason(kind, word.raw, matched))
            continue
        if definition.field_type != FieldType.CHOICE:
            continue
        for option in fillable.options:
            option_stems = set(stems.get(option, ()))
            hit = next((w for w in words if w.stems and set(w.stems) & option_stems), None)
            if hit is not None:
                prefills.append(Prefill(definition.key, definition.label, option, option, hit.raw))
                reasons.append(Reason(CHOICE, hit.raw, option, hit.via))
                break
    return prefills, alternatives, reasons


def _group_label(group: dict) -> str:
    return (
        f"{group['name']} – {group['description']}" if group.get("description") else group["name"]
    )


def _general_url(general, text: str) -> str:
    """The general request's order page with the sentence in its first long-text field."""
    target = next(
        (f for f in general.form_fields.all() if f.field_type == FieldType.LONG_TEXT), None
    )
    if target is None or not text:
        return order_url(general, [])
    return order_url(general, [Prefill(target.key, target.label, text, text, "")])
