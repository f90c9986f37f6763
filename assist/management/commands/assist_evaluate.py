"""Measure the assistance on the data in the database (docs/assistance.md, "Quality")."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from assist import evaluation


def demo_groups(base: str) -> list[dict]:
    """The demo directory's file-share groups (devtools.demo_directory), without a server."""
    from devtools.demo_directory import FILE_SHARES

    return [
        {"dn": f"cn={cn},{base}", "name": cn, "description": path, "owner": ""}
        for cn, _code, path in FILE_SHARES
    ]


class Command(BaseCommand):
    help = (
        "Recommendation precision/recall against held-out entitlements and top-1/top-3 "
        "accuracy of ordering in words over the German test phrasings. Changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--only", choices=["words", "recommendations"], default=None)
        parser.add_argument("--share", type=float, default=0.2, help="share held out")
        parser.add_argument("--seed", type=int, default=1, help="random seed of the hold-out")
        parser.add_argument("--limit", type=int, default=3, help="recommendations per person")
        parser.add_argument(
            "--groups",
            choices=["directory", "demo"],
            default=None,
            help="where directory groups come from (default: the directory if configured, "
            "else the demo's file shares)",
        )
        parser.add_argument(
            "--similarity",
            choices=["trigram", "damerau"],
            default=None,
            help="typo measure for ordering in words (default: ASSIST_WORDS_SIMILARITY)",
        )
        parser.add_argument("--misses", action="store_true", help="list the missed phrasings")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")

    def handle(self, *args, only, share, seed, limit, groups, similarity, misses, **options):
        if not 0 < share < 1:
            raise CommandError("--share must be between 0 and 1.")
        figures = {}
        if only in (None, "recommendations"):
            rec = evaluation.evaluate_recommendations(share=share, seed=seed, limit=limit)
            figures["recommendations"] = {
                "entitlements": rec.entitlements,
                "people": rec.people,
                "held_out": rec.held_out,
                "recommended": rec.recommended,
                "hits": rec.hits,
                "precision": round(rec.precision, 3),
                "recall": round(rec.recall, 3),
                "baseline_precision": round(rec.baseline_precision, 3),
                "baseline_recall": round(rec.baseline_recall, 3),
                "share": share,
                "seed": seed,
                "limit": limit,
            }
        if only in (None, "words"):
            if groups is None:
                groups = "directory" if settings.DIRECTORY.get("url") else "demo"
            source = demo_groups if groups == "demo" else None
            similarity = similarity or settings.ASSIST_WORDS_SIMILARITY
            with override_settings(ASSIST_WORDS_SIMILARITY=similarity):
                result = evaluation.evaluate_words(groups=source)
            figures["words"] = {
                "phrasings": result.cases,
                "top1": round(result.top1_rate, 3),
                "top3": round(result.top3_rate, 3),
                "groups": groups,
                "similarity": similarity,
            }
            if misses:
                figures["words"]["misses"] = [
                    {"phrase": p, "ranked": r, "expected": sorted(e)} for p, r, e in result.misses
                ]
        if options["json"]:
            self.stdout.write(json.dumps(figures, ensure_ascii=False, indent=2))
            return
        if "recommendations" in figures:
            r = figures["recommendations"]
            self.stdout.write(
                f"Recommendations (top {r['limit']}, {r['share']:.0%} of {r['entitlements']} "
                f"active entitlements held out, seed {r['seed']}): {r['people']} people, "
                f"{r['held_out']} held out, {r['recommended']} recommended, {r['hits']} hits; "
                f"precision {r['precision']:.3f}, recall {r['recall']:.3f} (most held overall "
                f"instead: precision {r['baseline_precision']:.3f}, "
                f"recall {r['baseline_recall']:.3f})"
            )
        if "words" in figures:
            w = figures["words"]
            self.stdout.write(
                f"Ordering in words ({w['phrasings']} phrasings, groups: {w['groups']}, "
                f"typos: {w['similarity']}): "
                f"top-1 {w['top1']:.3f}, top-3 {w['top3']:.3f}"
            )
            for miss in w.get("misses", []):
                self.stdout.write(
                    f"  miss: {miss['phrase']!r} → {miss['ranked']} (expected {miss['expected']})"
                )
