"""Recount the incremental /metrics gauges from the tables (after a restore of one table)."""

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from metrics import gauges


class Command(BaseCommand):
    help = (
        "Reinstalls the gauge triggers and recounts active entitlements, open requests, "
        "failed jobs and failed or uncertain mails."
    )

    def handle(self, *args, **options):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(gauges.install_triggers_sql())
            cursor.execute(gauges.reset_sql())
        self.stdout.write("gauges recounted")
