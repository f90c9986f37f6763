"""Requests that say what happens next: badges, progress, tabs, folded filters, the queue,
ordering again with the answers filled in."""

import re

import pytest

from catalogue.choices import FieldType
from requests_app import services
from requests_app.choices import RequestState
from tests.factories import FormFieldFactory

pytestmark = pytest.mark.django_db


def approve(req, org):
    services.request_approve(request_id=req.pk, user=org.manager.user)


def test_my_requests_open_by_default_closed_on_their_tab(client, org, manual_item, place_order):
    open_req = place_order(manual_item, org.alice.user)
    closed = place_order(manual_item, org.alice.user)
    services.request_cancel(request_id=closed.pk, user=org.alice.user)
    client.force_login(org.alice.user)
    content = client.get("/antraege/").content.decode()
    assert f'href="/antraege/{open_req.pk}/"' in content
    assert f'href="/antraege/{closed.pk}/"' not in content
    assert 'aria-current="page">Open</a>' in content
    assert '<details class="filter-box">' in content  # filters folded away
    assert "status-badge is-waiting" in content
    content = client.get("/antraege/?tab=closed").content.decode()
    assert f'href="/antraege/{closed.pk}/"' in content
    assert f'href="/antraege/{open_req.pk}/"' not in content
    assert 'name="tab" value="closed"' in content  # the filters keep the tab
    content = client.get("/antraege/?tab=closed&q=zzz").content.decode()
    assert '<details class="filter-box" open>' in content


def test_the_kept_filter_form_follows_its_options_and_data(client, org, manual_item):
    """The list's filter form is kept per process (itportal/templatetags/portal_forms.py)
    for its data and options: the same markup as rendered afresh, a renamed category at
    once, a chosen option as selected, a bad one as an error, the same queries either way."""
    from django.db import connection
    from django.template.loader import get_template
    from django.test.utils import CaptureQueriesContext

    from itportal.templatetags.portal_forms import FILTER_MEMO

    category = manual_item.category
    client.force_login(org.alice.user)
    FILTER_MEMO.clear()

    def page(query=""):
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/antraege/" + query)
        assert response.status_code == 200
        # The CSRF token is masked anew for every response.
        content = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
        return content, len(queries)

    first, fresh_queries = page()
    assert f'<option value="{category.pk}">{category.name}</option>' in first
    again, kept_queries = page()
    assert again == first and len(FILTER_MEMO) == 1 and kept_queries == fresh_queries
    response = client.get("/antraege/")
    rendered = get_template("portal/filter_fields.html").render(
        {"filter": response.context["filter"]}
    )
    assert rendered in first  # what the template renders, unkept
    category.name = "Umbenannt"
    category.save()
    assert f'<option value="{category.pk}">Umbenannt</option>' in page()[0]
    chosen = page(f"?category={category.pk}")[0]
    assert f'<option value="{category.pk}" selected>Umbenannt</option>' in chosen
    bad = page("?category=999999")[0]
    assert 'id="id_category_error"' in bad and 'id="id_category_error"' not in chosen
    FILTER_MEMO.clear()


def test_rows_stack_as_cards_with_labels(client, org, manual_item, place_order):
    place_order(manual_item, org.alice.user)
    client.force_login(org.alice.user)
    content = client.get("/antraege/").content.decode()
    assert 'class="table stack row-links"' in content
    assert 'data-label="State"' in content


def test_queue_tabs_age_due_and_newest_first(client, org, manual_item, place_order):
    first = place_order(manual_item, org.alice.user)
    second = place_order(manual_item, org.bob.user)
    approve(first, org)
    approve(second, org)
    services.request_take(request_id=first.pk, user=org.fulfiller.user)
    client.force_login(org.fulfiller.user)
    content = client.get("/antraege/bearbeitung/").content.decode()
    assert content.index(f'href="/antraege/{second.pk}/"') < content.index(
        f'href="/antraege/{first.pk}/"'
    )
    assert "Waiting since" in content and ">Due<" in content
    assert " ago</time>" in content
    mine = client.get("/antraege/bearbeitung/?tab=mine").content.decode()
    assert f'href="/antraege/{first.pk}/"' in mine
    assert f'href="/antraege/{second.pk}/"' not in mine
    waiting = client.get("/antraege/bearbeitung/?tab=waiting").content.decode()
    assert f'href="/antraege/{second.pk}/"' in waiting
    assert f'href="/antraege/{first.pk}/"' not in waiting


def test_the_queue_keeps_its_count_and_ids_compiled_per_list_not_their_rows(
    client, org, manual_item, place_order, monkeypatch
):
    """The queue's count and page ids are compiled once per process and list (the pager's
    ``parts_key``: user, groups, tab, filters): the same list shown again builds nothing;
    a new request, another tab or filter or a change of groups shows at once; a user in no
    group and a form in error see no rows."""
    from itportal import inputs
    from requests_app.views import QueueView

    inputs._KEPT_UNIONS.clear()
    built = []
    page_parts = QueueView.page_parts

    def counted(view, queryset):
        built.append(view.request.get_full_path())
        return page_parts(view, queryset)

    monkeypatch.setattr(QueueView, "page_parts", counted)
    orders = [place_order(manual_item, org.alice.user) for _ in range(4)]
    for order in orders[:3]:
        approve(order, org)
    services.request_take(request_id=orders[0].pk, user=org.fulfiller.user)

    def shown(who, query=""):
        client.force_login(who.user)
        response = client.get(f"/antraege/bearbeitung/{query}")
        assert response.status_code == 200
        table = response.context["table"]
        return table.paginator.count, [row["id"] for row in table.page.object_list.data]

    newest_first = [orders[2].pk, orders[1].pk, orders[0].pk]
    assert shown(org.fulfiller) == (3, newest_first) and len(built) == 1
    assert shown(org.fulfiller) == (3, newest_first) and len(built) == 1
    # A query string of none of the filters' fields filters nothing: the same list.
    assert shown(org.fulfiller, "?per_page=2&page=2") == (3, [orders[0].pk]) and len(built) == 1
    assert shown(org.fulfiller, "?per_page=2&q=") == (3, newest_first[:2]) and len(built) == 2
    assert shown(org.fulfiller, "?tab=mine") == (1, [orders[0].pk]) and len(built) == 3
    assert shown(org.admin) == (3, newest_first) and len(built) == 4
    approve(orders[3], org)
    assert shown(org.fulfiller) == (4, [orders[3].pk, *newest_first]) and len(built) == 4
    assert shown(org.fulfiller, "?state=approved") == (3, [orders[3].pk, *newest_first[:2]])
    # Out of the group: no rows, not the list kept for the group.
    org.fulfiller.user.groups.clear()
    assert shown(org.fulfiller) == (0, [])
    assert shown(org.fulfiller, "?tab=mine") == (0, [])
    org.fulfiller.user.groups.add(org.service_desk)
    assert shown(org.fulfiller, "?created_after=1800-01-01") == (0, [])  # a form in error


def test_detail_shows_progress_and_who_is_on_it(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    client.force_login(org.alice.user)
    content = client.get(f"/antraege/{req.pk}/").content.decode()
    assert 'class="progress-line"' in content
    assert f"Approval by {org.manager.user.get_full_name()}" in content
    assert 'aria-current="step"' in content
    assert "Fulfilment by Service Desk" in content
    assert "Order again" not in content  # still open


def test_rejected_request_is_ordered_again_with_its_answers(client, org, manual_item, place_order):
    FormFieldFactory(item=manual_item, key="room", label="Raum", field_type=FieldType.TEXT)
    manual_item.refresh_from_db()
    req = place_order(
        manual_item, org.alice.user, answers={"room": "A 1.23"}, justification="Neuer Platz"
    )
    services.request_reject(request_id=req.pk, user=org.manager.user, comment="Budget")
    req.refresh_from_db()
    assert req.state == RequestState.REJECTED
    client.force_login(org.alice.user)
    content = client.get(f"/antraege/{req.pk}/").content.decode()
    url = f"/leistung/{manual_item.slug}/bestellen/?wie={req.pk}"
    assert f'href="{url}"' in content
    form = client.get(url).content.decode()
    assert 'value="A 1.23"' in form
    assert "Neuer Platz" in form
    # Someone else's request, or nonsense, fills in nothing.
    client.force_login(org.outsider.user)
    other = client.get(url)
    assert other.status_code in (200, 403, 404)
    assert "A 1.23" not in other.content.decode()
    client.force_login(org.alice.user)
    assert client.get(f"/leistung/{manual_item.slug}/bestellen/?wie=x²").status_code == 200


def test_list_pages_have_page_numbers(client, org, manual_item, place_order):
    for _ in range(27):
        place_order(manual_item, org.alice.user)
    client.force_login(org.alice.user)
    content = client.get("/antraege/?page=2").content.decode()
    assert '<span class="visually-hidden">Page </span>1</a>' in content
    assert 'aria-current="page"><span class="visually-hidden">Page </span>2</a>' in content


def test_an_acknowledgement_must_be_accepted(client, org, manual_item):
    FormFieldFactory(
        item=manual_item,
        key="dv",
        label="Die Dienstvereinbarung ist bekannt.",
        field_type=FieldType.ACKNOWLEDGEMENT,
        required=False,  # whatever the editor says: an acknowledgement is always required
    )
    manual_item.refresh_from_db()
    client.force_login(org.alice.user)
    url = f"/leistung/{manual_item.slug}/bestellen/"
    form = client.get(url).content.decode()
    assert 'type="checkbox" name="f_dv"' in form
    refused = client.post(url, {"item_version": manual_item.version})
    assert refused.status_code == 400
    assert "Please confirm this statement to order." in refused.content.decode()
    accepted = client.post(url, {"item_version": manual_item.version, "f_dv": "on"})
    assert accepted.status_code == 302
