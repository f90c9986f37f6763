"""Offline evaluation of the assistance (``manage.py assist_evaluate``, docs/assistance.md).

Recommendations: a share of the active entitlements is held out (marked revoked inside a
transaction that is rolled back, so nothing changes), the recommendations are computed for
every person who lost one, and compared with what was held out: precision = held-out items
among the recommended ones, recall = recommended among the held-out ones (micro-averaged over
all those people).

Ordering in words: the German test phrasings in ``data/words_testset.de.tsv`` against the
active catalogue; top-1 = the first suggestion fits, top-3 = one of the first three fits.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from assist import selectors, words
from catalogue.models import CatalogueItem, Employee
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement

TESTSET = Path(__file__).resolve().parent / "data" / "words_testset.de.tsv"
GENERAL = "sonstige-anfrage"


@dataclass(frozen=True)
class Case:
    phrase: str
    expected: frozenset[str]


def load_cases(path: Path = TESTSET) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        phrase, _, expected = line.partition("\t")
        cases.append(Case(phrase.strip(), frozenset(s.strip() for s in expected.split("|"))))
    return cases


@dataclass
class WordsResult:
    cases: int = 0
    top1: int = 0
    top3: int = 0
    misses: list[tuple[str, list[str], frozenset[str]]] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.cases if self.cases else 0.0

    @property
    def top3_rate(self) -> float:
        return self.top3 / self.cases if self.cases else 0.0


def evaluate_words(
    cases: list[Case] | None = None, *, groups: words.GroupSource | None = None
) -> WordsResult:
    """Top-1 and top-3 accuracy over the test phrasings, on every active item."""
    cases = load_cases() if cases is None else cases
    items = CatalogueItem.objects.active()
    general = items.filter(slug=settings.PORTAL_GENERAL_REQUEST_ITEM).first()
    result = WordsResult()
    for case in cases:
        found = words.interpret(case.phrase, None, items=items, groups=groups, general=general)
        ranked = [s.item.slug for s in found.suggestions]
        if GENERAL in case.expected and (not ranked or ranked[0] == GENERAL):
            ranked = [GENERAL]
        result.cases += 1
        hit1 = bool(ranked) and ranked[0] in case.expected
        hit3 = any(slug in case.expected for slug in ranked[:3])
        result.top1 += hit1
        result.top3 += hit3
        if not hit1:
            result.misses.append((case.phrase, ranked[:3], case.expected))
    return result


@dataclass
class RecommendationResult:
    people: int = 0  # people with at least one held-out entitlement
    held_out: int = 0
    recommended: int = 0
    hits: int = 0
    entitlements: int = 0
    # The same people given the items most held overall (that they do not hold): what the
    # peer groups must beat.
    baseline_recommended: int = 0
    baseline_hits: int = 0

    @property
    def baseline_precision(self) -> float:
        return self.baseline_hits / self.baseline_recommended if self.baseline_recommended else 0.0

    @property
    def baseline_recall(self) -> float:
        return self.baseline_hits / self.held_out if self.held_out else 0.0

    @property
    def precision(self) -> float:
        return self.hits / self.recommended if self.recommended else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.held_out if self.held_out else 0.0


class _Rollback(Exception):
    pass


def evaluate_recommendations(
    *, share: float = 0.2, seed: int = 1, limit: int = 3, progress: Callable | None = None
) -> RecommendationResult:
    """Hold out ``share`` of the active entitlements (seeded), recommend, compare. The
    database is left as it was (everything runs in a transaction that is rolled back)."""
    result = RecommendationResult()
    try:
        with transaction.atomic():
            active = list(
                Entitlement.objects.filter(state=EntitlementState.ACTIVE, holder__is_active=True)
                # The seeded sample walks the rows in this order: without one, the table's
                # physical order (which updates and vacuum change) decided what was held out.
                .order_by("pk")
                .values_list("pk", "holder_id", "item_id")
            )
            result.entitlements = len(active)
            rng = random.Random(seed)  # noqa: S311 - a repeatable sample, no secret
            chosen = [row for row in active if rng.random() < share]
            Entitlement.objects.filter(pk__in=[pk for pk, _h, _i in chosen]).update(
                state=EntitlementState.REVOKED
            )
            held: dict[int, set[int]] = {}
            for _pk, holder, item in chosen:
                held.setdefault(holder, set()).add(item)
            chosen_ids = {pk for pk, _h, _i in chosen}
            kept = [(h, i) for pk, h, i in active if pk not in chosen_ids]
            popularity: dict[int, int] = {}
            holds: dict[int, set[int]] = {}
            for holder, item in kept:
                popularity[item] = popularity.get(item, 0) + 1
                holds.setdefault(holder, set()).add(item)
            popular = sorted(popularity, key=lambda i: (-popularity[i], i))
            people = Employee.objects.filter(pk__in=held).select_related("user")
            for done, person in enumerate(people, start=1):
                recommended = {
                    r.item.pk for r in selectors.recommendations_for(person, limit=limit)
                }
                result.people += 1
                result.held_out += len(held[person.pk])
                result.recommended += len(recommended)
                result.hits += len(recommended & held[person.pk])
                mine = holds.get(person.pk, set())
                baseline = [i for i in popular if i not in mine][:limit]
                result.baseline_recommended += len(baseline)
                result.baseline_hits += len(set(baseline) & held[person.pk])
                if progress:
                    progress(done)
            raise _Rollback
    except _Rollback:
        pass
    return result
