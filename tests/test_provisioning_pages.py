"""Entitlement and job pages: who sees what, and revocation of a manually fulfilled item."""

import pytest
from django.utils import translation

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


def test_entitlement_rows_show_a_change_at_once(org, fulfilled, client):
    """The rows' markup is kept per process (``rows_are_values``): a row whose values
    changed (revoked, the holder renamed) shows the change on the next view."""
    entitlement = Entitlement.objects.get(request=fulfilled)
    client.force_login(org.manager.user)
    url = "/provisionierung/berechtigungen/"
    row = _row_of(client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode(), fulfilled.pk)
    assert 'data-label="Status" >Aktiv</td>' in row
    assert "entziehen" in row
    Entitlement.objects.filter(pk=entitlement.pk).update(state=EntitlementState.REVOKED)
    org.bob.user.last_name = "Neuname"
    org.bob.user.save()
    row = _row_of(client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode(), fulfilled.pk)
    assert 'data-label="Status" >Entzogen</td>' in row
    assert "Neuname" in row
    assert "entziehen" not in row
    # The same row in English: the language is part of what the markup is kept under.
    row = _row_of(client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode(), fulfilled.pk)
    assert 'data-label="State" >Revoked</td>' in row


def test_job_rows_show_every_cell_and_a_change(org, fulfilled, client):
    """The jobs page reads its rows as values (provisioning.selectors.job_list_rows, no
    joins) and keeps their markup per process: each cell shows what the model rows
    showed, and a job that changed shows its new state at once."""
    from django.utils import formats, timezone
    from django.utils.html import escape

    from provisioning.choices import ActionKind, Direction, JobState
    from provisioning.models import ProvisioningJob

    job = ProvisioningJob.objects.create(
        request=fulfilled,
        direction=Direction.GRANT,
        kind=ActionKind.ADD_TO_GROUP,
        user_uid="bob <&>",
        target_dn="cn=vpn,ou=groups",
        dialect="openldap",
        state=JobState.RETRYING,
        attempts=2,
        last_error="Server <down> & out",
    )
    client.force_login(org.admin.user)
    url = "/provisionierung/auftraege/"
    row = _row_of(client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode(), fulfilled.pk)
    updated = formats.date_format(timezone.localtime(job.updated_at), "SHORT_DATETIME_FORMAT")
    for cell in (
        f'data-label="Nr." ><a href="/provisionierung/auftraege/{job.pk}/">{job.pk}</a></td>',
        f'<a href="/antraege/{fulfilled.pk}/">{fulfilled.pk}</a></td>',
        f">{escape('bob <&>')}</td>",
        ">cn=vpn,ou=groups</td>",
        ">2</td>",
        f">{escape('Server <down> & out')}</td>",
        f">{updated}</td>",
    ):
        assert cell in row, cell
    with translation.override("de"):
        labels = [str(label) for label in (JobState.RETRYING.label, ActionKind.ADD_TO_GROUP.label)]
        labels.append(str(Direction.GRANT.label))
        failed = str(JobState.FAILED.label)
    for label in labels:
        assert f">{label}</td>" in row, label
    ProvisioningJob.objects.filter(pk=job.pk).update(
        state=JobState.FAILED, attempts=3, last_error="Gave up"
    )
    row = _row_of(client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode(), fulfilled.pk)
    assert f">{failed}</td>" in row
    assert ">3</td>" in row
    assert ">Gave up</td>" in row


def _jobs(request, count: int) -> list:
    from provisioning.choices import ActionKind, Direction, JobState
    from provisioning.models import ProvisioningJob

    return [
        ProvisioningJob.objects.create(
            request=request,
            direction=Direction.GRANT,
            kind=ActionKind.ADD_TO_GROUP if n % 2 else ActionKind.REMOVE_FROM_GROUP,
            user_uid=f"uid{n}",
            target_dn=f"cn=group{n},ou=groups",
            dialect="openldap",
            state=JobState.FAILED if n % 3 == 0 else JobState.SUCCEEDED,
            attempts=n % 4,
            position=n,
        )
        for n in range(count)
    ]


def test_job_rows_read_by_the_kept_statement_are_the_orms(
    org, fulfilled, django_assert_num_queries
):
    """job_list_rows reads a page's rows (chosen by ids, ordered) by a statement compiled
    once per order: the same dicts as the ORM's values, in one query."""
    from provisioning import selectors
    from provisioning.models import ProvisioningJob

    jobs = _jobs(fulfilled, 5)
    chosen = ProvisioningJob._base_manager.filter(pk__in=[jobs[1].pk, jobs[3].pk, jobs[4].pk])
    for order in (("-updated_at", "-pk"), ("attempts", "-pk"), ("user_uid",)):
        ordered = chosen.order_by(*order)
        expected = list(ordered.values(*selectors._JOB_ROW))
        with django_assert_num_queries(1):
            rows = selectors.job_list_rows(ordered)
        assert rows == expected and len(rows) == 3
    # Another queryset (joined): the ORM's values.
    joined = ProvisioningJob.objects.filter(request__item=fulfilled.item).order_by("-pk")
    assert list(selectors.job_list_rows(joined)) == list(joined.values(*selectors._JOB_ROW))


def test_the_jobs_page_keeps_its_count_and_ids_compiled_per_filters(
    org, fulfilled, client, monkeypatch
):
    """The jobs page's count and page ids are compiled once per process, filters and
    order (the pager's ``parts_key``): the same list shown again builds nothing; another
    filter or sort builds its own; a new job shows at once; a form in error shows none."""
    from itportal import inputs
    from provisioning.views import JobListView

    inputs._KEPT_UNIONS.clear()
    built = []
    page_parts = JobListView.page_parts

    def counted(view, queryset):
        built.append(view.request.get_full_path())
        return page_parts(view, queryset)

    monkeypatch.setattr(JobListView, "page_parts", counted)
    jobs = _jobs(fulfilled, 7)
    client.force_login(org.admin.user)

    def shown(query=""):
        response = client.get(f"/provisionierung/auftraege/{query}")
        assert response.status_code == 200
        table = response.context["table"]
        return table.paginator.count, [row["id"] for row in table.page.object_list.data]

    newest = [job.pk for job in reversed(jobs)]
    assert shown() == (7, newest) and len(built) == 1
    assert shown() == (7, newest) and len(built) == 1
    # Bound (a query string), the same filters: another page of the same union.
    assert shown("?per_page=3&page=2") == (7, newest[3:6]) and len(built) == 2
    assert shown("?per_page=3&page=3") == (7, newest[6:]) and len(built) == 2
    failed = [job.pk for job in reversed(jobs) if job.position % 3 == 0]
    assert shown("?state=failed") == (3, failed) and len(built) == 3
    assert shown("?state=failed") == (3, failed) and len(built) == 3
    by_uid = sorted(jobs, key=lambda job: job.user_uid, reverse=True)
    assert shown("?sort=-user_uid") == (7, [job.pk for job in by_uid]) and len(built) == 4
    assert shown("?q=uid5") == (1, [jobs[5].pk])
    newer = _jobs(fulfilled, 1)
    assert shown() == (8, [newer[0].pk, *newest])
    assert shown("?state=failed") == (4, [newer[0].pk, *failed])
    assert shown("?state=nonsense") == (0, [])  # a form in error
