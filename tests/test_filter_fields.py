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
    from itportal.templatetags.portal_forms import FILTER_MEMO, _option_objects, model_choices

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
    filterset = response.context["filter"]
    for name in ("category", "cost_centre"):
        field = filterset.form.fields[name]
        expected = [(str(value), str(label)) for value, label in field.iterator(field)]
        made = [(str(value), str(label)) for value, label in model_choices(field)]
        assert made == expected and made[0] == ("", str(field.empty_label))
        objects = _option_objects(filterset, name, field)  # by the statement kept
        made = [(str(value), str(label)) for value, label in model_choices(field, objects)]
        assert made == expected


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


def test_options_of_declared_querysets_are_read_by_kept_statements(org, manual_item):
    """A filter's queryset declared on its filter set's class is read by a statement kept
    per class and field, one that is a function of the request by the ORM; either way one
    query per field, and the choices (an empty and a null choice among them) are those
    django-filter's iterator makes, given to the widget as they are."""
    import django_filters

    from catalogue.models import Category, CostCentre
    from itportal.templatetags import portal_forms
    from requests_app.models import ServiceRequest

    class Filters(django_filters.FilterSet):
        category = django_filters.ModelChoiceFilter(
            field_name="item__category", queryset=Category.objects.order_by("-name"), null_label="-"
        )
        cost_centre = django_filters.ModelChoiceFilter(
            queryset=lambda request: CostCentre.objects.all()
        )

        class Meta:
            model = ServiceRequest
            fields = ["category", "cost_centre"]

    for _ in range(2):
        filterset = Filters({}, queryset=ServiceRequest.objects.none())
        with CaptureQueriesContext(connection) as queries:
            options = dict(portal_forms._options(filterset))
        assert len(queries.captured_queries) == 2
        for name, field in filterset.form.fields.items():
            expected = [(str(value), str(label)) for value, label in field.iterator(field)]
            assert list(options[name]) == expected and len(expected) >= 2
            assert [(str(v), str(label)) for v, label in field.widget.choices] == expected
        assert options["category"][1] == ("null", "-")
    assert portal_forms._OPTION_ROWS[(Filters, "category")] is not None
    assert portal_forms._OPTION_ROWS[(Filters, "cost_centre")] is None
