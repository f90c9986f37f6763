"""The OpenAPI document: served to signed-in users, complete with auth schemes and errors."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(org, api_as):
    response = api_as(org.alice).get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_documents_auth_and_its_errors(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["TokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "A personal API token: `Authorization: Token <key>`.",
    }
    assert schemes["BearerAuth"]["scheme"] == "bearer"
    assert "cookieAuth" in schemes
    seen = 0
    for path, method, operation in operations(document):
        seen += 1
        codes = set(operation["responses"])
        assert {"401", "403", "429"} <= codes, (method, path)
        assert {"TokenAuth": []} in operation["security"], (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method != "get":
            assert "400" in codes, (method, path)
            bodyless = method == "delete" or operation["operationId"] == "job_retry"
            assert "requestBody" in operation or bodyless, (method, path)
        if path.startswith("/api/v1/requests/{id}/") and method == "post":
            assert "409" in codes, (method, path)
        assert any(code.startswith("2") for code in codes), (method, path)
    # bundles: list, one, order; cart: list, add, remove, submit; fulfilment tasks: list, one, done
    assert seen == 50


def test_lists_are_paginated_filtered_and_ordered(document):
    for path, method, operation in operations(document):
        if method != "get" or "{" in path:
            continue
        names = {p["name"] for p in operation.get("parameters", [])}
        assert {"limit", "offset", "ordering"} <= names, path
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["$ref"].startswith("#/components/schemas/Paginated"), path
    request_list = document["paths"]["/api/v1/requests/"]["get"]
    assert {"q", "state", "category", "cost_centre", "created_after", "created_before",
            "scope"} <= {p["name"] for p in request_list["parameters"]}  # fmt: skip


def test_generated_document_is_valid_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "openapi: 3" in target.read_text()
