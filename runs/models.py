"""Long runs of commands and tasks (directory sync, reconciliation, imports, retention …)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunState(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Run(models.Model):
    """One run of a long command or task, written while it runs (runs/progress.py).

    ``done`` of ``total`` (``total`` empty when the size is not known in advance) is
    updated at most once a second, so the status page shows how far a run has come.
    """

    name = models.CharField(_("run"), max_length=100)
    state = models.CharField(
        _("state"), max_length=20, choices=RunState.choices, default=RunState.RUNNING
    )
    done = models.PositiveBigIntegerField(_("done"), default=0)
    total = models.PositiveBigIntegerField(_("total"), null=True, blank=True)
    unit = models.CharField(_("unit"), max_length=50, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    host = models.CharField(_("host"), max_length=200, blank=True)
    started_at = models.DateTimeField(_("started"))
    updated_at = models.DateTimeField(_("updated"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        indexes = [
            models.Index(fields=["-started_at"], name="run_started_idx"),
            # /metrics reads each run's last success with one step per name
            # (runs.selectors.last_successes): runs are kept, a sync every 15 minutes.
            models.Index(
                fields=["name", "finished_at"],
                condition=models.Q(state="succeeded", finished_at__isnull=False),
                name="run_succeeded_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self):
        end = self.finished_at or self.updated_at
        return end - self.started_at

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, round(100 * self.done / self.total))
