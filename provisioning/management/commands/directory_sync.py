import sys

from django.core.management.base import BaseCommand, CommandError

from itportal.locks import advisory_lock
from provisioning.backends.errors import DirectoryError
from provisioning.sync import sync_people


class Command(BaseCommand):
    help = "Import people, departments and managers from the directory (full or incremental)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--incremental", action="store_true", help="Only entries changed since the last run."
        )

    def handle(self, *args, incremental=False, verbosity=1, **options):
        show = verbosity > 0 and sys.stdout.isatty()

        def progress(done: int) -> None:
            if show and done % 50 == 0:
                self.stdout.write(f"\r{done} entries read", ending="")
                self.stdout.flush()

        with advisory_lock("directory-sync") as acquired:
            if not acquired:
                raise CommandError("A directory sync is under way (beat or another command).")
            try:
                run = sync_people(full=not incremental, progress=progress)
            except DirectoryError as exc:
                raise CommandError(
                    f"The directory did not answer as expected: {exc.message}"
                ) from exc
        if show:
            self.stdout.write("")
        if verbosity:
            counts = ", ".join(f"{k} {v}" for k, v in run.counts.items())
            self.stdout.write(self.style.SUCCESS(f"{run.get_kind_display()}: {counts}"))
            if run.report:
                self.stdout.write(run.report)
