"""Generate a plausible history of orders for demos and load checks (PostgreSQL only)."""

import time

from django.core.management.base import BaseCommand, CommandError

from devtools import history
from requests_app.models import ServiceRequest
from runs.progress import track


class Command(BaseCommand):
    help = (
        "Adds a history of requests over the last months, following the real workflow, "
        "for the controlling pages. Needs PostgreSQL and the demo catalogue (seed_demo)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=6000, help="requests to add")
        parser.add_argument("--months", type=int, default=12, help="months of history")
        parser.add_argument("--seed", type=int, default=1, help="random seed (repeatable)")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if requests exist already"
        )
        parser.add_argument(
            "--growth", type=float, default=0.4, help="demand growth over the period (0.4 = +40%%)"
        )

    def handle(self, *args, count, months, seed, growth, if_empty, **options):
        if count < 1 or not 1 <= months <= 120:
            raise CommandError("--count must be positive and --months between 1 and 120.")
        if if_empty and ServiceRequest.objects.exists():
            self.stdout.write("Requests exist already; no history added.")
            return
        started = time.monotonic()
        try:
            stream = self.stderr._out if options["verbosity"] else None
            with track("seed-history", total=history.STEPS, unit="steps", stream=stream) as run:
                result = history.generate(
                    count=count, months=months, seed=seed, growth=growth, progress=run.update
                )
                run.outcome = f"{result.requests} requests"
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{result.requests} requests, {result.approvals} approvals, {result.events} audit "
            f"records, {result.entitlements} entitlements, {result.ratings} ratings in "
            f"{time.monotonic() - started:.1f} s"
        )
