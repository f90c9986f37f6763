"""The request lists read as values ("my requests", the fulfilment queue) show what the
model rows showed: every cell of every row, edge cases included."""

import datetime
import html
import re
from urllib.parse import parse_qs, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.template import Context
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timesince, timezone, translation

from itportal.templatetags.portal_tables import table_rows
from requests_app.choices import HoldReason, RequestState
from requests_app.models import ServiceRequest
from requests_app.selectors import list_rows
from requests_app.tables import MyRequestTable, QueueTable, RequestTable

pytestmark = pytest.mark.django_db

CELL = re.compile(r'<td data-label="([^"]*)" >(.*?)</td>', re.S)


def rendered(table_class, rows, **kwargs) -> str:
    table = table_class(rows, order_by=(), **kwargs)
    table.request = RequestFactory().get("/")
    return str(table_rows(Context({"table": table}), table))


def cells(html: str) -> list[dict]:
    """Each row's cells by column label."""
    return [dict(CELL.findall(row)) for row in html.split("</tr>")[:-1]]


@pytest.fixture
def history(monkeypatch):
    call_command("seed_demo", verbosity=0)
    call_command("seed_history", count=80, months=2, verbosity=0)
    # "Waiting since ... ago": both renders at one instant.
    now = timezone.now()
    monkeypatch.setattr(
        "requests_app.tables.age",
        lambda value, *args, **kwargs: timesince.timesince(value, now=now),
    )
    requests = ServiceRequest.objects.order_by("-pk")
    first, second, third = requests[:3]
    # A snapshot without a name (the item's current one is shown), a person without a
    # last name (the cell stays empty, as the column's value is the last name).
    ServiceRequest.objects.filter(pk=first.pk).update(item_snapshot={"fields": []})
    get_user_model().objects.filter(pk=second.beneficiary.user_id).update(last_name="")
    get_user_model().objects.filter(pk=third.requester_id).update(first_name="", last_name="")
    return requests


@pytest.mark.parametrize("language", ["de", "en"])
def test_my_requests_as_values_render_the_model_rows(history, language):
    with translation.override(language):
        expected = rendered(RequestTable, list(history), exclude=("requester",))
        html = rendered(MyRequestTable, list_rows(history, MyRequestTable.row_columns))
    assert html == expected
    rows = cells(html)
    assert len(rows) == history.count()
    assert any(row[("Für" if language == "de" else "For")] == "—" for row in rows)


@pytest.fixture
def queue(history):
    """The queue's rows in every shape its cells take."""
    fulfiller = get_user_model().objects.get(username="itadmin")
    queue = ServiceRequest.objects.exclude(approved_at=None).order_by("-pk")
    today = timezone.localdate()
    on_hold, overdue, due_later, no_due, taken = queue[:5]
    ServiceRequest.objects.filter(pk=on_hold.pk).update(
        state=RequestState.IN_FULFILMENT,
        assignee=fulfiller,
        hold_reason=HoldReason.SUPPLIER,
        fulfilment_due_on=today - datetime.timedelta(days=3),
    )
    ServiceRequest.objects.filter(pk=overdue.pk).update(
        state=RequestState.APPROVED,
        assignee=None,
        hold_reason="",
        fulfilment_due_on=today - datetime.timedelta(days=1),
    )
    ServiceRequest.objects.filter(pk=due_later.pk).update(hold_reason="", fulfilment_due_on=today)
    ServiceRequest.objects.filter(pk=no_due.pk).update(hold_reason="", fulfilment_due_on=None)
    nameless = get_user_model().objects.create(username="ohne.namen")
    ServiceRequest.objects.filter(pk=taken.pk).update(
        state=RequestState.IN_FULFILMENT, assignee=nameless, hold_reason=""
    )
    cases = {
        "hold": on_hold,
        "overdue": overdue,
        "later": due_later,
        "none": no_due,
        "taken": taken,
    }
    return queue, cases, fulfiller


def test_the_queue_as_values_renders_every_cell(queue):
    queue, cases, fulfiller = queue
    started = timezone.now()
    with translation.override("de"):
        common = cells(rendered(RequestTable, list(queue)))
        html = rendered(QueueTable, list_rows(queue, QueueTable.row_columns))
    ended = timezone.now()  # a minute may roll over while it renders on a loaded machine
    rows = cells(html)
    assert len(rows) == len(common) == queue.count()
    by_number = {}
    for row, model_row, service_request in zip(rows, common, queue, strict=True):
        # The columns both tables have: the same cells.
        for label in ("Nr.", "Leistung", "Für", "Beantragt von"):
            assert row[label] == model_row[label], label
        assert row["Warteschlange"] == service_request.fulfilment_group.name
        approved = service_request.approved_at
        with translation.override("de"):
            ages = {timesince.timesince(approved, now=moment) for moment in (started, ended)}
        assert row["Wartet seit"] in {
            f'<time datetime="{approved.isoformat()}">vor {age}</time>' for age in ages
        }

        by_number[service_request.pk] = row
    today = timezone.localdate()
    hold = by_number[cases["hold"].pk]
    assert hold["Status"] == (
        '<span class="status-badge is-info">In Bearbeitung</span> '
        '<span class="status-badge is-waiting">Wartet auf Lieferant</span>'
    )
    # On hold the clock stands still: paused, not overdue.
    past = (today - datetime.timedelta(days=3)).strftime("%d.%m.%Y")
    assert hold["Fällig"] == f"{past} (pausiert)"
    assert hold["Bearbeitet von"] == fulfiller.get_full_name()
    overdue = by_number[cases["overdue"].pk]
    yesterday = (today - datetime.timedelta(days=1)).strftime("%d.%m.%Y")
    assert overdue["Fällig"] == f'<span class="overdue">{yesterday} (überfällig)</span>'
    assert overdue["Status"] == '<span class="status-badge is-info">Genehmigt</span>'
    assert overdue["Bearbeitet von"] == "—"
    assert by_number[cases["later"].pk]["Fällig"] == today.strftime("%d.%m.%Y")
    assert by_number[cases["none"].pk]["Fällig"] == "—"
    # Like the model rows: the column's value is the last name; without one, "—".
    assert by_number[cases["taken"].pk]["Bearbeitet von"] == "—"


def test_queue_rows_are_kept_until_their_values_or_what_the_clock_changes_change(monkeypatch):
    """The queue's rows are kept per process (``rows_are_values``) under their values and
    what the clock changes in them (``row_clock``: the age's text, the overdue mark): a row
    read again within the same minute of its age renders from the memo, one whose age or
    due state moved renders anew, each as without the memo."""
    from itportal.templatetags.portal_tables import ROW_MEMO

    approved = datetime.datetime(2026, 12, 7, 9, 30, 15, tzinfo=datetime.UTC)
    row = {
        "id": 7,
        "item_name": "Notebook <b>",
        "beneficiary_first_name": "Anna",
        "beneficiary_last_name": "Schmidt & Co",
        "beneficiary_username": "anna",
        "requester_first_name": "",
        "requester_last_name": "",
        "requester_username": "bo",
        "state": "approved",
        "assignee_first_name": None,
        "assignee_last_name": None,
        "assignee_username": None,
        "fulfilment_group_name": "IT-Service",
        "approved_at": approved,
        "fulfilment_due_on": datetime.date(2026, 12, 8),
        "hold_reason": "",
    }
    assert set(row) == set(QueueTable.row_columns)

    def shown(rows, now, *, kept=True):
        monkeypatch.setattr(timezone, "now", lambda: now)
        table = QueueTable(rows, order_by=())
        table.rows_are_values = kept
        table.request = RequestFactory().get("/")
        return str(table_rows(Context({"table": table}), table))

    def check(rows, now) -> str:
        html = shown(rows, now)
        assert html == shown(rows, now, kept=False)
        return html

    ROW_MEMO.clear()
    with translation.override("de"):
        soon = approved + datetime.timedelta(minutes=5)
        first = check([row], soon)
        assert "vor 5\xa0Minuten" in first and len(ROW_MEMO) == 1
        # Later within the same minute of the row's age: the kept markup.
        assert check([row], soon + datetime.timedelta(seconds=30)) == first
        assert len(ROW_MEMO) == 1
        later = check([row], soon + datetime.timedelta(hours=2))
        assert "vor 2\xa0Stunden, 5\xa0Minuten" in later and len(ROW_MEMO) == 2
        assert "überfällig" not in later
        # The day after the due date (Berlin's): the same values, now overdue.
        overdue = check([row], datetime.datetime(2026, 12, 8, 23, 30, tzinfo=datetime.UTC))
        assert '<span class="overdue">08.12.2026 (überfällig)</span>' in overdue
        # On hold it is paused, whatever the day.
        held = check(
            [{**row, "hold_reason": HoldReason.SUPPLIER.value}],
            datetime.datetime(2026, 12, 8, 23, 30, tzinfo=datetime.UTC),
        )
        assert "08.12.2026 (pausiert)" in held and "überfällig" not in held
        # A changed value: a new key.
        taken = {**row, "assignee_first_name": "Ida", "assignee_last_name": "Kern"}
        assert "Ida Kern" in check([taken], soon)
    with translation.override("en"):
        assert "5\xa0minutes ago" in check([row], soon)
    ROW_MEMO.clear()


def test_the_queue_pages_read_values_and_sort_by_the_model_paths(client, queue):
    _queue, _cases, admin = queue
    client.force_login(admin)
    for sort in ("item", "-beneficiary", "requester", "fulfilment_group", "assignee", "due"):
        response = client.get(f"/antraege/bearbeitung/?sort={sort}&tab=all")
        assert response.status_code == 200, sort
        rows = response.context["table"].page.object_list.data
        assert all(isinstance(row, dict) for row in rows), sort
    response = client.get("/antraege/bearbeitung/?sort=due&tab=all")
    numbers = [row["id"] for row in response.context["table"].page.object_list.data]
    due = dict(ServiceRequest.objects.filter(pk__in=numbers).values_list("pk", "fulfilment_due_on"))
    dates = [due[number] for number in numbers]
    known = [d for d in dates if d is not None]
    assert known == sorted(known)
    assert dates == known + [None] * (len(dates) - len(known))  # nulls last, as PostgreSQL


@pytest.mark.parametrize("number", [1, 2, 4, "x", 99])
def test_the_pager_reads_the_pages_rows_through_read(history, number):
    """Counting and choosing the page use the model rows' query (no joins for what the rows
    show); the page's rows come through ``read``, the same rows as without it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from itportal.inputs import BoundedPaginator

    ordered = history.order_by("item__name", "-id")
    plain = BoundedPaginator(ordered, 25)
    expected = [r.pk for r in plain.get_page(number).object_list]
    read = BoundedPaginator(ordered, 25, read=lambda rows: list_rows(rows, ("id", "item_name")))
    with CaptureQueriesContext(connection) as queries:
        page = read.get_page(number)
        rows = list(page.object_list)
    assert [row["id"] for row in rows] == expected
    assert all(set(row) == {"id", "item_name"} for row in rows)
    assert page.number == plain.get_page(number).number
    count, chosen = (q["sql"] for q in queries.captured_queries)
    assert "COUNT(*)" in count and "JOIN" not in count
    assert chosen.count(" IN (SELECT") == 1 and " LIMIT " in chosen


def test_the_pager_without_rows_reads_an_empty_page():
    from itportal.inputs import BoundedPaginator

    pager = BoundedPaginator(ServiceRequest.objects.none(), 25, read=lambda rows: rows.values())
    assert list(pager.get_page(1).object_list) == []
    assert pager.count == 0


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?tab=all",
        "?tab=closed&sort=item",
        "?state=fulfilled&sort=-beneficiary",
        "?tab=all&page=2",
        "?tab=all&page=3&sort=cost_centre",
        "?tab=all&q=a",
        "?state=nonsense",
        "?tab=all&page=999",
        "?tab=all&page=abc",
        "?tab=all&page=-1",
        "?tab=all&per_page=7&page=6",
        "?tab=all&sort=created_at&page=2",
        "?tab=open&sort=-item",
        "?tab=all&created_after=2999-12-31",
        "?page=999",
        "?q=a&per_page=7&page=2",
        "?tab=all&q=a&page=999",
        "?q=a&sort=-created_at",
        "?q=a&sort=item",
        "?tab=open&q=Zebrafink",
    ],
)
def test_my_requests_in_two_parts_list_the_same_rows(client, history, query, monkeypatch):
    """The page counts and picks its rows from the requests placed by the user and those
    placed for them (UNION, each along its index): the same rows and count as the OR of
    both, the requests someone placed for themselves once."""
    from itportal.inputs import BoundedPaginator
    from requests_app import selectors
    from requests_app.views import MyRequestsView

    monkeypatch.setattr(BoundedPaginator, "count_limit", 40)
    # 45 requests of one person: placed for themselves, for others, and by others for them.
    user = get_user_model().objects.get(username="mitarbeiterin")
    rows = list(history.exclude(requester=user).exclude(beneficiary__user=user)[:45])
    others = {r.pk: (r.requester_id, r.beneficiary_id) for r in rows}
    for index, service_request in enumerate(rows):
        requester, beneficiary = others[service_request.pk]
        if index % 3 != 2:
            requester = user.pk
        if index % 3 != 1:
            beneficiary = user.employee.pk
        ServiceRequest.objects.filter(pk=service_request.pk).update(
            requester_id=requester, beneficiary_id=beneficiary
        )
    mine = selectors.requests_of(user)
    assert mine.filter(requester=user, beneficiary__user=user).exists()
    assert mine.exclude(requester=user).exists() and mine.exclude(beneficiary__user=user).exists()
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/antraege/{query}")
    assert response.status_code == 200
    table = response.context["table"]
    # The count and the page's ids from the parts (not for a form in error: no rows; no
    # page to read without rows). For a search or the open requests in the rows' own
    # order, the page's ids come with the count (PartsUnion.count_and_ids), the page
    # past the end the last one's; not beyond the bound, where a part's rows were cut.
    asked = parse_qs(query.lstrip("?"))
    tab = asked.get("tab", ["all" if "q" in asked or "state" in asked else "open"])[0]
    own_order = all("__" not in path for path in SORT_KEYS[asked.get("sort", [""])[0]])
    with_count = "nonsense" not in query and ("q" in asked or tab == "open") and own_order
    combined = [q for q in queries.captured_queries if "AS MATERIALIZED" in q["sql"]]
    assert len(combined) == with_count
    # Otherwise the count sums the parts' counts (PartsUnion.count), the page's ids come
    # from their union.
    unions = sum(" UNION " in q["sql"] for q in queries.captured_queries)
    summed = sum(q["sql"].startswith("SELECT (SELECT COUNT(*)") for q in queries.captured_queries)
    assert summed == (0 if "nonsense" in query or with_count else 1)
    ids_apart = table.paginator.count and not (with_count and table.paginator.count_is_exact)
    assert unions == with_count + bool(ids_apart)
    # Sorted by the rows' own columns or those of the rows their keys lead to (the
    # service's name), the page's ids are merged from the parts' narrow rows with those
    # columns (PartsUnion.ids), not chosen by id among them and sorted again.
    merged = any("ORDER BY k0" in q["sql"] for q in queries.captured_queries)
    assert merged == (bool(table.paginator.count) or with_count)
    shown = [row["id"] for row in table.page.object_list.data]
    monkeypatch.setattr(MyRequestsView, "page_parts", None)  # the OR, as before
    response = client.get(f"/antraege/{query}")
    expected = response.context["table"]
    assert table.paginator.count == expected.paginator.count
    assert table.paginator.count_is_exact == expected.paginator.count_is_exact
    assert table.page.number == expected.page.number
    same_order = [row["id"] for row in expected.page.object_list.data]
    # Rows with equal sort keys come in either order (as before): compare the keys.
    paths = SORT_KEYS[parse_qs(query.lstrip("?")).get("sort", [""])[0]]
    keys = {
        pk: rest
        for pk, *rest in ServiceRequest.objects.filter(pk__in=shown + same_order).values_list(
            "pk", *paths
        )
    }
    assert [keys[pk] for pk in shown] == [keys[pk] for pk in same_order]
    if "sort=" not in query:
        assert shown == same_order


SORT_KEYS = {
    "": ("created_at",),
    "created_at": ("created_at",),
    "-created_at": ("created_at",),
    "item": ("item__name",),
    "-item": ("item__name",),
    "-beneficiary": ("beneficiary__user__last_name", "beneficiary__user__first_name"),
    "cost_centre": ("cost_centre__code",),
}


@pytest.mark.parametrize("sort", ["item", "-item", "state", "", "cost_centre"])
def test_sorted_pages_show_each_request_once(client, history, sort):
    """Sorted by a column with ties (many requests of one service), the pages together show
    every request of the list exactly once: every order ends with the id."""
    user = get_user_model().objects.get(username="mitarbeiterin")
    ServiceRequest.objects.filter(pk__in=list(history.values_list("pk", flat=True)[:40])).update(
        requester=user
    )
    client.force_login(user)
    expected = set(
        ServiceRequest.objects.filter(requester=user).values_list("pk", flat=True)
    ) | set(ServiceRequest.objects.filter(beneficiary__user=user).values_list("pk", flat=True))
    seen = []
    for number in range(1, 20):
        response = client.get(f"/antraege/?tab=all&sort={sort}&per_page=7&page={number}")
        table = response.context["table"]
        assert table.data.data.query.order_by[-1] == "-pk"
        if table.page.number != number:
            break
        seen += [row["id"] for row in table.page.object_list.data]
    assert len(seen) == len(set(seen)) and set(seen) == expected


NEXT_LINK = re.compile(r'href="([^"]*)" rel="next"')


@pytest.mark.parametrize("sort", ["", "created_at", "-state", "item"])
def test_next_links_read_the_pages_the_numbers_read(client, history, sort):
    """The "next page" link of "my requests" says where its page ended where the list is
    sorted by the rows' own columns, and the next page is read from there (keyset, both
    parts along their indexes): following the links shows the numbered pages' rows. A
    token kept from another page or sort is not used."""
    user = get_user_model().objects.get(username="mitarbeiterin")
    ServiceRequest.objects.filter(pk__in=list(history.values_list("pk", flat=True)[:40])).update(
        requester=user
    )
    # Ties on the first key (one order date for several requests): the id decides.
    tied = list(ServiceRequest.objects.filter(requester=user).values_list("pk", flat=True)[:9])
    ServiceRequest.objects.filter(pk__in=tied).update(created_at=timezone.now())
    client.force_login(user)
    url = "/antraege/?tab=all&per_page=7" + (f"&sort={sort}" if sort else "")
    numbered = []
    for number in range(1, 20):
        table = client.get(f"{url}&page={number}").context["table"]
        if table.page.number != number:
            break
        numbered.append([row["id"] for row in table.page.object_list.data])
    assert len(numbered) > 3
    followed, links = [], []
    response = client.get(url)
    while True:
        followed.append([row["id"] for row in response.context["table"].page.object_list.data])
        found = NEXT_LINK.search(response.content.decode())
        if found is None:
            break
        link = html.unescape(found.group(1))
        links.append(link)
        assert ("after=" in link) == (sort != "item")
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/antraege/{link}")
        keyset = [q["sql"] for q in queries.captured_queries if "p.k0" in q["sql"]]
        assert len(keyset) == (0 if sort == "item" else 1)
    assert followed == numbered
    # The token of page 3 on page 4, or under another sort: the numbered page's rows.
    after = parse_qs(links[1].lstrip("?"))["after"][0] if sort != "item" else "x"
    after = urlencode({"after": after})
    table = client.get(f"{url}&page=4&{after}").context["table"]
    assert [row["id"] for row in table.page.object_list.data] == numbered[3]
    other = client.get(f"/antraege/?tab=all&per_page=7&sort=id&page=3&{after}")
    expected = client.get("/antraege/?tab=all&per_page=7&sort=id&page=3")
    assert [r["id"] for r in other.context["table"].page.object_list.data] == [
        r["id"] for r in expected.context["table"].page.object_list.data
    ]


@pytest.mark.parametrize(
    "after",
    [
        "",
        "abc",
        "2~00000000~2026-01-01T00:00:00+00:00~1",
        "2~{mark}~not a date~1",
        "2~{mark}~2026-01-01T00:00:00+00:00~x",
        "2~{mark}~2026-01-01T00:00:00+00:00",
        "2~{mark}~0001-01-01T00:00:00+00:00~1",
        "2~{mark}~2026-01-01T00:00:00+00:00~1~1",
        "2~{mark}~2026-01-01T00:00:00+00:00~" + "9" * 300,
        "2~{mark}~2026-01-01T00:00:00\x00~1",
        "2~{mark}~2026-01-01T00:00:00~1",
        "2~{mark}~2026-01-01T00:00:00+00:00~" + "9" * 40,
    ],
)
def test_a_bad_after_token_is_not_used(after):
    from itportal.inputs import _order_mark, keyset_values

    order = ["-created_at", "-pk"]
    token = after.format(mark=_order_mark(order))
    assert keyset_values(token, 2, order, ServiceRequest) is None
    good = f"2~{_order_mark(order)}~2026-01-01T00:00:00+00:00~1"
    values = keyset_values(good, 2, order, ServiceRequest)
    assert values[1] == 1 and values[0].year == 2026
    assert keyset_values(good, 3, order, ServiceRequest) is None  # made for page 2
    assert keyset_values(good, 2, ["created_at", "-pk"], ServiceRequest) is None


TASK_ROW = re.compile(r"<tr>\s*" + r"<td>(.*?)</td>\s*" * 4, re.S)


def test_the_queues_open_tasks_as_values_show_what_the_tasks_showed(client, history):
    """The tasks above the queue, read as values: each cell as from the task, its request,
    person and group (a snapshot without a name shows the item's current one)."""
    from django.template.defaultfilters import date as date_filter
    from django.utils.html import escape

    from requests_app import services
    from requests_app.models import FulfilmentTask

    # Only this test's tasks: not the history's (revoked manual entitlements).
    FulfilmentTask.objects.all().delete()

    first, second = history[:2]  # the first's snapshot has no name
    collect = services.task_open(request_id=first.pk, kind="collect", reason="Ausgetreten")
    remove = services.task_open(request_id=second.pk, kind="remove_access")
    client.force_login(get_user_model().objects.get(username="itadmin"))
    page = client.get("/antraege/bearbeitung/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    tasks = page.split('id="tasks"', 1)[1].split("</tbody>", 1)[0]
    rows = TASK_ROW.findall(tasks)
    assert len(rows) == 2
    for task, (what, person, request, opened) in zip((collect, remove), rows, strict=True):
        task = FulfilmentTask.objects.get(pk=task.pk)
        item = escape(task.request.item_name)
        if task.kind == "collect":
            assert what == f"{item} einsammeln<br><small>Ausgetreten</small>"
        else:
            assert what == f"{item} von Hand entfernen"
        assert person == escape(
            f"{task.person.display_name} ({task.person.personnel_number}), "
            f"{task.person.department.code}"
        )
        assert request == (
            f'<a href="/antraege/{task.request_id}/">Antrag Nr. {task.request_id}</a>'
            f"<br><small>{escape(task.fulfilment_group.name)}</small>"
        )
        with translation.override("de"):
            # The template's date filter shows local time; called directly it does not
            # convert (between 23:00 and 24:00 UTC the days differ).
            local = timezone.localtime(task.created_at)
            assert opened == date_filter(local, "SHORT_DATE_FORMAT")
        assert f'action="/antraege/bearbeitung/aufgaben/{task.pk}/erledigt/"' in tasks
    assert first.item.name in rows[0][0]


def test_the_queues_open_tasks_are_read_by_a_statement_kept_per_set_of_groups(history):
    """open_task_rows runs a statement compiled once per set of groups: the same rows as
    the ORM's query of the open tasks, for IT admins (all groups) and for a fulfiller (their
    groups only), each user's own after another's."""
    from django.contrib.auth.models import Group

    from requests_app import selectors, services
    from requests_app.models import FulfilmentTask

    # Only this test's tasks: not the history's (revoked manual entitlements).
    FulfilmentTask.objects.all().delete()

    tasks = [
        services.task_open(request_id=r.pk, kind="collect", reason=f"Grund {index}")
        for index, r in enumerate(history[:6])
    ]
    FulfilmentTask.objects.filter(pk=tasks[0].pk).update(
        state=FulfilmentTask.State.DONE, done_at=timezone.now()
    )
    groups = sorted({t.fulfilment_group_id for t in tasks[1:]})
    fulfiller = get_user_model().objects.create(username="erfueller")
    fulfiller.groups.add(Group.objects.get(pk=groups[0]))
    nobody = get_user_model().objects.create(username="ohne.gruppe")
    admin = get_user_model().objects.get(username="itadmin")
    columns = selectors.TASK_ROW_COLUMNS
    own = [name for name, column in columns.items() if column is None]
    joined = {name: column for name, column in columns.items() if column is not None}
    for user in (admin, fulfiller, nobody, admin):
        expected = list(selectors.open_tasks(user).values(*own, **joined)[:4])
        rows = selectors.open_task_rows(user, 4)
        assert rows == expected
        assert all(list(row) == list(expected[0]) for row in rows)
    assert len(selectors.open_task_rows(admin, 10)) == 5
    assert {row["fulfilment_group_name"] for row in selectors.open_task_rows(fulfiller, 10)} == {
        Group.objects.get(pk=groups[0]).name
    }
    assert selectors.open_task_rows(nobody, 10) == []


@pytest.mark.parametrize(
    "order",
    [
        ("-approved_at", "-pk"),
        ("item__name", "-pk"),
        ("-beneficiary__user__last_name", "beneficiary__user__first_name", "-pk"),
        ("assignee__last_name", "-pk"),
        ("fulfilment_due_on", "-pk"),
    ],
)
def test_page_rows_read_what_list_rows_read(history, order):
    """A page's rows by the statement compiled once per columns and order: the same dicts
    (keys, values, order) as list_rows, for the ids a subquery picks; a query it cannot
    pick by id is read as list_rows."""
    from requests_app import selectors

    columns = QueueTable.row_columns
    listed = ServiceRequest.objects.exclude(approved_at=None).order_by(*order)
    for bottom in (0, 7):
        ids = listed.values("pk")[bottom : bottom + 9]
        page = ServiceRequest.objects.filter(pk__in=ids).order_by(*order)
        expected = list(list_rows(page, columns))
        assert len(expected) == 9
        hits = selectors._page_rows_statement.cache_info().hits
        rows = selectors.page_rows(page, columns)
        assert rows == expected
        assert all(list(row) == list(expected[0]) for row in rows)
        assert selectors._page_rows_statement.cache_info().hits > hits or bottom == 0
    # Rows it cannot pick by id (sliced, unordered): list_rows' queryset, read lazily.
    for rows in (listed[:5], listed.order_by()):
        read = selectors.page_rows(rows, columns)
        assert not isinstance(read, list) and list(read) == list(list_rows(rows, columns))


def test_my_requests_keep_the_parts_compiled_per_list_not_their_rows(client, history, monkeypatch):
    """The parts' union, compiled, is kept per user, tab, filters and order (the pager's
    ``parts_key``): the same list shown again builds no parts; another person's list,
    another tab or search get their own; a new request shows at once (the statement is
    kept, not its rows); sorted by the service's name, as well."""
    from itportal import inputs
    from requests_app import selectors
    from requests_app.views import MyRequestsView

    inputs._KEPT_UNIONS.clear()
    built = []
    page_parts = MyRequestsView.page_parts

    def counted(view, queryset):
        built.append(view.request.get_full_path())
        return page_parts(view, queryset)

    monkeypatch.setattr(MyRequestsView, "page_parts", counted)
    user = get_user_model().objects.get(username="mitarbeiterin")
    other = get_user_model().objects.get(username="vorgesetzter")
    rows = list(history.exclude(requester__in=[user, other]).values_list("pk", flat=True)[:30])
    ServiceRequest.objects.filter(pk__in=rows[:14]).update(requester=user)
    ServiceRequest.objects.filter(pk__in=rows[14:24]).update(beneficiary=other.employee)

    def shown(who, query):
        client.force_login(who)
        table = client.get(f"/antraege/{query}").context["table"]
        return table.paginator.count, [row["id"] for row in table.page.object_list.data]

    first = shown(user, "?tab=all&per_page=5&page=2")
    assert first == shown(user, "?tab=all&per_page=5&page=2") and len(built) == 1
    assert shown(user, "?tab=all&per_page=5")[1] == [
        r.pk for r in selectors.requests_of(user).order_by("-created_at", "-pk")[:5]
    ]
    assert len(built) == 1  # another page of the same list
    theirs = shown(other, "?tab=all&per_page=5&page=2")
    assert theirs[0] == selectors.requests_of(other).count() and len(built) == 2
    assert theirs != first
    shown(user, "?tab=closed&per_page=5&page=2")
    shown(user, "?tab=all&q=a&per_page=5&page=2")
    assert len(built) == 4
    newest = ServiceRequest.objects.get(pk=rows[-1])
    ServiceRequest.objects.filter(pk=newest.pk).update(requester=user, created_at=timezone.now())
    count, ids = shown(user, "?tab=all&per_page=5")
    assert count == first[0] + 1 and ids[0] == newest.pk and len(built) == 4
    by_item = shown(user, "?tab=all&sort=item&per_page=5&page=2")
    assert by_item == shown(user, "?tab=all&sort=item&per_page=5&page=2") and len(built) == 5
    names = list(
        selectors.requests_of(user).order_by("item__name", "-pk").values_list("pk", flat=True)
    )
    assert by_item == (count, names[5:10])


def test_page_rows_and_open_tasks_look_up_their_related_columns_by_subquery(db):
    """The page's rows and the open tasks join no table for the names they show but read
    each by a subquery per row: joined, PostgreSQL planned the seven tables' join order for
    3-6 ms on every view of the fulfilment queue at 1M requests (BENCHMARKS.md)."""
    from requests_app import selectors

    (head, _, _, _), layout = selectors._page_rows_statement(
        tuple(QueueTable.row_columns), ("-approved_at", "-pk")
    )
    assert f'FROM "{ServiceRequest._meta.db_table}" WHERE' in head
    # Each person's names by one subquery (an array), not one per name.
    people = [keys for keys in layout if isinstance(keys, tuple)]
    assert [keys[0].split("_")[0] for keys in people] == ["beneficiary", "requester", "assignee"]
    assert all(len(keys) == 3 for keys in people)
    assert head.count("(SELECT ARRAY[") == 3 and head.count('FROM "auth_user"') == 2
    sql, _ = selectors._open_task_rows_statement(None, 51)
    outer = sql.rsplit(") AS", 1)[1]  # after the last subquery column
    assert " JOIN " not in outer  # the request and the person by a subquery each, too
    assert sql.count("(SELECT ARRAY[") == 1  # the person's columns together
