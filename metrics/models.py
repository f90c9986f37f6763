"""Monthly roll-ups of the controlling figures (see docs/controlling.md, "Roll-ups").

Closed calendar months (portal time zone) are aggregated once by a Celery beat task
(``metrics.tasks.refresh_controlling_rollups``), the open month up to the start of an hour;
the rest of it and any month not rolled up yet are read live. Database triggers (migrations
``metrics.0001``, ``metrics.0003``, ``metrics.0004`` for the SLA figures, ``metrics.0006``)
mark a month dirty in the transaction that changes its history before the current hour: a
late rating, a revoked or back-dated entitlement, a moved beneficiary, a fulfilled request's
deadline. Dirty months are read live until recomputed.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RollupMonth(models.Model):
    """One closed month and whether its roll-up rows are current.

    ``version`` grows with every mark, so a recomputation that raced a change leaves the
    month dirty. ``through`` is set while the month is the open one and rolled up only up to
    the start of an hour (its rest is read live); a closed month with it is recomputed."""

    month = models.DateField(_("month"), primary_key=True)
    dirty = models.BooleanField(_("needs recomputing"), default=True)
    version = models.BigIntegerField(_("version"), default=0)
    computed_at = models.DateTimeField(_("computed"), null=True, blank=True)
    through = models.DateTimeField(_("rolled up until"), null=True, blank=True)

    class Meta:
        verbose_name = _("roll-up month")
        verbose_name_plural = _("roll-up months")

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"


class _MonthDimensions(models.Model):
    """The dimensions every monthly roll-up row has: month, service, department, cost
    centre (without database constraints, as before)."""

    month = models.DateField(_("month"))
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    department = models.ForeignKey(
        "catalogue.Department", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    cost_centre = models.ForeignKey(
        "catalogue.CostCentre", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )

    class Meta:
        abstract = True


class MonthlyFigures(_MonthDimensions):
    """Counts and amounts of one month for one service, department and cost centre.

    Department: the beneficiary's; cost centre: the one charged when the request was placed.
    Orders by submission month; fulfilled, one-off costs, automation, approval steps and
    ratings (those with a comment too) by fulfilment month; entitlements charged in the
    month (active at some time in it) and active at its end, with their monthly prices.
    """

    orders = models.IntegerField(default=0)
    fulfilled = models.IntegerField(default=0)
    once = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    automated = models.IntegerField(default=0)
    with_approval = models.IntegerField(default=0)
    rated = models.IntegerField(default=0)
    score_sum = models.IntegerField(default=0)
    score_1 = models.IntegerField(default=0)
    score_2 = models.IntegerField(default=0)
    score_3 = models.IntegerField(default=0)
    score_4 = models.IntegerField(default=0)
    score_5 = models.IntegerField(default=0)
    # Ratings with a comment: the satisfaction page's comment list knows its length without
    # looking up each comment's request (a thousand look-ups, 17-42 ms at 1M requests).
    commented = models.IntegerField(default=0)
    charged = models.IntegerField(default=0)
    monthly = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    active_end = models.IntegerField(default=0)
    active_end_monthly = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "item", "department", "cost_centre"],
                name="monthlyfigures_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.item_id}/{self.department_id}/{self.cost_centre_id}"


class MonthlyDurations(models.Model):
    """Histogram of one lead-time measure: requests fulfilled in the month per duration bucket.

    Buckets grow geometrically (``metrics.controlling.rollup.GAMMA``), so a percentile read
    from them is within 1 % of the exact one. ``level`` says which of department and cost
    centre the row is broken down by (0 none, 1 department, 2 cost centre, 3 both), so an
    unfiltered page reads the few rows of level 0.
    """

    month = models.DateField(_("month"))
    level = models.PositiveSmallIntegerField()
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    department = models.ForeignKey(
        "catalogue.Department",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        null=True,
    )
    cost_centre = models.ForeignKey(
        "catalogue.CostCentre",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        null=True,
    )
    measure = models.PositiveSmallIntegerField()  # 1 approval, 2 fulfilment, 3 total
    bucket = models.IntegerField()
    count = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(
                fields=["level", "month"],
                include=["item", "department", "cost_centre", "measure", "bucket", "count"],
                name="monthlydurations_level_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.item_id} {self.measure}:{self.bucket}"


class GaugeDelta(models.Model):
    """A change of a gauge ``/metrics`` shows, written by database triggers in the changing
    transaction (migration ``metrics.0002``): the scrape sums a handful of rows instead of
    counting every active entitlement. Rows are only ever appended, so concurrent
    transactions never wait for each other; ``metrics.tasks.compact_gauges`` folds them into
    one row per gauge and label."""

    gauge = models.CharField(max_length=40)
    label = models.CharField(max_length=100)
    delta = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.gauge}{{{self.label}}} {self.delta:+d}"


class MonthlySla(_MonthDimensions):
    """Service levels of one month for one service, department and cost centre: of the
    requests fulfilled in the month, those with a resolution target (a fulfilment deadline)
    and how many were fulfilled by it, those with a response target and how many got their
    first response by it (``metrics.controlling.sla``). Kept with the other roll-up rows of
    the month, from the same SQL the page reads the live months with."""

    fulfilled = models.IntegerField(default=0)  # with a fulfilment deadline
    met = models.IntegerField(default=0)
    responded = models.IntegerField(default=0)  # with a response target
    response_met = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "item", "department", "cost_centre"],
                name="monthlysla_key",
            )
        ]
        # The page sums a period's rows from the index alone (the roll-up run vacuums).
        indexes = [
            models.Index(
                fields=["month"],
                include=[
                    "item",
                    "department",
                    "cost_centre",
                    "fulfilled",
                    "met",
                    "responded",
                    "response_met",
                ],
                name="monthlysla_month_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.item_id}/{self.department_id}/{self.cost_centre_id}"
