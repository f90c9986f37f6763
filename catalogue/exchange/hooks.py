"""What the exchange and the item history need from provisioning, registered at start-up.

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
    # item_actions_save(item=, actions=[{kind, target, attributes}], record=): the item's
    # actions made equal to the list, all or nothing (restoring an old version of the item).
    actions_save: Callable[..., None] | None = None


_registered: list[Provisioning] = []


def register_provisioning(**kwargs) -> None:
    _registered[:] = [Provisioning(**kwargs)]


def provisioning() -> Provisioning | None:
    return _registered[0] if _registered else None
