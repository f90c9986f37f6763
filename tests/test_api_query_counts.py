"""API lists run a fixed number of SQL queries, however many rows (no N+1)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning.models import Entitlement
from requests_app import services
from tests.api_support import token_client

pytestmark = pytest.mark.django_db

LISTS = [
    ("/api/v1/requests/", "alice"),
    ("/api/v1/requests/?scope=visible", "admin"),
    ("/api/v1/approvals/", "manager"),
    ("/api/v1/fulfilment-queue/", "fulfiller"),
    ("/api/v1/entitlements/", "manager"),
    ("/api/v1/provisioning-jobs/", "admin"),
    ("/api/v1/items/", "alice"),
    ("/api/v1/items/", "admin"),
    ("/api/v1/categories/", "alice"),
    ("/api/v1/tokens/", "admin"),
]


def add_rows(world, count):
    """``count`` more orders by Alice: waiting for the manager, and fulfilled ones."""
    org = world.org
    for index in range(count):
        waiting = services.request_create(
            requester=org.alice.user, item=world.item, item_version=world.item.version,
            beneficiary=org.alice, cost_centre=org.cost_centre, answers={"room": f"R{index}"},
        )  # fmt: skip
        assert waiting.state == "awaiting_approval"
        done = services.request_create(
            requester=org.bob.user, item=world.free_item, item_version=world.free_item.version,
            beneficiary=org.alice, cost_centre=org.cost_centre, answers={},
        )  # fmt: skip
        services.request_take(request_id=done.pk, user=org.fulfiller.user)
        services.request_complete(request_id=done.pk, user=org.fulfiller.user, note="")


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:200]
    return len(queries)


@pytest.mark.parametrize(("url", "who"), LISTS)
def test_list_queries_do_not_grow_with_rows(world, url, who):
    client = token_client(getattr(world.org, who).user)
    add_rows(world, 2)
    count_queries(client, url)  # the token's first use is recorded once (last_used_at)
    few = count_queries(client, url)
    add_rows(world, 6)
    assert Entitlement.objects.count() >= 8
    assert count_queries(client, url) == few
