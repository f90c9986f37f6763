"""Bring the controlling roll-ups up to date now (beat does it every few minutes)."""

from django.core.management.base import BaseCommand
from django.db import connection

from metrics.controlling import rollup


class Command(BaseCommand):
    help = (
        "Rolls up every closed month that is dirty or new, and the open month up to the "
        "start of an hour. --rebuild recomputes all months "
        "and reinstalls the triggers (after a change of TIME_ZONE or a restore)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recompute every month")

    def handle(self, *args, rebuild, **options):
        if rebuild:
            with connection.cursor() as cursor:
                cursor.execute(rollup.install_triggers_sql())
                cursor.execute(rollup.install_sla_triggers_sql())
            rollup.mark_all_dirty()
        result = rollup.refresh(budget_seconds=float("inf"))
        self.stdout.write(
            f"{len(result['computed'])} months rolled up, "
            f"{len(result['changed_meanwhile'])} changed meanwhile (left dirty)"
        )
        if result["open_month_through"]:
            self.stdout.write(f"open month rolled up until {result['open_month_through']}")
