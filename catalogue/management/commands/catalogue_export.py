"""Write catalogue items as an exchange document (JSON) to standard output."""

from django.core.management.base import BaseCommand, CommandError

from catalogue.exchange.services import catalogue_export, dumps
from catalogue.exchange.validation import ExchangeError


class Command(BaseCommand):
    help = "Export catalogue items as a catalogue exchange document (JSON) to stdout."

    def add_arguments(self, parser):
        parser.add_argument(
            "--category", action="append", default=[], help="category slug (repeatable)"
        )
        parser.add_argument("--item", action="append", default=[], help="item slug (repeatable)")

    def handle(self, *args, category, item, **options):
        try:
            document = catalogue_export(category_slugs=category, item_slugs=item)
        except ExchangeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(dumps(document), ending="")
