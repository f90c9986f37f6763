"""Segregation of duties: services that one person must not hold together."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SodRule(models.Model):
    """Two catalogue items no one may hold (or have ordered) at the same time, e.g. creating
    payments in the finance system and releasing them."""

    name = models.CharField(_("name"), max_length=200)
    reason = models.TextField(
        _("reason"),
        max_length=2000,
        help_text=_("Shown to whoever orders or approves a conflicting service."),
    )
    first_item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("service"),
        on_delete=models.CASCADE,
        related_name="sod_first",
    )
    second_item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("must not be held together with"),
        on_delete=models.CASCADE,
        related_name="sod_second",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("segregation-of-duties rule")
        verbose_name_plural = _("segregation-of-duties rules")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(first_item=F("second_item")), name="sod_rule_two_items"
            ),
            # One rule per pair, in either order.
            models.UniqueConstraint(
                Least("first_item", "second_item"),
                Greatest("first_item", "second_item"),
                name="sod_rule_one_per_pair",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.first_item_id and self.first_item_id == self.second_item_id:
            raise ValidationError({"second_item": _("Choose two different services.")})
        if self.first_item_id and self.second_item_id:
            pair = Q(first_item=self.first_item_id, second_item=self.second_item_id) | Q(
                first_item=self.second_item_id, second_item=self.first_item_id
            )
            if SodRule.objects.filter(pair).exclude(pk=self.pk).exists():
                raise ValidationError(_("A rule for these two services exists already."))

    def other(self, item_id: int) -> int:
        return self.second_item_id if item_id == self.first_item_id else self.first_item_id


class Campaign(models.Model):
    """A recertification: every line manager confirms or removes the lasting access their
    staff hold (access review, "Rezertifizierung")."""

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=200)
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.OPEN)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    started_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("started by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    due_on = models.DateField(_("due"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("recertification")
        verbose_name_plural = _("recertifications")
        ordering = ["-started_at"]

    def __str__(self):
        return self.name


class Review(models.Model):
    """One held access in a campaign, and the reviewer's decision on it."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("Not yet decided")
        KEEP = "keep", _("Keep")
        REMOVE = "remove", _("Remove")

    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("recertification"),
        on_delete=models.CASCADE,
        related_name="reviews",
    )
    entitlement = models.ForeignKey(
        "provisioning.Entitlement",
        verbose_name=_("entitlement"),
        on_delete=models.CASCADE,
        related_name="reviews",
    )
    # The holder's line manager when the campaign started; none: IT administration decides.
    reviewer = models.ForeignKey(
        "auth.User",
        verbose_name=_("reviewer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="access_reviews",
    )
    decision = models.CharField(
        _("decision"), max_length=10, choices=Decision, default=Decision.PENDING
    )
    decided_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("access review")
        verbose_name_plural = _("access reviews")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "entitlement"], name="review_once_per_campaign"
            ),
        ]
        indexes = [
            # "Waiting for me": the reviewer's undecided rows.
            models.Index(
                fields=["reviewer", "campaign"],
                condition=Q(decision="pending"),
                name="review_pending_by_reviewer",
            ),
        ]

    def __str__(self):
        return f"{self.campaign}: {self.entitlement_id}"
