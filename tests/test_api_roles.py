"""Every endpoint × role: allowed or refused exactly as the portal's pages decide.

401 without credentials; 403 where the role may not act; 404 where the object is not
visible to the user (forged ids of others' objects).
"""

import pytest
from rest_framework.test import APIClient

from tests.api_support import token_client

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "alice", "bob", "manager", "admin", "controlling"]


def new_item(world):
    return {
        "slug": "neu",
        "name": "Neu",
        "category": world.category.slug,
        "service_owner": world.org.service_desk.name,
    }


# (method, path template, body or callable(world), expected status per role; "*" for the rest)
CASES = [
    ("get", "/api/v1/categories/", None, {"anonymous": 401, "*": 200}),
    ("post", "/api/v1/categories/", {"slug": "neu", "name": "Neu"},
     {"anonymous": 401, "admin": 201, "*": 403}),
    ("patch", "/api/v1/categories/{category}/", {"position": 3},
     {"anonymous": 401, "admin": 200, "*": 403}),
    ("get", "/api/v1/items/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/items/{item}/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/items/{restricted}/", None, {"anonymous": 401, "admin": 200, "*": 403}),
    ("get", "/api/v1/items/does-not-exist/", None, {"anonymous": 401, "*": 404}),
    ("post", "/api/v1/items/", new_item, {"anonymous": 401, "admin": 201, "*": 403}),
    ("patch", "/api/v1/items/{item}/", {"price_once": "12.00"},
     {"anonymous": 401, "admin": 200, "*": 403}),
    ("get", "/api/v1/cost-centres/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/cart/", None, {"anonymous": 401, "*": 200}),
    ("post", "/api/v1/cart/", lambda world: {"item": world.free_item.slug,
     "item_version": world.free_item.version}, {"anonymous": 401, "*": 201}),
    ("delete", "/api/v1/cart/{alice_line}/", None,
     {"anonymous": 401, "alice": 204, "*": 404}),
    ("post", "/api/v1/cart/submit/", lambda world: {"lines": [world.alice_line]},
     {"anonymous": 401, "alice": 201, "*": 400}),
    ("get", "/api/v1/requests/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/requests/{pending}/", None,
     {"anonymous": 401, "alice": 200, "manager": 200, "admin": 200, "*": 404}),
    ("post", "/api/v1/requests/{pending}/approve/", {},
     {"anonymous": 401, "manager": 200, "alice": 403, "admin": 403, "*": 404}),
    ("post", "/api/v1/requests/{pending}/reject/", {"comment": "Nein."},
     {"anonymous": 401, "manager": 200, "alice": 403, "admin": 403, "*": 404}),
    ("post", "/api/v1/requests/{pending}/cancel/", {},
     {"anonymous": 401, "alice": 200, "admin": 200, "manager": 403, "*": 404}),
    ("post", "/api/v1/requests/{pending}/take/", {},
     {"anonymous": 401, "alice": 403, "manager": 403, "admin": 409, "*": 404}),
    ("post", "/api/v1/requests/{failed}/retry/", {},
     {"anonymous": 401, "admin": 200, "bob": 403, "*": 404}),
    ("post", "/api/v1/requests/{failed}/fail/", {"reason": "x"},
     {"anonymous": 401, "admin": 409, "bob": 403, "*": 404}),
    ("post", "/api/v1/requests/{fulfilled}/complete/", {},
     {"anonymous": 401, "admin": 409, "alice": 403, "*": 404}),
    ("post", "/api/v1/requests/{pending}/submit/", {},
     {"anonymous": 401, "alice": 409, "manager": 403, "admin": 403, "*": 404}),
    ("get", "/api/v1/approvals/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/fulfilment-queue/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/entitlements/", None, {"anonymous": 401, "*": 200}),
    ("get", "/api/v1/entitlements/{entitlement}/", None,
     {"anonymous": 401, "alice": 200, "manager": 200, "admin": 200, "*": 404}),
    ("post", "/api/v1/entitlements/{entitlement}/revoke/", {"reason": "weg"},
     {"anonymous": 401, "alice": 200, "manager": 200, "admin": 200, "*": 404}),
    ("get", "/api/v1/provisioning-jobs/", None, {"anonymous": 401, "admin": 200, "*": 403}),
    ("get", "/api/v1/provisioning-jobs/{job}/", None, {"anonymous": 401, "admin": 200, "*": 403}),
    ("post", "/api/v1/provisioning-jobs/{job}/retry/", {},
     {"anonymous": 401, "admin": 200, "*": 403}),
    ("get", "/api/v1/controlling/costs/", None,
     {"anonymous": 401, "admin": 200, "controlling": 200, "*": 403}),
    ("get", "/api/v1/controlling/usage/", None,
     {"anonymous": 401, "admin": 200, "controlling": 200, "*": 403}),
    ("get", "/api/v1/controlling/lead-times/", None,
     {"anonymous": 401, "admin": 200, "controlling": 200, "*": 403}),
    ("get", "/api/v1/controlling/satisfaction/", None,
     {"anonymous": 401, "admin": 200, "controlling": 200, "*": 403}),
    ("get", "/api/v1/tokens/", None, {"anonymous": 401, "*": 200}),
    ("post", "/api/v1/tokens/", {"name": "Intranet"}, {"anonymous": 401, "*": 201}),
    ("get", "/api/v1/tokens/{alice_token}/", None,
     {"anonymous": 401, "alice": 200, "admin": 200, "*": 404}),
    ("delete", "/api/v1/tokens/{alice_token}/", None,
     {"anonymous": 401, "alice": 204, "admin": 204, "*": 404}),
    ("get", "/api/schema/", None, {"anonymous": 401, "*": 200}),
]  # fmt: skip


def client_for(role, world):
    if role == "anonymous":
        client = APIClient()
        client.credentials(HTTP_ACCEPT_LANGUAGE="en")
        return client
    if role == "controlling":
        from tests.factories import EmployeeFactory

        person = EmployeeFactory(
            department=world.org.department,
            user__username="controller",
            user__groups=[world.org.controlling],
        )
        return token_client(person.user)
    return token_client(getattr(world.org, role).user)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    CASES,
    ids=[f"{method} {path}" for method, path, _b, _e in CASES],
)
def test_endpoint_by_role(world, method, path, body, expected):
    from django.db import transaction

    from api import services as token_services
    from provisioning.models import ProvisioningJob
    from requests_app.models import CartLine

    ProvisioningJob.objects.filter(pk=world.job.pk).update(state="failed")
    alice_token, _key = token_services.token_create(user=world.org.alice.user, name="Intranet")
    world.alice_line = CartLine.objects.create(
        owner=world.org.alice.user,
        item=world.free_item,
        beneficiary=world.org.alice,
        form_data={"item_version": [str(world.free_item.version)]},
    ).pk
    url = path.format(
        category=world.category.slug,
        item=world.item.slug,
        restricted=world.restricted.slug,
        pending=world.pending.pk,
        failed=world.failed.pk,
        fulfilled=world.fulfilled.pk,
        entitlement=world.entitlement.pk,
        job=world.job.pk,
        alice_token=alice_token.pk,
        alice_line=world.alice_line,
    )
    data = body(world) if callable(body) else body
    wrong = []
    for role in ROLES:
        # Each role acts on the same data: whatever one role changed is rolled back.
        with transaction.atomic():
            response = getattr(client_for(role, world), method)(url, data, format="json")
            want = expected.get(role, expected.get("*"))
            if response.status_code != want:
                wrong.append((role, want, response.status_code, response.content[:200]))
            elif (
                want >= 400
                and want != 400  # invalid input names the fields instead (docs/api.md)
                and url.startswith("/api/v1/")
                and "detail" not in response.json()
            ):
                wrong.append((role, want, "no detail", response.content[:200]))
            transaction.set_rollback(True)
    assert not wrong, wrong
