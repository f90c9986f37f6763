"""Who fulfils an approved request: a person from the queue, or an automation.

``requests_app`` knows nothing of the directory. An app that can fulfil requests
automatically (``provisioning``) registers a claim function here; a request no
automation claims is fulfilled by hand from its service-owner group's queue, so
an item marked "automated" whose automation is not configured is never stuck.
"""

from __future__ import annotations

from collections.abc import Callable

_claims: list[Callable[[object], bool]] = []


def register_automation(claims: Callable[[object], bool]) -> None:
    """Register ``claims(service_request) -> bool``: True if it fulfils that request."""
    if claims not in _claims:
        _claims.append(claims)


def unregister_automation(claims: Callable[[object], bool]) -> None:
    if claims in _claims:
        _claims.remove(claims)


def is_automated(service_request) -> bool:
    return any(claims(service_request) for claims in _claims)


def needs_manual_fulfilment(service_request) -> bool:
    return not is_automated(service_request)
