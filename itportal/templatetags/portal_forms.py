"""``{% filter_fields filter %}``: the fields of a list's filter form, as ``{% for field in
filter.form %}{% include "portal/field.html" %}{% endfor %}`` renders them, the markup kept
per process while what it shows stays the same.

Rendering the form through Django's widget templates (a template per option, per
attribute) cost about a fifth of a list page's CPU: "my requests" spent 2 ms of 10 on its
category, cost centre and state choices. A filter form's markup is a function of its class,
its data, its options, the language, the time zone and the date: the key holds all of them.
The options of the model choice fields are read once, as the rendering would read them
(one query each, so a page makes the same queries whether the markup is kept or not), and
a renamed category or a new cost centre changes the key. Nothing needs invalidating.
"""

import contextlib

from django import forms, template
from django.db.models import QuerySet
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from itportal.memo import Memo
from itportal.statements import KeptRows

register = template.Library()

# A few forms per list and language, their data as people filter: 4 MB at most.
FILTER_MEMO = Memo(512, 4 << 20)


def _options(filterset) -> tuple:
    """Every choice field's options as texts. Those of a model choice field are read once
    and given to its widget, which renders them without reading them again (the field
    itself still validates against its queryset)."""
    options = []
    for name, field in filterset.form.fields.items():
        if isinstance(field, forms.ModelChoiceField):
            choices = model_choices(field, _option_objects(filterset, name, field))
            field.widget.choices = choices
        elif isinstance(field, forms.ChoiceField):
            choices = list(iter(field.choices))  # as a model field would: no len()
        else:
            continue
        options.append((name, tuple((str(v), str(label)) for v, label in choices)))
    return tuple(options)


def model_choices(field, objects=None) -> list:
    """The choices of a model choice field, as its ``ModelChoiceIterator`` (django-filter's,
    with its null choice) makes them, from one plain read of its queryset (or ``objects``,
    its rows): the iterator reads with ``QuerySet.iterator()``, a server-side cursor
    (DECLARE, FETCH, CLOSE: three round trips, the rows held at commit) for the few
    categories or cost centres a filter offers."""
    iterator = field.iterator(field)
    choices = [("", field.empty_label)] if field.empty_label is not None else []
    if getattr(field, "null_label", None) is not None:
        choices.append((field.null_value, field.null_label))
    if objects is None:
        objects = field.queryset.all()
    choices.extend(iterator.choice(obj) for obj in objects)
    return choices


# The options' statements per filter set class and field (None: read by the ORM). Classes
# are declared in code; one made per request (filterset_factory) must not grow this.
_OPTION_ROWS: dict[tuple[type, str], KeptRows | None] = {}
_OPTION_ROWS_MAX = 256
_UNKNOWN = object()


def _option_objects(filterset, name: str, field) -> list:
    """The objects of a model choice field's queryset. Where its filter declares a queryset
    on the filter set's class (not a function of the request), every instance reads the
    same statement: kept per class and field (``KeptRows``), as report_filters keeps its
    fingerprint's (metrics/templatetags/reports.py). Cloning and compiling the querysets
    and making their objects through ``Model.__init__`` was 0.5 ms of every list page with
    a category and a cost centre filter."""
    key = (type(filterset), name)
    rows = _OPTION_ROWS.get(key, _UNKNOWN)
    if rows is _UNKNOWN:
        declared = type(filterset).base_filters.get(name)
        queryset = declared.extra.get("queryset") if declared is not None else None
        rows = None
        if isinstance(queryset, QuerySet):
            with contextlib.suppress(ValueError):  # not plain model rows: the ORM's
                rows = KeptRows(queryset)
        if len(_OPTION_ROWS) >= _OPTION_ROWS_MAX:
            _OPTION_ROWS.clear()
        _OPTION_ROWS[key] = rows
    queryset = field.queryset
    if rows is None or rows.queryset.model is not queryset.model:
        return list(queryset.all())
    return rows(queryset.db)


def filter_fields_key(filterset) -> tuple:
    form = filterset.form
    return (
        type(filterset),  # its form's class is made anew for each instance, from its own
        form.prefix,
        form.auto_id,
        tuple(sorted((k, tuple(v)) for k, v in form.data.lists())) if form.is_bound else None,
        translation.get_language(),
        timezone.get_current_timezone_name(),
        timezone.localdate(),
        _options(filterset),
    )


@register.simple_tag
def filter_fields(filterset):
    """The filter form's fields (``portal/filter_fields.html``), kept per process for its
    data and options."""
    html = FILTER_MEMO.kept(
        filter_fields_key(filterset),
        lambda: get_template("portal/filter_fields.html").render({"filter": filterset}),
    )
    return mark_safe(html)  # the template's output, escaped as it rendered
