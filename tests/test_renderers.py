"""The form renderer's Python widgets (itportal/renderers.py) give the templates' markup."""

import datetime
import decimal
import importlib

import django_filters
import pytest
from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from itportal.renderers import FastWidgetRenderer
from tests.factories import CategoryFactory, CostCentreFactory

TEMPLATES = DjangoTemplates()
FAST = FastWidgetRenderer()

CHOICES = [
    ("", "---------"),
    ("a", "Plain"),
    ("b&c", 'Quote " and <tag> & ampersand'),
    (3, 1234567),
    (decimal.Decimal("1.5"), datetime.date(2026, 12, 5)),
    ("lazy", gettext_lazy("State")),
    ("safe", mark_safe("<em>safe</em>")),
    ("Group <1>", [("g1", "In group"), ("g2", "Also")]),
]

WIDGETS = [
    (forms.TextInput(), "text <value> & more"),
    (forms.TextInput(attrs={"maxlength": 10, "required": True, "disabled": False}), None),
    (forms.TextInput(attrs={"data-x": mark_safe("<b>")}), mark_safe("<i>")),
    (forms.NumberInput(), 1234567),
    (forms.NumberInput(), decimal.Decimal("1234.5")),
    (forms.EmailInput(), "a@b.de"),
    (forms.URLInput(), "https://x/?a=1&b=2"),
    (forms.PasswordInput(render_value=True), "secret"),
    (forms.PasswordInput(), "secret"),
    (forms.HiddenInput(), "hidden"),
    (forms.SearchInput(), "q"),
    (forms.TelInput(), "+49"),
    (forms.ColorInput(), "#ffffff"),
    (forms.DateInput(attrs={"type": "date"}), datetime.date(2026, 12, 5)),
    (forms.DateInput(), datetime.date(2026, 12, 5)),
    (forms.DateTimeInput(), datetime.datetime(2026, 12, 5, 10, 30)),
    (forms.TimeInput(), datetime.time(10, 30)),
    (forms.Textarea(), 'line 1\n<line 2> & "3"'),
    (forms.Textarea(attrs={"rows": 3}), ""),
    (forms.CheckboxInput(), True),
    (forms.CheckboxInput(), False),
    (forms.Select(choices=CHOICES), "b&c"),
    (forms.Select(choices=CHOICES, attrs={"class": "x", "required": True}), None),
    (forms.Select(choices=CHOICES), 3),
    (forms.SelectMultiple(choices=CHOICES), ["a", "g2"]),
    (forms.NullBooleanSelect(), None),
    (forms.NullBooleanSelect(), True),
    (forms.RadioSelect(choices=CHOICES), "a"),
    (forms.RadioSelect(choices=CHOICES, attrs={"class": "inline"}), "g1"),
    (forms.CheckboxSelectMultiple(choices=CHOICES), ["a", "lazy"]),
    (forms.CheckboxSelectMultiple(choices=CHOICES[1:3]), []),
]


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("widget,value", WIDGETS, ids=lambda w: type(w).__name__)
@pytest.mark.parametrize("attrs", [None, {"id": "id_f"}, {"id": "id_f", "aria-describedby": "h"}])
def test_python_widgets_render_the_templates_markup(widget, value, attrs, language):
    with translation.override(language):
        expected = widget.render("f<", value, attrs=attrs, renderer=TEMPLATES)
        assert widget.render("f<", value, attrs=attrs, renderer=FAST) == expected


def test_the_portal_uses_it():
    assert settings.FORM_RENDERER == "itportal.renderers.FastWidgetRenderer"
    assert isinstance(get_default_renderer(), FastWidgetRenderer)
    assert FAST.fast_widgets  # Django's own templates: the Python versions apply


def test_an_unknown_option_template_goes_to_the_engine():
    class Custom(forms.RadioSelect):
        option_template_name = "django/forms/widgets/select_option.html"

    widget = Custom(choices=CHOICES[1:3])
    widget.option_template_name = "django/forms/widgets/input.html"  # not an option renderer
    html = widget.render("f", "a", renderer=FAST)
    assert html == widget.render("f", "a", renderer=TEMPLATES)


def _filtersets():
    modules = [
        "requests_app.filtersets", "provisioning.filtersets", "governance.filtersets",
        "notifications.filtersets", "webhooks.filtersets", "runs.filtersets",
        "metrics.controlling.filtersets",
    ]  # fmt: skip
    found = set()
    for name in modules:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, django_filters.FilterSet)
                and value.__module__ == name
            ):
                found.add(value)
    return sorted(found, key=lambda c: c.__qualname__)


@pytest.mark.django_db
@pytest.mark.parametrize("filterset_class", _filtersets(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("bound", [False, True])
def test_the_filter_forms_render_as_with_the_templates(filterset_class, bound):
    CategoryFactory(name="Hard & <soft>ware")
    CostCentreFactory(name='"Quoted" centre')
    data = {"q": "<x>", "state": ["submitted", "approved"], "created_after": "2026-01-01"}
    filterset = filterset_class(data=data if bound else None)
    for field in filterset.form:
        widget, value = field.field.widget, field.value()
        attrs = field.build_widget_attrs({"id": field.auto_id})
        expected = widget.render(field.html_name, value, attrs=attrs, renderer=TEMPLATES)
        assert widget.render(field.html_name, value, attrs=attrs, renderer=FAST) == expected
