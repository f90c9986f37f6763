from django.core.management.base import BaseCommand, CommandError

from itportal.locks import advisory_lock
from provisioning.backends.errors import DirectoryError
from provisioning.models import DriftFinding
from provisioning.reconcile import reconcile, repair_missing


class Command(BaseCommand):
    help = "Compare entitlements with the directory's group memberships and report drift."

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair", action="store_true", help="Re-add memberships that are granted but missing."
        )

    def handle(self, *args, repair=False, verbosity=1, **options):
        with advisory_lock("directory-reconcile") as acquired:
            if not acquired:
                raise CommandError("A reconciliation is under way (beat or another command).")
            self.reconcile(repair=repair, verbosity=verbosity)

    def reconcile(self, *, repair, verbosity):
        try:
            run = reconcile()
        except DirectoryError as exc:
            raise CommandError(f"The directory did not answer as expected: {exc.message}") from exc
        for finding in run.findings.all():
            if verbosity:
                self.stdout.write(
                    f"{finding.get_kind_display()}: {finding.member} in {finding.group_dn}"
                )
            if repair and finding.kind == DriftFinding.Kind.MISSING:
                repair_missing(finding_id=finding.pk)
        if verbosity:
            counts = ", ".join(f"{k} {v}" for k, v in run.counts.items())
            self.stdout.write(self.style.SUCCESS(f"Reconciliation: {counts}"))
