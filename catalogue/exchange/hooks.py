"""What the exchange needs from provisioning, registered by provisioning at start-up.

Provisioning sits above the catalogue (it depends on it, not the other way round), so it
hands its pieces in from ``ProvisioningConfig.ready`` like the directory-group field does.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Provisioning:
    action_model: type  # ProvisioningAction: item, position, kind, target, attributes
    parse_attributes: Callable[[str], dict[str, str]]  # "name = template" lines → dict
    directory_groups: Callable[[], list[dict] | None]  # groups below the base, None if none


_registered: list[Provisioning] = []


def register_provisioning(**kwargs) -> None:
    _registered[:] = [Provisioning(**kwargs)]


def provisioning() -> Provisioning | None:
    return _registered[0] if _registered else None
