"""Helpers for the API tests: clients that authenticate with a real API token."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api import services as token_services


def token_key(user) -> str:
    return token_services.token_create(user=user, name="test")[1]


def token_client(user) -> APIClient:
    """A client sending ``Authorization: Token <key>`` with a fresh token of ``user``."""
    _token, key = token_services.token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="en")
    return client


def serialised_rows(client, url: str, serializer_class, pages: int) -> list[dict]:
    """The rows of the list's first ``pages`` pages of one row each, having checked that
    each is what ``serializer_class`` makes of its object (keys and their order too): for
    lists that build their bodies from values."""
    model = serializer_class.Meta.model
    rows = []
    for offset in range(pages):
        rows += client.get(url, {"offset": offset, "limit": 1}).json()["results"]
    assert len(rows) == pages
    for row in rows:
        expected = serializer_class(model.objects.get(pk=row["id"])).data
        assert row == expected
        assert list(row) == list(expected)
    return rows


@pytest.fixture
def api_as():
    """``api_as(user)``: a token-authenticated client for ``user`` (an Employee or a User)."""

    def _client(person):
        return token_client(getattr(person, "user", person))

    return _client


class ApiWorld:
    """Data every endpoint has something to show for: items with a form, requests in
    several states, an entitlement, a failed provisioning job, a restricted item."""

    def __init__(self, org):
        from decimal import Decimal

        from catalogue.choices import ApproverKind, Audience, FieldType
        from provisioning.choices import ActionKind, Direction
        from provisioning.models import ProvisioningJob
        from requests_app import services
        from tests.factories import CatalogueItemFactory, CategoryFactory, FormFieldFactory
        from tests.workflow_support import make_item

        self.org = org
        self.category = CategoryFactory(name="Hardware", slug="hardware")
        self.item = make_item(
            org.service_desk,
            {"approver_kind": ApproverKind.LINE_MANAGER},
            name="Monitor",
            slug="monitor",
            category=self.category,
        )
        FormFieldFactory(item=self.item, key="room", label="Room", field_type=FieldType.TEXT)
        FormFieldFactory(
            item=self.item,
            key="size",
            label="Size",
            field_type=FieldType.CHOICE,
            choices="24\n27",
            required=False,
        )
        self.free_item = make_item(
            org.service_desk, name="Maus", slug="maus", category=self.category,
            price_once=Decimal("15.00"), price_monthly=Decimal("0.00"),
        )  # fmt: skip
        self.restricted = CatalogueItemFactory(
            name="Fachverfahren", slug="fachverfahren", audience=Audience.RESTRICTED
        )

        def order(item, requester, answers=None):
            return services.request_create(
                requester=requester.user,
                item=item,
                item_version=item.version,
                beneficiary=requester,
                cost_centre=requester.effective_cost_centre,
                answers=answers or {},
            )

        self.pending = order(self.item, org.alice, {"room": "A 1", "size": "27"})
        self.fulfilled = order(self.free_item, org.alice)
        services.request_take(request_id=self.fulfilled.pk, user=org.fulfiller.user)
        services.request_complete(request_id=self.fulfilled.pk, user=org.fulfiller.user, note="ok")
        self.fulfilled.refresh_from_db()
        self.entitlement = self.fulfilled.entitlement
        self.failed = order(self.free_item, org.bob)
        services.request_fail(request_id=self.failed.pk, user=org.fulfiller.user, reason="kaputt")
        self.job = ProvisioningJob.objects.create(
            request=self.failed,
            direction=Direction.GRANT,
            kind=ActionKind.ADD_TO_GROUP,
            user_uid=org.bob.personnel_number,
            target_dn="cn=vpn,ou=groups,dc=example",
            dialect="openldap",
        )


@pytest.fixture
def world(org):
    return ApiWorld(org)
