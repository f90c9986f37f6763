"""The order form's fields kept per process (requests_app/templatetags/order_form.py): the
same markup as rendered anew, a new key when anything it shows changes, bound forms never
kept; and the item read by its slug through a statement compiled once."""

import re

import pytest
from django.template.loader import get_template
from django.utils import translation

from catalogue.choices import FieldType
from catalogue.forms import OrderForm
from requests_app.templatetags.order_form import ORDER_FIELDS_MEMO
from tests.factories import CostCentreFactory, FormFieldFactory

pytestmark = pytest.mark.django_db

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def fields_item(manual_item):
    FormFieldFactory(item=manual_item, key="size", label="Größe", field_type=FieldType.CHOICE,
                     choices="S\nM", position=1)  # fmt: skip
    FormFieldFactory(item=manual_item, key="start", label="Beginn", field_type=FieldType.DATE,
                     earliest_days=3, position=2)  # fmt: skip
    FormFieldFactory(item=manual_item, key="note", label="Notiz", required=False,
                     condition_effect="show", condition_field="size",
                     condition_operator="equals", condition_value="M", position=3)  # fmt: skip
    return manual_item


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return CSRF.sub("", response.content.decode()), response


def test_kept_markup_is_the_rendered_markup(client, org, fields_item):
    ORDER_FIELDS_MEMO.clear()
    client.force_login(org.alice.user)
    url = f"/leistung/{fields_item.slug}/bestellen/"
    first, response = _page(client, url)
    assert len(ORDER_FIELDS_MEMO) == 1
    second, response = _page(client, url)
    assert second == first and len(ORDER_FIELDS_MEMO) == 1
    # The kept markup is what the template renders for the form now.
    fresh = get_template("requests/order_fields.html").render({"form": response.context["form"]})
    assert fresh in first
    form = response.context["form"]
    with translation.override("en"):
        english = form.markup_key()
    with translation.override("de"):
        assert form.markup_key() != english  # the texts are the language's


def test_a_changed_field_cost_centre_or_prefill_shows(client, org, fields_item):
    ORDER_FIELDS_MEMO.clear()
    client.force_login(org.alice.user)
    url = f"/leistung/{fields_item.slug}/bestellen/"
    _page(client, url)
    fields_item.form_fields.filter(key="size").update(label="Kleidergröße", choices="S\nM\nXL")
    CostCentreFactory(code="KS-99-999", name="Neue Stelle")
    page, _ = _page(client, url)
    assert "Kleidergröße" in page and '<option value="XL">XL</option>' in page
    assert "KS-99-999 Neue Stelle" in page
    page, _ = _page(client, url + "?f_size=M")
    assert '<option value="M" selected>M</option>' in page


def test_bound_forms_and_directory_fields_are_not_kept(client, org, fields_item):
    ORDER_FIELDS_MEMO.clear()
    client.force_login(org.alice.user)
    url = f"/leistung/{fields_item.slug}/bestellen/"
    response = client.post(url, {"item_version": str(fields_item.version), "f_size": "M"})
    assert response.status_code == 400
    assert 'class="field has-error"' in response.content.decode()
    assert len(ORDER_FIELDS_MEMO) == 0
    form = OrderForm(item=fields_item, requester_employee=org.alice)
    assert form.markup_key() is not None
    bound = OrderForm({}, item=fields_item, requester_employee=org.alice)
    assert bound.markup_key() is None
    FormFieldFactory(item=fields_item, key="group", field_type=FieldType.DIRECTORY_GROUP)
    fields_item.refresh_from_db()
    form = OrderForm(item=fields_item, requester_employee=org.alice)
    assert form.markup_key() is None


def test_item_by_slug_read_as_the_orm_reads_it(fields_item):
    from catalogue.selectors import _ITEM_BY_SLUG, _items_by_slug

    expected = list(_items_by_slug(fields_item.slug))
    made = _ITEM_BY_SLUG(fields_item.slug)
    assert len(made) == 1
    state = {k: v for k, v in vars(expected[0]).items() if k != "_state"}
    assert {k: v for k, v in vars(made[0]).items() if k != "_state"} == state
    assert made[0].category == expected[0].category
    assert made[0].allowed_department_ids == expected[0].allowed_department_ids
    assert _ITEM_BY_SLUG("no-such-item") == []
