from django.core.management.base import BaseCommand, CommandError

from itportal.locks import advisory_lock
from provisioning.backends.errors import DirectoryError
from provisioning.sync import sync_people
from runs.progress import track


class Command(BaseCommand):
    help = "Import people, departments and managers from the directory (full or incremental)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--incremental", action="store_true", help="Only entries changed since the last run."
        )

    def handle(self, *args, incremental=False, verbosity=1, **options):
        with advisory_lock("directory-sync") as acquired:
            if not acquired:
                raise CommandError("A directory sync is under way (beat or another command).")
            name = "directory-sync" + ("-incremental" if incremental else "")
            stream = self.stderr._out if verbosity else None  # tqdm writes its own line ends
            with track(name, unit="entries", stream=stream) as progress:
                try:
                    run = sync_people(full=not incremental, progress=progress.update)
                except DirectoryError as exc:
                    raise CommandError(
                        f"The directory did not answer as expected: {exc.message}"
                    ) from exc
                progress.outcome = ", ".join(f"{k} {v}" for k, v in run.counts.items())
        if verbosity:
            counts = ", ".join(f"{k} {v}" for k, v in run.counts.items())
            self.stdout.write(self.style.SUCCESS(f"{run.get_kind_display()}: {counts}"))
            if run.report:
                self.stdout.write(run.report)
