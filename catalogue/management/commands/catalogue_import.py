"""Import a catalogue exchange document; every placeholder is mapped with --map."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalogue.exchange.services import CONFLICT_POLICIES, SKIP, catalogue_import
from catalogue.exchange.validation import (
    MAX_UPLOAD_BYTES,
    ExchangeError,
    check_document,
    parse_bytes,
    used_placeholders,
)
from runs.progress import track


class Command(BaseCommand):
    help = (
        "Import a catalogue exchange document in one transaction. Map every placeholder: "
        "--map name=value (group name, department code or DN)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the JSON document")
        parser.add_argument(
            "--map", action="append", default=[], metavar="NAME=VALUE", dest="mapping"
        )
        parser.add_argument(
            "--on-conflict",
            choices=CONFLICT_POLICIES,
            default=SKIP,
            help="what to do with items whose slug exists here (default: skip)",
        )
        parser.add_argument("--dry-run", action="store_true", help="check and report only")

    def handle(self, *args, file, mapping, on_conflict, dry_run, verbosity=1, **options):
        path = Path(file)
        try:
            if path.stat().st_size > MAX_UPLOAD_BYTES:
                raise CommandError(f"{file}: larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB.")
            raw = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        values = {}
        for entry in mapping:
            name, sep, value = entry.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"--map {entry!r}: expected name=value.")
            values[name.strip()] = value
        document = None
        try:
            document = check_document(parse_bytes(raw))
            unknown = sorted(set(values) - set(document["placeholders"]))
            if unknown:
                raise CommandError(f"--map names unknown placeholders: {', '.join(unknown)}")
            items = len(document.get("items", []))
            stream = self.stderr._out if verbosity else None
            with track("catalogue-import", total=items, unit="items", stream=stream) as run:
                report = catalogue_import(
                    document=document, mapping=values, on_conflict=on_conflict, dry_run=dry_run
                )
                run.update(items)
                run.outcome = report.summary()
        except ExchangeError as exc:
            needed = ""
            if document is not None:
                needed = "\nPlaceholders to map: " + ", ".join(
                    f"{name} ({document['placeholders'][name]['kind']})"
                    for name in used_placeholders(document)
                )
            raise CommandError(
                "Nothing was imported:\n" + "\n".join(f"  {p}" for p in exc.problems) + needed
            ) from exc
        if verbosity:
            prefix = "Dry run, nothing written. " if dry_run else ""
            self.stdout.write(prefix + report.summary())
