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
from django_filters import filters
from django_filters.filterset import BaseFilterSet

from itportal.memo import Memo
from itportal.statements import KeptRows, read_kept_together

register = template.Library()

# A few forms per list and language, their data as people filter: 4 MB at most.
FILTER_MEMO = Memo(512, 4 << 20)


def _options(filterset, read: dict | None = None) -> tuple:
    """Every choice field's options as texts. Those of a model choice field are read once
    (or taken from ``read``, name -> objects; several in one statement, ``_read_together``)
    and given to its widget, which renders them without reading them again (the field
    itself still validates against its queryset)."""
    options = []
    if read is None:
        read = _read_together(filterset)
    for name, field in filterset.form.fields.items():
        if isinstance(field, forms.ModelChoiceField):
            objects = read.get(name)
            if objects is None:
                objects = _option_objects(filterset, name, field)
            choices = model_choices(field, objects)
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
    rows = _kept_option_rows(filterset, name)
    queryset = field.queryset
    if rows is None or rows.queryset.model is not queryset.model:
        return list(queryset.all())
    return rows(queryset.db)


def _read_together(filterset) -> dict:
    """The objects of the form's model choice fields that ``_option_objects`` reads by
    kept statements, read by one statement (``read_kept_together``) where there are
    several of one database: name -> objects."""
    kept = {}
    for name, field in filterset.form.fields.items():
        if isinstance(field, forms.ModelChoiceField):
            rows = _kept_option_rows(filterset, name)
            if rows is not None and rows.queryset.model is field.queryset.model:
                kept[name] = (rows, field.queryset.db)
    databases = {db for _rows, db in kept.values()}
    if len(kept) < 2 or len(databases) != 1:
        return {}
    objects = read_kept_together(tuple(rows for rows, _db in kept.values()), databases.pop())
    return dict(zip(kept, objects, strict=True))


def _kept_option_rows(filterset, name: str) -> KeptRows | None:
    """The kept statement of the queryset the filter ``name`` declares on the filter set's
    class, or None (none declared, or not plain model rows)."""
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
    return rows


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


# Filters whose field is made from the filter's class and arguments alone (``field``
# as declared by these): the form of an unbound filter set of a class is the same for
# every instance but for the options (``_unbound_key``).
_PLAIN_FIELD_PROPERTIES = frozenset(
    {filters.Filter.field, filters.QuerySetRequestMixin.field, filters.NumberFilter.field}
)


def _unbound_key(filterset) -> tuple | None:
    """``filter_fields_key`` of an unbound filter set, worked out without its form, and
    the options' objects read for it (name -> objects); None where the filters are not
    plain (a field made otherwise, options a function of the request or of a callable).

    An unbound form's markup is a function of the filter set's class, its prefix, the
    language, time zone and date and the options; building the form to learn its options
    (its class, every field and widget, deep copies of them) was most of what a kept
    filter form cost a list page: the queue's and "my requests"' default views are
    unbound. The model choice options are read as the form would (``_kept_option_rows``),
    one query each, and keyed by what their markup shows of each object (its key and
    text); the fixed choices by their texts."""
    kind = type(filterset)
    if (
        filterset.is_bound
        or "_form" in filterset.__dict__
        # A form made otherwise than the library's (portal's) way may differ per instance.
        or kind.get_form_class is not BaseFilterSet.get_form_class
        or kind.form is not BaseFilterSet.form
    ):
        return None
    options, kept = [], {}
    for name, filter_ in filterset.filters.items():
        if getattr(type(filter_), "field", None) not in _PLAIN_FIELD_PROPERTIES:
            return None
        field_class = filter_.field_class
        if not issubclass(field_class, forms.ChoiceField):
            continue
        if issubclass(field_class, forms.ModelChoiceField):
            declared = kind.base_filters.get(name)
            rows = _kept_option_rows(filterset, name)
            if (
                rows is None
                or getattr(declared, "queryset", None) is not filter_.queryset
                or "to_field_name" in filter_.extra
                or field_class.label_from_instance is not forms.ModelChoiceField.label_from_instance
            ):
                return None
            kept[name] = rows
            options.append((name, None))  # its objects' keys and texts, read below
            continue
        choices = filter_.extra.get("choices")
        if choices is None or callable(choices):
            return None
        options.append((name, tuple((str(value), str(label)) for value, label in choices)))
    # Every model choice field's options in one statement (read_kept_together), where they
    # are in one database: the queue's categories and cost centres were two.
    databases = {rows.queryset.db for rows in kept.values()}
    if len(databases) == 1:
        objects = read_kept_together(tuple(kept.values()), databases.pop())
        read = dict(zip(kept, objects, strict=True))
    else:
        read = {name: rows(rows.queryset.db) for name, rows in kept.items()}
    options = [
        (name, tuple((obj.pk, str(obj)) for obj in read[name]) if texts is None else texts)
        for name, texts in options
    ]
    key = (
        "unbound",
        kind,
        filterset.form_prefix,
        translation.get_language(),
        timezone.get_current_timezone_name(),
        timezone.localdate(),
        tuple(options),
    )
    return key, read


def fields_key(filterset) -> tuple:
    """What ``{% filter_fields %}`` keeps the form's markup under (``_unbound_key`` or
    ``filter_fields_key``), worked out once per filter set: a page kept whole (the
    fulfilment queue's, requests_app/templatetags/queue_page.py) keys on it too, and the
    options are read once either way. (key, the options read for an unbound form or None)."""
    kept = filterset.__dict__.get("_portal_fields_key")
    if kept is None:
        kept = _unbound_key(filterset) or (filter_fields_key(filterset), None)
        filterset.__dict__["_portal_fields_key"] = kept
    return kept


@register.simple_tag
def filter_fields(filterset):
    """The filter form's fields (``portal/filter_fields.html``), kept per process for its
    data and options; an unbound one without building its form (``_unbound_key``)."""
    key, read = fields_key(filterset)
    html = FILTER_MEMO.get(key)
    if html is None:
        if read is not None:
            _options(filterset, read)  # the widgets' options, as read for the key
        html = get_template("portal/filter_fields.html").render({"filter": filterset})
        FILTER_MEMO.put(key, html)
    return mark_safe(html)  # the template's output, escaped as it rendered
