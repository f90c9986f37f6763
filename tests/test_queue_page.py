"""The fulfilment queue's content kept whole ({% kept_queue_page %},
requests_app/templatetags/queue_page.py): the same markup as rendered afresh, each
response's own CSRF token, per viewer, and another page at once when a request, a task or
an option changes."""

import re

import pytest

from requests_app import services
from requests_app.templatetags.queue_page import PAGE_MEMO
from requests_app.templatetags.queue_tasks import SECTION_MEMO

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]*)"')


def page(client, url="/antraege/bearbeitung/"):
    response = client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    tokens = set(TOKEN.findall(content))
    assert len(tokens) <= 1  # the response's token in every form
    return TOKEN.sub("", content), next(iter(tokens), None)


def afresh(client, url="/antraege/bearbeitung/"):
    PAGE_MEMO.clear()
    SECTION_MEMO.clear()
    return page(client, url)[0]


def queue_item(org):
    """An item of the service desk's queue that needs no approval."""
    from tests.factories import CatalogueItemFactory, CategoryFactory

    return CatalogueItemFactory(service_owner=org.service_desk, category=CategoryFactory())


def test_the_queue_page_is_kept_and_changes_with_its_rows(
    client, org, place_order, django_assert_num_queries
):
    from catalogue.models import Category

    item = queue_item(org)
    orders = [place_order(item, org.bob.user) for _ in range(3)]
    services.task_open(request_id=orders[0].pk, kind="collect")
    client.force_login(org.admin.user)
    for url in ("/antraege/bearbeitung/", "/antraege/bearbeitung/?sort=item&tab=all"):
        fresh = afresh(client, url)
        assert fresh.count('id="task-note-') == 1 and f'href="/antraege/{orders[2].pk}/"' in fresh
        kept, first_token = page(client, url)
        kept_again, second_token = page(client, url)
        assert kept == kept_again == fresh and first_token != second_token
    # The same statements kept or not (tests/test_query_counts.py pins them).
    PAGE_MEMO.clear()
    with django_assert_num_queries(8):
        page(client)
    with django_assert_num_queries(8):
        page(client)
    # A request taken, a task opened, a category renamed: another page at once.
    services.request_take(request_id=orders[1].pk, user=org.fulfiller.user)
    services.task_open(request_id=orders[1].pk, kind="collect")
    Category.objects.filter(pk=item.category_id).update(name="Umbenannt")
    changed = page(client)[0]
    assert changed != fresh and changed.count('id="task-note-') == 2 and "Umbenannt" in changed
    assert changed == afresh(client)


def test_the_kept_queue_page_is_each_viewers_own(client, org, place_order):
    place_order(queue_item(org), org.bob.user)
    client.force_login(org.admin.user)
    page(client)
    client.force_login(org.fulfiller.user)
    theirs = page(client)[0]
    assert theirs == afresh(client)
    viewers = {key[1] for key in list(PAGE_MEMO.keys())}
    assert viewers == {org.fulfiller.user.pk}
