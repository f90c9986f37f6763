"""What a person already holds or has ordered of an item, so the order page can warn.

Entitlements live in provisioning, above us: it hands in its lookup from
``ProvisioningConfig.ready`` and requests_app never imports it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from catalogue.models import CatalogueItem, Employee
from requests_app.choices import OPEN_STATES
from requests_app.models import ServiceRequest


@dataclass(frozen=True)
class Holding:
    """Lasting access the person holds: since when, until when, the request that granted it."""

    since: datetime
    until: date | None
    url: str


# (employee, item) → holdings, in one query
HoldingLookup = Callable[[Employee, CatalogueItem], list[Holding]]

_registered: list[HoldingLookup] = []


def register_holding_lookup(lookup: HoldingLookup) -> None:
    _registered[:] = [lookup]


def open_requests(employee: Employee, item: CatalogueItem) -> list[ServiceRequest]:
    """The employee's latest open requests for the item: their number and state only (the
    page links them); compiling the select list of all 35 columns was a third of the read."""
    return list(
        ServiceRequest.objects.filter(beneficiary=employee, item=item, state__in=OPEN_STATES)
        .only("state")
        .order_by("-created_at")[:5]
    )


def held_access(employee: Employee, item: CatalogueItem) -> list[Holding]:
    """Lasting access the employee holds to the item (empty for one-off deliveries)."""
    if employee is None or not item.grants_access or not _registered:
        return []
    return _registered[0](employee, item)
