"""Closing the remaining doors (issue 13): cost centres an employee may charge, webhook
secrets encrypted at rest (with rotation and the data migration), no-store caching."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalogue.choices import ApproverKind
from itportal import crypto
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.api_support import token_client
from tests.factories import ApprovalPolicyStepFactory, CatalogueItemFactory, CostCentreFactory
from webhooks import services as webhook_services
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


# --- cost centres -----------------------------------------------------------------------


@pytest.fixture
def dock(org):
    """An item with no approval step: approved at once when charged where one may."""
    return CatalogueItemFactory(name="Dockingstation", slug="dock", service_owner=org.service_desk)


@pytest.fixture
def it_cost_centre(org):
    return CostCentreFactory(code="KS1800", name="IT", owner=org.outsider)


def test_own_cost_centre_needs_no_extra_step(org, dock, place_order):
    request = place_order(dock, org.alice.user)
    assert request.state == RequestState.APPROVED
    assert not request.approvals.exists()


def test_someone_elses_cost_centre_needs_its_owners_approval(
    org, dock, it_cost_centre, place_order
):
    request = place_order(dock, org.alice.user, cost_centre=it_cost_centre)
    assert request.state == RequestState.AWAITING_APPROVAL
    [step] = request.approvals.all()
    assert step.approver_kind == ApproverKind.COST_CENTRE_OWNER
    assert step.approver == org.outsider.user
    assert step.label == "Charge to a cost centre other than your own"


def test_the_owners_step_comes_first_and_is_not_doubled(
    org, manual_item, it_cost_centre, place_order
):
    request = place_order(manual_item, org.alice.user, cost_centre=it_cost_centre)
    kinds = list(request.approvals.order_by("position").values_list("approver_kind", flat=True))
    assert kinds == [ApproverKind.COST_CENTRE_OWNER, ApproverKind.LINE_MANAGER]
    ApprovalPolicyStepFactory(
        item=manual_item, position=2, approver_kind=ApproverKind.COST_CENTRE_OWNER
    )
    manual_item.refresh_from_db()
    request = place_order(manual_item, org.alice.user, cost_centre=it_cost_centre)
    kinds = list(request.approvals.order_by("position").values_list("approver_kind", flat=True))
    assert kinds == [ApproverKind.LINE_MANAGER, ApproverKind.COST_CENTRE_OWNER]


def test_listed_and_owned_cost_centres_are_free_to_charge(org, dock, it_cost_centre, place_order):
    org.alice.chargeable_cost_centres.add(it_cost_centre)
    assert (
        place_order(dock, org.alice.user, cost_centre=it_cost_centre).state == RequestState.APPROVED
    )
    org.alice.chargeable_cost_centres.clear()
    org.alice.department.chargeable_cost_centres.add(it_cost_centre)
    assert (
        place_order(dock, org.bob.user, cost_centre=it_cost_centre).state == RequestState.APPROVED
    )
    # The owner charges the cost centre they own without asking anyone.
    assert (
        place_order(dock, org.outsider.user, cost_centre=it_cost_centre).state
        == RequestState.APPROVED
    )


def test_ordering_for_a_colleague_elsewhere_asks_that_cost_centres_owner(org, dock, place_order):
    dock.orderable_for_others = True
    dock.save()
    request = place_order(dock, org.alice.user, beneficiary=org.outsider)
    assert request.state == RequestState.AWAITING_APPROVAL
    assert request.approvals.get().approver_kind == ApproverKind.COST_CENTRE_OWNER


def test_the_order_page_charges_a_foreign_cost_centre_only_with_approval(
    client, org, dock, it_cost_centre
):
    client.force_login(org.alice.user)
    response = client.post(
        f"/leistung/{dock.slug}/bestellen/",
        {"item_version": dock.version, "cost_centre": it_cost_centre.pk},
    )
    assert response.status_code == 302
    request = ServiceRequest.objects.get(requester=org.alice.user)
    assert request.cost_centre == it_cost_centre
    assert request.state == RequestState.AWAITING_APPROVAL


# --- webhook secrets at rest ------------------------------------------------------------------


def stored(endpoint_id: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, previous_secret FROM webhooks_webhookendpoint WHERE id = %s",
            [endpoint_id],
        )
        return cursor.fetchone()


def test_webhook_secrets_are_encrypted_at_rest(org):
    endpoint, secret = webhook_services.endpoint_create(
        url="https://example.org/hook", events=["request.approved"], user=org.admin.user
    )
    raw_secret, raw_previous = stored(endpoint.pk)
    assert secret not in raw_secret and raw_secret.startswith("gAAAAA")  # a Fernet token
    assert raw_previous == ""
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    endpoint, new = webhook_services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
    raw_secret, raw_previous = stored(endpoint.pk)
    assert new not in raw_secret and secret not in raw_previous
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).signing_secrets() == [new, secret]


def test_key_rotation_re_encrypts_every_secret(org, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    endpoint, secret = webhook_services.endpoint_create(
        url="https://example.org/hook", events=["request.approved"], user=org.admin.user
    )
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", verbosity=0)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert Fernet(new_key.encode()).decrypt(stored(endpoint.pk)[0].encode()).decode() == secret
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret


def test_a_missing_key_is_a_clear_error_not_a_plain_text_secret(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        crypto.encrypt("whsec_x")


def test_the_data_migration_encrypts_existing_secrets():
    executor = MigrationExecutor(connection)
    executor.migrate([("webhooks", "0001_webhooks_outbox")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO webhooks_webhookendpoint (url, description, is_active, secret, "
            "previous_secret, secret_rotated_at, created_at, updated_at) VALUES "
            "('https://example.org/old', '', true, 'whsec_plain', 'whsec_older', "
            "now(), now(), now()) RETURNING id"
        )
        endpoint_id = cursor.fetchone()[0]
        # Inside the test's transaction: run the deferred checks before the next ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("webhooks"))
    raw_secret, raw_previous = stored(endpoint_id)
    assert "whsec" not in raw_secret and "whsec" not in raw_previous
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert (endpoint.secret, endpoint.previous_secret) == ("whsec_plain", "whsec_older")


# --- caching ---------------------------------------------------------------------------------


def test_authenticated_pages_and_api_answers_are_not_stored(client, org):
    client.force_login(org.alice.user)
    for url in ["/", "/antraege/", "/konto/tokens/", "/api/v1/items/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
    client.logout()
    anonymous = client.get("/api/v1/items/")
    assert anonymous.status_code in (401, 403) and "no-store" in anonymous["Cache-Control"]
    token = token_client(org.bob.user).get("/api/v1/items/")
    assert token.status_code == 200 and "no-store" in token["Cache-Control"]
