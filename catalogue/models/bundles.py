"""Bundles: several items that are ordered together in one go (Pakete)."""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class BundleQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Bundle(models.Model):
    """Items IT admins put together for one occasion, e.g. "Neue Mitarbeiterin / neuer
    Mitarbeiter": ordered in one submission, one request per chosen item.

    The bundle grants nothing of its own: each item stays open only to whom it is open.
    """

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), unique=True, max_length=100)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Retired bundles can no longer be ordered.")
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    items = models.ManyToManyField(
        "catalogue.CatalogueItem",
        through="BundleItem",
        verbose_name=_("items"),
        related_name="bundles",
    )

    objects = BundleQuerySet.as_manager()

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("bundle")
        verbose_name_plural = _("bundles")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("ordering:bundle", kwargs={"slug": self.slug})


class BundleItem(models.Model):
    """One item of a bundle; ``selected`` items are chosen when the order page opens, the
    others are offered for the orderer to add. Either can be deselected."""

    bundle = models.ForeignKey(
        Bundle, verbose_name=_("bundle"), on_delete=models.CASCADE, related_name="entries"
    )
    item = models.ForeignKey(
        "catalogue.CatalogueItem",
        verbose_name=_("item"),
        on_delete=models.PROTECT,
        related_name="bundle_entries",
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    selected = models.BooleanField(
        _("selected by default"),
        default=True,
        help_text=_("Chosen when the order page opens; otherwise offered as optional."),
    )

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("bundle item")
        verbose_name_plural = _("bundle items")
        constraints = [
            models.UniqueConstraint(
                fields=["bundle", "item"],
                name="bundleitem_unique_item_per_bundle",
                violation_error_message=_("Each item can be in a bundle only once."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id}: {self.item_id}"
