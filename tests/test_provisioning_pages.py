"""Entitlement and job pages: who sees what, and revocation of a manually fulfilled item."""

import pytest

from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def fulfilled(org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    return req


def test_fulfilment_leaves_an_entitlement(org, fulfilled):
    entitlement = Entitlement.objects.get(request=fulfilled)
    assert entitlement.holder == org.bob
    assert entitlement.item == fulfilled.item
    assert entitlement.state == EntitlementState.ACTIVE


@pytest.mark.parametrize(
    ("who", "sees"),
    [("bob", True), ("manager", True), ("admin", True), ("alice", False), ("outsider", False)],
)
def test_entitlement_list_shows_own_and_staff(org, fulfilled, client, who, sees):
    client.force_login(getattr(org, who).user)
    response = client.get("/provisionierung/berechtigungen/")
    assert response.status_code == 200
    assert (fulfilled.item.name in response.content.decode()) is sees


def test_holder_revokes_a_manual_entitlement(org, fulfilled, client):
    entitlement = Entitlement.objects.get(request=fulfilled)
    client.force_login(org.outsider.user)
    url = f"/provisionierung/berechtigungen/{entitlement.pk}/entziehen/"
    assert client.post(url, {"reason": "x"}).status_code == 404
    client.force_login(org.bob.user)
    response = client.post(url, {"reason": "Nicht mehr nötig"}, follow=True)
    assert response.status_code == 200
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.REVOKED
    assert entitlement.revoked_by == org.bob.user
    assert entitlement.revoke_reason == "Nicht mehr nötig"
    # A second removal is a clear message, not an error page.
    response = client.post(url, {"reason": ""}, follow=True)
    assert "already" in response.content.decode()


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("fulfiller", 403), ("alice", 403)])
def test_job_list_is_for_it_admins(org, client, who, status):
    client.force_login(getattr(org, who).user)
    assert client.get("/provisionierung/auftraege/").status_code == status


def _row_of(html: str, request_id: int) -> str:
    """The table row that links request ``request_id``."""
    link = f'<a href="/antraege/{request_id}/">{request_id}</a>'
    assert link in html
    return html[html.rindex("<tr", 0, html.index(link)) : html.index("</tr>", html.index(link))]


def test_entitlement_rows_show_every_cell(org, fulfilled, client):
    """The page's rows are read as values (provisioning.selectors.entitlement_list_rows):
    each cell still shows what the model rows showed."""
    from django.utils import formats, timezone

    entitlement = Entitlement.objects.get(request=fulfilled)
    client.force_login(org.manager.user)
    html = client.get("/provisionierung/berechtigungen/", HTTP_ACCEPT_LANGUAGE="de").content
    row = _row_of(html.decode(), fulfilled.pk)
    since = formats.date_format(timezone.localtime(entitlement.granted_at), "SHORT_DATE_FORMAT")
    holder = org.bob.display_name
    for cell in (
        f'data-label="Leistung" >{fulfilled.item.name}</td>',
        f'data-label="Inhaber(in)" >{holder}</td>',
        f'data-label="Fachbereich" >{org.bob.department.name}</td>',
        f'data-label="Seit" >{since}</td>',
        'data-label="Bis" >—</td>',
        'data-label="Status" >Aktiv</td>',
        f'href="/warum/berechtigung/{entitlement.pk}/">Warum?<span class="visually-hidden"> '
        f"{fulfilled.item.name}, {holder}</span>",
        f'href="/provisionierung/berechtigungen/{entitlement.pk}/entziehen/">',
    ):
        assert cell in row, cell


def test_entitlement_rows_of_a_holder_without_names(org, fulfilled, client):
    """A holder with no first or last name: the username, no removal once revoked."""
    user = org.bob.user
    user.first_name = user.last_name = ""
    user.save()
    Entitlement.objects.filter(request=fulfilled).update(state=EntitlementState.REVOKED)
    client.force_login(org.manager.user)
    html = client.get("/provisionierung/berechtigungen/?sort=holder", HTTP_ACCEPT_LANGUAGE="de")
    row = _row_of(html.content.decode(), fulfilled.pk)
    assert 'data-label="Status" >Entzogen</td>' in row
    assert f"{fulfilled.item.name}, {user.username}</span>" in row
    assert "entziehen" not in row
    # The holder column shows the last name, empty here: the table's default.
    assert 'data-label="Inhaber(in)" >—</td>' in row
