"""The start page per role and the navigation's menus and counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning.choices import ActionKind, Direction
from provisioning.models import ProvisioningJob
from requests_app import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def page(client, user):
    client.force_login(user)
    response = client.get("/start/")
    assert response.status_code == 200
    return response.content.decode()


def nav(content: str) -> str:
    return content[content.index('aria-label="Main navigation"') : content.index("</nav>")]


def test_login_lands_on_the_start_page(client, org):
    response = client.post("/accounts/login/", {"username": "alice", "password": "test-pass-123"})
    assert response.status_code == 302
    assert response.url == "/start/"


def test_requester_sees_her_open_request_and_who_is_on_it(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    content = page(client, org.alice.user)
    assert f'href="/antraege/{req.pk}/"' in content
    assert f"Waiting for approval by {org.manager.user.get_full_name()}" in content
    assert "status-badge is-waiting" in content
    menu = nav(content)
    assert "/antraege/genehmigungen/" not in menu  # nothing to decide, never decided
    assert "/antraege/bearbeitung/" not in menu  # in no fulfilling group
    assert "/antraege/" in menu


def test_manager_sees_what_waits_for_a_decision(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    content = page(client, org.manager.user)
    assert '<span class="tile-count">1</span> request awaits your decision' in content
    assert f'href="/antraege/{req.pk}/"' in content
    menu = nav(content)
    assert "/antraege/genehmigungen/" in menu
    assert '<span class="count">1' in menu


def test_fulfiller_sees_the_queue_of_their_group(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    content = page(client, org.fulfiller.user)
    assert "request to fulfil in your groups" in content
    assert "/antraege/bearbeitung/" in nav(content)


def test_it_admin_sees_failed_jobs_and_old_requests(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    job = ProvisioningJob.objects.create(
        request=req,
        direction=Direction.GRANT,
        kind=ActionKind.ADD_TO_GROUP,
        user_uid="alice",
        target_dn="cn=vpn,ou=groups,dc=example",
        dialect="openldap",
    )
    ProvisioningJob.objects.filter(pk=job.pk).update(state="failed", last_error="Server weg")
    content = page(client, org.admin.user)
    assert "IT administration" in content
    assert f'href="/provisionierung/auftraege/{job.pk}/"' in content
    assert "failed provisioning job" in content
    assert "Administration</summary>" in content


def test_controlling_sees_key_figures(client, org, manual_item, place_order):
    place_order(manual_item, org.alice.user)
    controller = UserFactory(username="controller", groups=[org.controlling])
    content = page(client, controller)
    assert "Key figures for" in content
    assert "/controlling/lizenzpools/" in content
    assert "/controlling/" in nav(content)


def test_employee_without_roles_sees_no_admin_menus(client, org):
    content = page(client, org.outsider.user)
    assert "Administration</summary>" not in content
    assert "/controlling/" not in content
    assert "You have no open requests." in content


def test_start_page_query_count_is_constant(client, org, manual_item, place_order):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/start/").status_code == 200
        return len(ctx.captured_queries)

    client.force_login(org.manager.user)
    place_order(manual_item, org.alice.user)
    place_order(manual_item, org.manager.user)
    client.get("/start/")
    few = count()
    for _ in range(8):
        place_order(manual_item, org.alice.user)
        place_order(manual_item, org.manager.user)
    assert count() == few


def test_other_pages_pay_one_query_for_the_navigation(client, org, manual_item, place_order):
    client.force_login(org.manager.user)
    client.get("/antraege/")
    with CaptureQueriesContext(connection) as ctx:
        client.get("/antraege/")
    before = len(ctx.captured_queries)
    for _ in range(5):
        place_order(manual_item, org.alice.user)
    with CaptureQueriesContext(connection) as ctx:
        client.get("/antraege/")
    assert len(ctx.captured_queries) == before
