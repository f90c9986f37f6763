"""What assistance keeps between requests: the first candidates to reclaim, as last computed
(``assist.reclaim.refresh_stored``, beat's ``assist.tasks.refresh_reclaim_candidates``), so
the controlling page reads a hundred rows instead of ranking every active entitlement."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ReclaimRun(models.Model):
    """When the stored candidates were computed (one row)."""

    computed_at = models.DateTimeField(_("computed"))

    class Meta:
        verbose_name = _("computation of the candidates to reclaim")

    def __str__(self) -> str:
        return f"{self.computed_at:%Y-%m-%d %H:%M}"


class ReclaimCandidate(models.Model):
    """One of the first candidates to reclaim, at its position in the page's order."""

    position = models.PositiveIntegerField(primary_key=True)
    entitlement = models.ForeignKey(
        "provisioning.Entitlement",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    risk = models.PositiveSmallIntegerField()
    left = models.BooleanField()
    moved = models.BooleanField()
    idle = models.BooleanField()
    few_peers = models.BooleanField()

    class Meta:
        verbose_name = _("candidate to reclaim")
        verbose_name_plural = _("candidates to reclaim")

    def __str__(self) -> str:
        return f"{self.position}: {self.entitlement_id}"
