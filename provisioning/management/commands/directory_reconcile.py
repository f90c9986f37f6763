from django.core.management.base import BaseCommand, CommandError

from itportal.locks import advisory_lock
from provisioning.backends.errors import DirectoryError
from provisioning.models import DriftFinding
from provisioning.reconcile import holders_report, reconcile, repair_missing
from runs.progress import track


class Command(BaseCommand):
    help = "Compare entitlements with the directory's group memberships and report drift."

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair", action="store_true", help="Re-add memberships that are granted but missing."
        )
        parser.add_argument(
            "--holders",
            action="store_true",
            help="List every managed membership with the entitlements (or the hand grant) "
            "holding it.",
        )

    def handle(self, *args, repair=False, holders=False, verbosity=1, **options):
        with advisory_lock("directory-reconcile") as acquired:
            if not acquired:
                raise CommandError("A reconciliation is under way (beat or another command).")
            stream = self.stderr._out if verbosity else None  # tqdm writes its own line ends
            with track("directory-reconcile", unit="findings", stream=stream) as progress:
                self.reconcile(
                    repair=repair, holders=holders, verbosity=verbosity, progress=progress
                )

    def reconcile(self, *, repair, holders, verbosity, progress):
        try:
            run = reconcile()
        except DirectoryError as exc:
            raise CommandError(f"The directory did not answer as expected: {exc.message}") from exc
        findings = list(run.findings.all())
        progress.update(0, total=len(findings))
        for finding in findings:
            progress.advance()
            if verbosity:
                self.stdout.write(
                    f"{finding.get_kind_display()}: {finding.member} in {finding.group_dn}"
                )
            if repair and finding.kind == DriftFinding.Kind.MISSING:
                repair_missing(finding_id=finding.pk)
        if holders:
            for line in holders_report():
                self.stdout.write(line)
        counts = ", ".join(f"{k} {v}" for k, v in run.counts.items())
        progress.outcome = counts
        if verbosity:
            self.stdout.write(self.style.SUCCESS(f"Reconciliation: {counts}"))
