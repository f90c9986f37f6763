"""Free licences of an item's pool, counted by the app that knows who holds them.

Entitlements and requests sit above the catalogue, so provisioning hands in its annotation
from ``ProvisioningConfig.ready`` (like the exchange hooks) and the catalogue never imports it.
"""

from collections.abc import Callable

from django.db.models import QuerySet

from catalogue.models import CatalogueItem

# items → items annotated with ``licences_in_use`` and ``licences_reserved``
LicenceUsage = Callable[[QuerySet], QuerySet]

_registered: list[LicenceUsage] = []


def register_licence_usage(annotate: LicenceUsage) -> None:
    _registered[:] = [annotate]


def licences_free(item: CatalogueItem) -> int | None:
    """Free licences of the item's pool (None: no pool, or nobody counts its use).

    An exhausted pool does not block orders: the page says so, and IT administration frees
    or buys a licence before fulfilling (the controlling page "Licence pools" warns them).
    """
    if item.licence_pool_size is None or not _registered:
        return None
    held, reserved = (
        _registered[0](CatalogueItem.objects.filter(pk=item.pk))
        .values_list("licences_in_use", "licences_reserved")
        .get()
    )
    return max(item.licence_pool_size - held - reserved, 0)
