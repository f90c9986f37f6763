"""The filter forms' options (itportal/templatetags/portal_forms.py): read in one plain
query per model choice field, the same options and markup as Django's iterator gives."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_model_choices_are_read_without_a_server_side_cursor(client, org, manual_item):
    """ModelChoiceIterator reads with QuerySet.iterator(): a server-side cursor, three round
    trips per field. The kept form reads each field's options in one query, with the same
    choices (values, labels, the empty choice) as the iterator."""
    from itportal.templatetags.portal_forms import FILTER_MEMO, _model_choices

    FILTER_MEMO.clear()
    client.force_login(org.manager.user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/antraege/genehmigungen/")
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if sql.lstrip().upper().startswith(("DECLARE", "FETCH"))]
    content = response.content.decode()
    category = manual_item.category
    assert f'<option value="{category.pk}">{category.name}</option>' in content
    form = response.context["filter"].form
    for name in ("category", "cost_centre"):
        field = form.fields[name]
        made = [(str(value), str(label)) for value, label in _model_choices(field)]
        assert made == [(str(value), str(label)) for value, label in field.iterator(field)]
        assert made[0] == ("", str(field.empty_label))


def test_order_form_cost_centres_are_read_without_a_server_side_cursor(client, org, manual_item):
    """The order form's cost centres (catalogue.forms.PlainModelChoiceIterator): one plain
    query, no cursor, the same choices and markup as Django's iterator made."""
    from django.forms.models import ModelChoiceIterator

    client.force_login(org.alice.user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/leistung/{manual_item.slug}/bestellen/")
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if sql.lstrip().upper().startswith(("DECLARE", "FETCH"))]
    assert len([sql for sql in statements if "catalogue_costcentre" in sql]) == 1
    field = response.context["form"].fields["cost_centre"]
    made = [(str(value), str(label)) for value, label in field.choices]
    assert made == [(str(value), str(label)) for value, label in ModelChoiceIterator(field)]
    assert made[0] == ("", str(field.empty_label)) and len(made) > 1
    assert f'<option value="{org.cost_centre.pk}">{org.cost_centre}</option>' in (
        response.content.decode()
    )
