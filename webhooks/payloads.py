"""The ``data`` object of each event type, fixed when the event happens (docs/webhooks.md).

Only identifiers, states, dates, prices and links: no names, mail addresses, form
answers or free-text comments. A receiver that needs more asks the API with a token.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def _when(value) -> str | None:
    return value.isoformat() if value is not None else None


def _link(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _person(employee) -> dict:
    return {"username": employee.user.get_username(), "personnel_number": employee.personnel_number}


def request_data(service_request, *, from_state: str, to_state: str) -> dict:
    """A service request as it stands after the transition ``from_state`` → ``to_state``."""
    snapshot = service_request.item_snapshot or {}
    return {
        "request": {
            "id": service_request.pk,
            "state": to_state,
            "previous_state": from_state or None,
            "item": {
                "slug": snapshot.get("slug") or service_request.item.slug,
                "name": service_request.item_name,
                "version": service_request.item_version,
            },
            "requester": {"username": service_request.requester.get_username()},
            "beneficiary": _person(service_request.beneficiary),
            "cost_centre": service_request.cost_centre.code,
            "price_once": str(service_request.price_once),
            "price_monthly": str(service_request.price_monthly),
            "submitted_at": _when(service_request.submitted_at),
            "approved_at": _when(service_request.approved_at),
            "closed_at": _when(service_request.closed_at),
            "url": _link(service_request.get_absolute_url()),
        }
    }


def entitlement_data(entitlement) -> dict:
    return {
        "entitlement": {
            "id": entitlement.pk,
            "state": entitlement.state,
            "item": {"slug": entitlement.item.slug, "name": entitlement.item.name},
            "holder": _person(entitlement.holder),
            "granted_at": _when(entitlement.granted_at),
            "expires_on": _when(entitlement.expires_on),
            "revoked_at": _when(entitlement.revoked_at),
            "request": {
                "id": entitlement.request_id,
                "url": _link(reverse("requests:detail", kwargs={"pk": entitlement.request_id})),
            },
        }
    }


def ping_data(endpoint, user) -> dict:
    return {
        "endpoint": {"id": endpoint.pk},
        "sent_by": {"username": user.get_username()} if user is not None else None,
        "message": "This is a test event from the IT portal.",
    }
