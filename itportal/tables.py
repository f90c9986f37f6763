"""Shared table columns, and django-tables2 made cheaper per cell."""

import datetime

import django_tables2 as tables
from django.db import models
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.formats import date_format
from django.utils.hashable import make_hashable
from django.utils.timezone import localtime
from django_tables2.columns.base import library
from django_tables2.data import TableQuerysetData

from itportal.inputs import ending_with_pk


class TiesBrokenData(TableQuerysetData):
    """A queryset table whose every order ends with its key (itportal.inputs.ending_with_pk)."""

    def order_by(self, aliases):
        super().order_by(aliases)
        ordering = self.data.query.order_by
        stable = ending_with_pk(self.data, ordering)
        if stable is not ordering:
            self.data = self.data.order_by(*stable)


class OutboxColumns:
    """How the bookkeeping of an outbox row (itportal.models.OutboxRow) is shown in a
    django-tables2 table; ``open_states`` are the states in which a next attempt is due."""

    open_states: tuple = ()

    def render_state(self, record):
        return record.get_state_display()

    def render_last_error(self, value):
        return value if len(value) <= 120 else value[:119] + "…"

    def render_next_attempt_at(self, record, value):
        if record.state not in self.open_states:
            return "—"
        return date_format(localtime(value), "SHORT_DATETIME_FORMAT")


class _FormattedDateColumn(tables.Column):
    """A date column that formats in Python instead of compiling a template per cell.

    django-tables2's own ``DateColumn``/``DateTimeColumn`` are ``TemplateColumn``s whose
    ``template_code`` is compiled anew for every cell: on a 25-row list with two date
    columns that was 50 template compilations per page, a fifth of the page's time
    (bench/bench_pages.py). Same output: the format names Django's format settings
    (``SHORT_DATE_FORMAT``…) or a ``date`` filter string; datetimes in local time; export
    in ISO 8601.
    """

    default_format = "SHORT_DATE_FORMAT"
    with_time = False  # the model fields it stands for: DateField, or DateTimeField

    @classmethod
    def from_field(cls, field, **kwargs):
        if isinstance(field, models.DateField) and (
            isinstance(field, models.DateTimeField) == cls.with_time
        ):
            return cls(**kwargs)
        return None

    def __init__(self, format=None, short=True, *args, **kwargs):
        self.format = format or (self.default_format if short else self.long_format)
        super().__init__(*args, **kwargs)

    def render(self, value):
        if isinstance(value, datetime.datetime) and timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_format(value, self.format)

    def value(self, value, **kwargs):
        if isinstance(value, datetime.date):  # datetimes too
            return (
                value.isoformat(sep=" ")
                if isinstance(value, datetime.datetime)
                else value.isoformat()
            )
        return super().value(value=value, **kwargs)


@library.register
class DateColumn(_FormattedDateColumn):
    default_format = "SHORT_DATE_FORMAT"
    long_format = "DATE_FORMAT"


@library.register
class DateTimeColumn(_FormattedDateColumn):
    with_time = True
    default_format = "SHORT_DATETIME_FORMAT"
    long_format = "DATETIME_FORMAT"


def memoise_tables2_signatures() -> None:
    """Make django-tables2 look up each ``render_*``/``linkify`` callable's signature once.

    ``django_tables2.utils.call_with_appropriate`` runs ``inspect.signature`` for every
    cell, every link and every attribute callable — about 200 times on a 25-row page, a
    quarter of its rendering time. A signature depends only on the function, so it is
    cached per function (bound methods by their underlying function: the bound instance
    only drops ``self``, the same for every instance). Called once from
    ``ItportalConfig.ready``; tests/test_tables.py checks the cached answers equal the
    library's own.
    """
    from django_tables2 import utils

    if getattr(utils.signature, "memoised", False):
        return
    uncached = utils.signature
    cache: dict = {}

    def signature(fn):
        func = getattr(fn, "__func__", None)
        key = (func, True) if func is not None else (fn, False)
        try:
            return cache[key]
        except TypeError:  # an unhashable callable object: ask the library each time
            return uncached(fn)
        except KeyError:
            if len(cache) > 4096:  # callables made per request (closures) must not pile up
                cache.clear()
            result = cache[key] = uncached(fn)
            return result

    signature.memoised = True
    utils.signature = signature


def memoise_choice_displays() -> None:
    """Make every model's ``get_FOO_display()`` look its choices up in a kept dict.

    Django rebuilds the field's choices as a dict (``make_hashable`` over every choice) on
    each call: 30 µs for a request's state, and django-tables2 calls it for every cell of a
    column with choices, the state badge once more. The dict maps values to the same (lazy)
    labels, so it is kept per field and the label is still translated per call; fields
    whose choices are computed (a callable) are left to Django. Patched on the models'
    classes (Django binds ``_get_FIELD_display`` there when the class is made), except where
    a model defines its own ``get_FOO_display``. Called once from ``ItportalConfig.ready``;
    tests/test_tables.py compares the answers with Django's.
    """
    from functools import partialmethod

    from django.apps import apps
    from django.db.models import Model

    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.get_fields():
            name = f"get_{getattr(field, 'name', '')}_display"
            method = model.__dict__.get(name)
            if (
                isinstance(method, partialmethod)
                and method.func is Model._get_FIELD_display
                and method.keywords.get("field") is field
            ):
                setattr(model, name, partialmethod(_choice_display, field=field))


def _choice_display(instance, field):
    choices = field.choices
    if not isinstance(choices, list | tuple):
        return instance._get_FIELD_display(field)
    kept = field.__dict__.get("_portal_choice_labels")
    if kept is None or kept[0] is not choices:
        kept = (choices, dict(make_hashable(field.flatchoices)))
        field.__dict__["_portal_choice_labels"] = kept
    value = getattr(instance, field.attname)
    return force_str(kept[1].get(make_hashable(value), value), strings_only=True)


def copy_tables2_columns_shallowly() -> None:
    """Make a table's per-instance copy of its declared columns a shallow copy per column.

    ``Table.__init__`` deep-copies ``base_columns`` so a table may change its columns
    without touching the class: about 0.4 ms a list page, most of it copying attribute
    dicts, link transforms and lazy strings nobody changes. What a table changes on its
    copies are attributes it sets (``visible`` by ``hide``/``show``, ``accessor`` when
    unset), which a shallow copy of each column keeps apart just as well. Called once from
    ``ItportalConfig.ready``; tests/test_tables.py checks two tables stay independent.
    """
    import copy

    if getattr(tables.Column, "_portal_shallow_copies", False):
        return

    def column_copy(self, memo):
        return copy.copy(self)

    tables.Column.__deepcopy__ = column_copy
    tables.Column._portal_shallow_copies = True
