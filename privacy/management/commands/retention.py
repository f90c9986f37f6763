from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from itportal.locks import advisory_lock
from privacy import retention
from runs.progress import track


class Command(BaseCommand):
    help = (
        "Anonymise, pseudonymise or delete personal data past its retention period "
        "(RETENTION_* settings); the nightly beat task does the same."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count, per kind of data, what a run would change now; change nothing.",
        )

    def handle(self, *args, dry_run=False, verbosity=1, **options):
        with advisory_lock("retention") as acquired:
            if not acquired:
                raise CommandError("A retention run is under way (beat or another command).")
            if dry_run:
                counts = retention.retention_due()
                self.report(counts, "would be")
                return
            stream = self.stderr._out if verbosity else None  # tqdm writes its own line ends
            with track("retention", unit="rows", stream=stream) as progress:
                counts = retention.retention_apply(progress=progress)
                progress.outcome = retention.summary(counts)
            self.report(counts, "")

    def report(self, counts: dict[str, int], would: str):
        width = max(len(kind) for kind in counts)
        for policy in retention.POLICIES:
            days = getattr(settings, policy.setting)
            verb = f"{would} {policy.action}".strip()
            self.stdout.write(
                f"{policy.kind:<{width}}  {counts[policy.kind]:>9}  {verb:<25} "
                f"after {days} days ({policy.setting})"
            )
