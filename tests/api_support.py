"""Helpers for the API tests: clients that authenticate with a real API token."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api import services as token_services


def token_client(user) -> APIClient:
    """A client sending ``Authorization: Token <key>`` with a fresh token of ``user``."""
    _token, key = token_services.token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="en")
    return client


@pytest.fixture
def api_as():
    """``api_as(user)``: a token-authenticated client for ``user`` (an Employee or a User)."""

    def _client(person):
        return token_client(getattr(person, "user", person))

    return _client
