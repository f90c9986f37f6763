"""Shared bases for the Django admin."""

import datetime
import html
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.admin import AdminSite, ModelAdmin, RelatedFieldListFilter
from django.contrib.admin.templatetags.admin_list import ResultList, result_headers
from django.contrib.admin.templatetags.admin_list import result_list as django_result_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_field, display_for_value
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import connections, models
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.forms import Media
from django.forms.formsets import TOTAL_FORM_COUNT
from django.forms.models import BaseInlineFormSet, _get_foreign_key
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.functional import Promise
from django.utils.http import urlencode as django_urlencode
from django.utils.safestring import SafeData, mark_safe
from django.utils.timezone import get_current_timezone
from django.utils.translation import get_language

from itportal.formatting import DateFormatter
from itportal.inputs import BoundedPaginator
from itportal.memo import Memo, weight
from itportal.statements import JoinlessRows, KeptRows, QuickModelIterable


class PortalAdminSite(AdminSite):
    """Django's admin site, its list of apps and models (the sidebar of every admin page,
    ``each_context``) kept per process for each set of permissions, language and URL
    prefix: building it asked two dozen model admins for their permissions and reversed
    50 URLs, 1.5 ms of every admin page's CPU.

    The list follows from the user's permissions as the model admins read them
    (``has_perm``, ``has_module_perms``: the same for everyone with the same permissions,
    all for an active superuser); registering or unregistering a model forgets the kept
    lists. tests/test_admin_changelists.py compares them with Django's."""

    APP_LISTS_KEPT = 256

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._app_lists = {}

    def register(self, *args, **kwargs):
        self._app_lists.clear()
        return super().register(*args, **kwargs)

    def unregister(self, *args, **kwargs):
        self._app_lists.clear()
        return super().unregister(*args, **kwargs)

    def get_app_list(self, request, app_label=None):
        if app_label is not None:
            return super().get_app_list(request, app_label)
        user = request.user
        key = (
            get_language(),
            get_script_prefix(),
            getattr(request, "urlconf", None),
            True if user.is_active and user.is_superuser else frozenset(user.get_all_permissions()),
        )
        kept = self._app_lists.get(key)
        if kept is None:
            kept = KeptAppList(super().get_app_list(request))
            if len(self._app_lists) >= self.APP_LISTS_KEPT:
                self._app_lists.clear()
            self._app_lists[key] = kept
        # Copies of the dictionaries, as Django builds them anew for every request.
        return KeptAppList(
            [{**app, "models": [dict(model) for model in app["models"]]} for app in kept],
            sidebars=kept.sidebars,
            kept_as=kept.kept_as,
        )


class KeptAppList(list):
    """A list of apps PortalAdminSite keeps, or a copy of it: ``sidebars`` holds the
    navigation sidebar rendered from it (itportal/templatetags/admin_sidebar.py), per set
    of links the page's path marks as current, shared by the kept list and its copies and
    forgotten with them. It is the same for everyone with the list: the list's key has the
    language and the permissions. ``kept_as``: an object of its own, the same for the
    kept list and its copies (a key for what is rendered from them)."""

    SIDEBARS_KEPT = 256

    def __init__(self, apps, sidebars=None, kept_as=None):
        super().__init__(apps)
        self.sidebars = {} if sidebars is None else sidebars
        self.kept_as = object() if kept_as is None else kept_as


class BoundedInlineFormSet(BaseInlineFormSet):
    """Builds no form at all for a claimed form count above ``absolute_max``.

    Django would still build ``absolute_max`` forms (and render them again) for such a
    claim before refusing it; the claim is forged, so the refusal ("Please submit at
    most … forms", from full_clean) is all the answer needs.
    """

    def total_form_count(self):
        if self.is_bound and self.management_form.cleaned_data[TOTAL_FORM_COUNT] > (
            self.absolute_max
        ):
            return 0
        return super().total_form_count()


class BoundedInlineMixin:
    """An inline whose formset never builds more forms than it can hold.

    Django builds as many forms as a POST's ``TOTAL_FORMS`` claims, up to ``max_num`` +
    1,000: one forged number cost 22 CPU-seconds on the item page. Here the bound is
    ``max_num`` or the rows that exist, whichever is larger; a larger claim is a form
    error ("Please submit at most … forms").
    """

    max_num = 100
    formset = BoundedInlineFormSet

    def get_formset(self, request, obj=None, **kwargs):
        limit = self.get_max_num(request, obj, **kwargs) or 0
        if obj is not None and obj.pk is not None:
            fk = _get_foreign_key(self.parent_model, self.model, fk_name=self.fk_name)
            limit = max(limit, self.get_queryset(request).filter(**{fk.name: obj}).count())
        kwargs.setdefault("absolute_max", max(limit, 1))
        return super().get_formset(request, obj, **kwargs)


def bound_all_inlines(site) -> None:
    """Give every registered inline, third-party ones included (e.g. django-otp's), the
    bound above; our own inherit BoundedInlineMixin with a max_num of their choosing."""
    for model_admin in site._registry.values():
        model_admin.inlines = [
            inline
            if issubclass(inline, BoundedInlineMixin)
            else type(
                inline.__name__,
                (BoundedInlineMixin, inline),
                {"max_num": inline.max_num or BoundedInlineMixin.max_num},
            )
            for inline in model_admin.inlines
        ]


class LargeTableAdminMixin:
    """A changelist over a table of a million rows: counted up to COUNT_LIMIT (the
    pagination says "more than …" beyond), and not counted a second time unfiltered.

    Without an exact count, "select all N across pages" would name a wrong N: the
    selection counter is off, an action applies to the rows ticked on the page."""

    paginator = BoundedPaginator
    show_full_result_count = False
    actions_selection_counter = False
    # The portal's page size, not the admin's 100: each row renders a checkbox and every
    # cell through the admin's generic display code, so 100 rows took 50-80 ms of CPU, four
    # times the rest of the page; deep pages also skip a quarter of the rows.
    list_per_page = 25
    # The columns the changelist's cells show (``only()``; the related rows' through
    # list_select_related), so its rows skip the wide ones: a request's item snapshot, the
    # whole request behind an audit record. Empty: every column.
    list_only: tuple[str, ...] = ()
    # Django's, its rows rendered by FastLinksChangeList.results_context.
    change_list_template = "admin/large_change_list.html"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.list_only and _is_changelist(request, self.model):
            queryset = queryset.only(*self.list_only)
        return queryset

    def get_changelist(self, request, **kwargs):
        return FastLinksChangeList

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and type(context.get("media")) is Media:
            context["media"] = KeptMedia.of(context["media"])
        return response


class KeptMedia(Media):
    """A page's Media whose parts (``media.css``, ``media.js``: what the admin's templates
    render) are rendered once per process for the same files: merging the lists and
    putting each file through ``static()`` on every view was a third of a millisecond
    of each changelist. Only for lists of plain paths (no asset objects, whose attributes
    would render differently under an equal path); the key has the URL prefix, which
    ``static()`` puts before a relative STATIC_URL."""

    KEPT = Memo(256, 1 << 20)

    @classmethod
    def of(cls, media: Media) -> Media:
        try:
            key = (
                get_script_prefix(),
                tuple(
                    tuple((medium, tuple(_plain_paths(paths))) for medium, paths in css.items())
                    for css in media._css_lists
                ),
                tuple(tuple(_plain_paths(js)) for js in media._js_lists),
            )
        except _Unsupported:
            return media
        kept = cls()
        kept._css_lists, kept._js_lists = media._css_lists, media._js_lists
        kept._key = key
        return kept

    def __getitem__(self, name):
        key = (self._key, name)
        rendered = self.KEPT.get(key)
        if rendered is None:
            rendered = str(super().__getitem__(name))
            self.KEPT.put(key, rendered)
        part = _RenderedMedia()
        part._source, part._name, part._rendered = self, name, rendered
        return part


class _RenderedMedia(Media):
    """``media[name]``, rendered already (KeptMedia); its lists Django's, if asked for."""

    def __init__(self):
        super().__init__()

    def _part(self) -> Media:
        return Media.__getitem__(self._source, self._name)

    _css = property(lambda self: self._part()._css)
    _js = property(lambda self: self._part()._js)

    def render(self):
        return mark_safe(self._rendered)


def _plain_paths(paths):
    if not isinstance(paths, (list, tuple)):
        raise _Unsupported
    for path in paths:
        if type(path) is not str:
            raise _Unsupported
        yield path


def related_filter_reading(
    *columns: str, label: Callable[..., str] | None = None
) -> type[RelatedFieldListFilter]:
    """Django's filter by a related model (``list_filter = [("item", ...)]``), its choices
    read with only the key and ``columns``, the columns the related rows' ``__str__``
    shows: Django reads every column, and a catalogue item's texts and search vector
    for the entitlements' filter of 40 services cost 1.6 ms CPU a page.

    ``label``: the row's ``__str__`` from the values of ``columns`` (``str`` where it is
    one column's text), so the choices are read as values and no model object is made
    for them: 40 items' objects cost another 0.3 ms. tests/test_admin_changelists.py
    compares the choices with Django's."""
    return type(
        "RelatedFilterReading",
        (_ColumnsRelatedFilter,),
        {"columns": columns, "label": staticmethod(label) if label else None},
    )


class _ColumnsRelatedFilter(RelatedFieldListFilter):
    columns: tuple[str, ...] = ()
    label: Callable[..., str] | None = None

    def field_choices(self, field, request, model_admin):
        # Field.get_choices() with the rows read narrow: same order, same names.
        if field.choices is not None or not hasattr(field.remote_field, "get_related_field"):
            return super().field_choices(field, request, model_admin)
        key = field.remote_field.get_related_field().attname
        rows = field.remote_field.model._default_manager.complex_filter(
            field.get_limit_choices_to()
        )
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            rows = rows.order_by(*ordering)
        if self.label is not None:
            label = self.label
            return [(values[0], label(*values[1:])) for values in _choice_values(rows, key, self)]
        return [(getattr(row, key), str(row)) for row in rows.only(key, *self.columns)]


# The choices' statements of the related filters (_choice_values): one per filter and order.
_KEPT_CHOICES = Memo(256, 1 << 20)


def _choice_values(rows: QuerySet, key: str, spec: _ColumnsRelatedFilter) -> list:
    """``rows.values_list(key, *spec.columns)``, its statement compiled once per process
    where that is the same on every view: the related rows unfiltered (no
    ``limit_choices_to``, no condition of their manager), in an order of named fields,
    their values as PostgreSQL gives them (no converter). Building and compiling it was a
    fifth of a millisecond of each changelist with the filter."""
    query = rows.query
    if (
        query.where
        or query.annotations
        or query.extra
        or query.distinct
        or query.is_sliced
        or not all(isinstance(name, str) for name in query.order_by)
    ):
        return list(rows.values_list(key, *spec.columns))
    order = (tuple(query.order_by), query.default_ordering)
    kept_key = (rows.db, rows.model, key, spec.columns, order)
    statement = _KEPT_CHOICES.get(kept_key)
    if statement is None:
        values = rows.values_list(key, *spec.columns)
        compiler = values.query.get_compiler(using=values.db)
        sql, params = compiler.as_sql()
        columns = [column[0] for column in compiler.select[: compiler.col_count]]
        # Values converted per row (none of PostgreSQL's plain columns): through the ORM.
        statement = (None, ()) if compiler.get_converters(columns) else (sql, tuple(params))
        _KEPT_CHOICES.put(kept_key, statement, weight(kept_key) + weight(sql))
    sql, params = statement
    if sql is None:
        return list(rows.values_list(key, *spec.columns))
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def user_name_columns(prefix: str) -> tuple[str, ...]:
    """The user columns a person's name is shown from (Employee.display_name), for
    ``list_only`` under ``prefix`` (``"holder__user__"``)."""
    return tuple(f"{prefix}{name}" for name in ("first_name", "last_name", "username"))


def _is_changelist(request, model) -> bool:
    match = getattr(request, "resolver_match", None)
    opts = model._meta
    return match is not None and match.url_name == f"{opts.app_label}_{opts.model_name}_changelist"


class FastLinksChangeList(ChangeList):
    """A changelist whose rows' links to their change pages are one URL reversed per page,
    the row's key put in: reverse() per row was a tenth of a changelist's CPU; its rows'
    cells rendered per column (``results_context``), its rows' objects made by
    QuickModelIterable."""

    def url_for_result(self, result):
        pk = getattr(result, self.pk_attname)
        if type(pk) is not int:  # keys that quote() or the URL would escape: as Django does
            return super().url_for_result(result)
        return self._change_url_template().replace(_PK_MARK, str(pk), 1)

    def get_results(self, request):
        super().get_results(request)
        # The page's objects made without Model.__init__ where that is the same.
        rows = self.result_list
        if (
            isinstance(rows, QuerySet)
            and rows._result_cache is None
            and rows._iterable_class is ModelIterable
        ):
            key = self._kept_rows_key()
            if key is not None:
                kept = _KEPT_PAGE_ROWS.get(key)
                if kept is None:
                    kept = _kept_page_rows(rows)
                    if kept is not None:
                        _KEPT_PAGE_ROWS.put(key, kept, weight(key) + 4096)
                if kept is not None:
                    # The queryset stays the page's (its query, as Django's), its rows read.
                    values, objects = kept()
                    if values is None:
                        rows._result_cache = objects()
                    else:
                        self._values = values
                        rows._result_cache = MadeWhenUsed(len(values), objects)
                    return
            rows._iterable_class = QuickModelIterable

    def _kept_rows_key(self) -> tuple | None:
        """What the SQL of the page's rows follows from where the list is the whole table
        (no filter, no search: no condition at all), so that its statement is compiled
        once per process (``_KEPT_PAGE_ROWS``): the rows' columns and joins
        (``list_only``, ``list_select_related``), the order and the page. Compiling the
        page's select with its joins through the ORM was 0.8 ms of every view of an
        unfiltered changelist. None for any other list: its conditions (a date filter's
        today, a search) are compiled per view, as Django does."""
        queryset = self.queryset
        query = queryset.query
        if (
            query.where
            or len(query.alias_map) > 1
            or query.annotations
            or query.extra
            or query.extra_tables
            or query.extra_order_by
            or query.combinator
            or query.distinct
            or query.is_sliced
            or query.group_by is not None
            or query.values_select
            or query.select_for_update
            or not query.standard_ordering
            or queryset._iterable_class is not ModelIterable
            or queryset._prefetch_related_lookups
            or queryset._known_related_objects
            or not all(isinstance(key, str) for key in query.order_by)
        ):
            return None
        names, defer = query.deferred_loading
        return (
            queryset.db,
            queryset.model,
            tuple(query.order_by),
            query.default_ordering,
            repr(query.select_related),
            query.max_depth,
            tuple(sorted(names)),
            defer,
            type(self.paginator),
            self.page_num,
            self.list_per_page,
            self.result_count,
            self.show_all,
            self.can_show_all,
            self.multi_page,
        )

    def get_query_string(self, new_params=None, remove=None):
        """Django's, each parameter's ``key=value`` encoded once per page: the sort links
        of the headers, the pages and every filter choice (40 services) ask for 50-70 query
        strings a page that differ in one parameter, and encoding all of them each time
        was a third of a millisecond."""
        params = dict(self.filter_params)
        for prefix in remove or ():
            for name in [name for name in params if name.startswith(prefix)]:
                del params[name]
        for name, value in (new_params or {}).items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        encoded = self.__dict__.setdefault("_encoded_params", {})
        pieces = []
        for name, value in sorted(params.items()):
            piece = _encoded_param(encoded, name, value)
            if piece:
                pieces.append(piece)
        return "?" + "&".join(pieces)

    # The rows of values the page's objects were made from (JoinlessRows), if they were.
    _values: list | None = None

    def results_key(self) -> tuple | None:
        """What the table of rows (``results_context``, as admin_rows renders it) follows
        from, for keeping it: the rows of values the page's objects hold (their columns
        and their related rows'), the columns and links of the model admin, the list's
        parameters (the sort links and the order keep them, the row links the preserved
        filters), the language and time zone (labels, dates) and the URL prefix. None
        where the rows were not read as values (a filtered or searched list), for values
        that may be equal yet render differently (numbers of another scale), and for
        a table with forms."""
        values = self._values
        if values is None or self.formset or self.is_popup or self.to_field:
            return None
        for row in values:
            if not _KEY_TYPES.issuperset(map(type, row)):
                return None
        try:
            params = tuple(
                sorted(
                    (name, tuple(value) if isinstance(value, list) else value)
                    for name, value in self.filter_params.items()
                )
            )
            key = (
                self.model,
                type(self.model_admin),
                tuple(self.list_display),
                tuple(self.list_display_links or ()),
                tuple(self.sortable_by) if self.sortable_by is not None else None,
                params,
                self.preserved_filters,
                get_language(),
                get_current_timezone(),
                get_script_prefix(),
                tuple(values),
            )
            hash(key)
        except TypeError:
            return None
        return key

    def _change_url_template(self) -> str:
        template = getattr(self, "_change_url", None)
        if template is None:
            opts = self.opts
            template = self._change_url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=(_PK_MARK,),
                current_app=self.model_admin.admin_site.name,
            )
        return template

    def results_context(self) -> dict:
        """What Django's ``{% result_list %}`` gives admin/change_list_results.html, each
        row's cells rendered in one piece.

        Django's ``items_for_result`` looks up the field, the empty value, the link and
        its filters again for every cell and escapes through the lazy-aware helpers and
        format_html: 15-20 µs a cell, 3 ms of a 25-row page. Here what a column's cells
        share is worked out once per page (``_columns``) and each cell formats its value
        with Django's own display functions. Anything else (editable rows, the popup, a
        column that is no field of the model or Django's checkbox, a key that is no
        integer, a related row missing) is Django's ``result_list``;
        tests/test_admin_changelists.py compares the markup."""
        try:
            if self.formset or self.is_popup or self.to_field:
                raise _Unsupported
            columns = _columns(self)
            rows = [
                ResultList(None, [mark_safe("".join([cell(row) for cell in columns]))])
                for row in self.result_list
            ]
        except (_Unsupported, ObjectDoesNotExist):
            return django_result_list(self)
        headers = list(result_headers(self))
        return {
            "cl": self,
            "result_hidden_fields": [],
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": rows,
        }


def _encoded_param(encoded: dict, name, value) -> str:
    """``name=value`` as Django's ``urlencode((name, value), doseq=True)`` gives it (a list
    as one pair per item, nothing for an empty one), kept in ``encoded`` per page."""
    # With the types: 1 and True are equal keys, but encoded "1" and "True".
    key = (
        (name, list, tuple([(type(item), item) for item in value]))
        if isinstance(value, list)
        else (name, type(value), value)
    )
    try:
        piece = encoded.get(key)
    except TypeError:  # a value that is no key: encoded every time
        return django_urlencode([(name, value)], doseq=True)
    if piece is None:
        piece = encoded[key] = django_urlencode([(name, value)], doseq=True)
    return piece


# The page rows' statements of unfiltered changelists (FastLinksChangeList._kept_rows_key):
# one per model, order and page number viewed.
_KEPT_PAGE_ROWS = Memo(256, 4 << 20)


def _kept_page_rows(rows: QuerySet) -> Callable[[], tuple] | None:
    """The reader of an unfiltered page's rows, compiled once: its related rows'
    columns by subqueries (JoinlessRows: the join of the requests' people and item was
    most of PostgreSQL's time for the page, to plan), else (no related rows) the ORM's
    statement as it is (KeptRows); None for rows neither reads (not kept). It gives the
    rows of values read (JoinlessRows'; None from KeptRows) and a function making the
    objects."""
    try:
        return JoinlessRows(rows).read_rows
    except ValueError:
        pass
    try:
        kept = KeptRows(rows)
    except ValueError:
        return None

    def read():
        objects = kept(rows.db)
        return None, lambda: objects

    return read


class MadeWhenUsed(list):
    """A page's objects, made (``make()``) when first used, its length known before: a
    changelist asks for the page's length (its selection note) on every view, for its
    objects only where its table is not kept (``results_key``); making the 25 requests
    with their item and people was 0.3 ms. Every list method makes them first; C code
    that reads a list's items directly (``str.join``) would see none before."""

    def __init__(self, length: int, make: Callable[[], list]):
        super().__init__()
        self._length, self._make = length, make

    def _made(self) -> None:
        make = self.__dict__.get("_make")  # none in a copy being unpickled
        if make is not None:
            self._make = None
            list.extend(self, make())

    def __len__(self):
        return self._length if self.__dict__.get("_make") is not None else list.__len__(self)

    def __bool__(self):
        return len(self) > 0


def _made_first(name):
    method = getattr(list, name)

    def used(self, *args, **kwargs):
        self._made()
        return method(self, *args, **kwargs)

    used.__name__ = name
    return used


for _name in (
    "__iter__", "__reversed__", "__getitem__", "__setitem__", "__delitem__", "__contains__",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__iadd__",
    "__mul__", "__rmul__", "__imul__", "__repr__", "__reduce_ex__", "append", "extend",
    "insert", "remove", "pop", "clear", "index", "count", "sort", "reverse", "copy",
):  # fmt: skip
    setattr(MadeWhenUsed, _name, _made_first(_name))


# Values equal only where they render the same (a time, whatever its zone, is shown in
# the current one): not numbers of a scale (Decimal("5") == Decimal("5.00")).
_KEY_TYPES = frozenset(
    {type(None), bool, int, str, datetime.date, datetime.datetime, datetime.time, uuid.UUID}
)

_PK_MARK = "0pk0"  # a key no integer renders as, in the one place of the change URL
_OBJ_MARK = "0obj0"  # a row's name, in the one place of the checkbox's label


class _Unsupported(Exception):
    """A changelist or a row that ``results_context`` leaves to Django."""


def _escape(value) -> str:
    """``conditional_escape(value)``, as format_html applies it, without the lazy checks
    of Django's helpers on every call."""
    if isinstance(value, Promise):
        value = str(value)
    if isinstance(value, SafeData):
        return value
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _columns(cl) -> list:
    """Per column of ``cl.list_display``, row -> the cell's markup as Django's
    ``items_for_result`` makes it; _Unsupported for a column it does not cover."""
    model_admin = cl.model_admin
    empty = model_admin.get_empty_value_display()
    links = cl.list_display_links
    columns = []
    first = True  # the first link is a <th>
    for name in cl.list_display:
        if not isinstance(name, str):
            raise _Unsupported
        link = links is not None and ((first and not links) or name in links)
        tag = "th" if link and first else "td"
        first = first and not link
        if name == "action_checkbox":
            if link or type(model_admin).action_checkbox is not ModelAdmin.action_checkbox:
                raise _Unsupported
            columns.append(_checkbox_cell(model_admin))
            continue
        field = _model_field(cl.lookup_opts, name)
        classes = f"field-{name}"
        if field.auto_created:
            if field.is_relation:
                raise _Unsupported
            text = _number_text(name, empty)
        else:
            if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
                classes += " nowrap"
            if isinstance(field.remote_field, models.ManyToOneRel):
                text = _related_text(field.name, empty)
            else:
                text = _field_text(name, field, empty, link)
        start, end = f'<{tag} class="{classes}">', f"</{tag}>"
        if link:
            columns.append(_linked_cell(start, end, text, _row_url(cl)))
        else:
            columns.append(lambda row, start=start, end=end, text=text: start + text(row) + end)
    return columns


def _model_field(opts, name: str):
    """The field Django's ``lookup_field`` finds for ``name``, if it is a column of the
    model or a foreign key (not a method, path, reverse or many-to-many relation, or a
    key's ``_id`` column)."""
    try:
        field = opts.get_field(name)
    except FieldDoesNotExist:
        raise _Unsupported from None
    if not field.concrete or field.many_to_many or field.one_to_many:
        raise _Unsupported
    if field.is_relation and (field.related_model is None or field.attname == name):
        raise _Unsupported
    return field


def _number_text(name, empty):
    """The automatic primary key: ``display_for_value`` of the number; without thousand
    separators an integer's digits, as Django's number_format gives them."""
    plain = not settings.USE_THOUSAND_SEPARATOR

    def text(row):
        value = getattr(row, name)
        if plain and type(value) is int:
            return str(value)
        return _escape(display_for_value(value, empty))

    return text


def _related_text(name, empty):
    """A foreign key: its row's name, or the empty value."""

    def text(row):
        value = getattr(row, name)
        return empty if value is None else _escape(value)

    return text


def _field_text(name, field, empty, link):
    """``display_for_field``; a choice's label, escaped, from a mapping built once per
    page, not per cell; a date with its format split and its names translated once per
    page."""
    try:
        choices = dict(field.flatchoices) if getattr(field, "flatchoices", None) else None
    except TypeError:  # choices that are lists: Django makes them hashable per cell
        raise _Unsupported from None
    if choices is None and isinstance(field, models.DateField):
        return _date_text(name, field, empty, link)
    if choices is not None:
        # The labels (lazy translations) translated and escaped once per page, not per cell.
        choices = {value: _escape(label) for value, label in choices.items()}
        escaped_empty = _escape(empty)

    def text(row):
        value = getattr(row, name)
        if isinstance(value, str) and value.strip() == "":
            value = ""
        if choices is not None:
            try:
                return choices.get(value, escaped_empty)
            except TypeError:
                raise _Unsupported from None
        return _escape(display_for_field(value, field, empty, avoid_link=link))

    return text


def _date_text(name, field, empty, link):
    """``display_for_field`` of a date or a date and time: ``localize`` (of the local time)
    through a DateFormatter made once per column and page."""
    if isinstance(field, models.DateTimeField):
        formatter = DateFormatter.of("DATETIME_FORMAT")
        # template_localtime's conversion, the current time zone looked up once.
        local = get_current_timezone() if settings.USE_TZ else None

        def text(row):
            value = getattr(row, name)
            if value is None:
                return empty
            if type(value) is not datetime.datetime:
                return _escape(display_for_field(value, field, empty, avoid_link=link))
            if (
                local is not None
                and value.utcoffset() is not None
                and getattr(value, "convert_to_local_time", True)
            ):
                value = value.astimezone(local)
            return _escape(formatter(value))

        return text
    formatter = DateFormatter.of("DATE_FORMAT")

    def text(row):
        value = getattr(row, name)
        if value is None:
            return empty
        if type(value) is not datetime.date:
            return _escape(display_for_field(value, field, empty, avoid_link=link))
        return _escape(formatter(value))

    return text


def _checkbox_cell(model_admin):
    """Django's action checkbox, rendered once with marks for the key and the name."""
    html_ = model_admin.action_checkbox(_Marked())
    if html_.count(_PK_MARK) != 1 or html_.count(_OBJ_MARK) != 1:
        raise _Unsupported
    html_ = f'<td class="action-checkbox">{html_}</td>'

    def cell(row):
        if type(row.pk) is not int:
            raise _Unsupported
        return html_.replace(_PK_MARK, str(row.pk)).replace(_OBJ_MARK, html.escape(str(row)))

    return cell


class _Marked:
    pk = _PK_MARK

    def __str__(self):
        return _OBJ_MARK


def _row_url(cl):
    """Row -> its change page's URL with the list's filters, escaped: built once with a
    mark for the key, as FastLinksChangeList.url_for_result builds the URL."""
    try:
        template = cl._change_url_template()
    except NoReverseMatch:
        raise _Unsupported from None
    context = {"preserved_filters": cl.preserved_filters, "opts": cl.opts}
    template = _escape(add_preserved_filters(context, template))
    if template.count(_PK_MARK) != 1:
        raise _Unsupported
    pk_attname = cl.pk_attname

    def url(row):
        pk = getattr(row, pk_attname)
        if type(pk) is not int:
            raise _Unsupported
        return template.replace(_PK_MARK, str(pk))

    return url


def _linked_cell(start, end, text, url):
    return lambda row: f'{start}<a href="{url(row)}">{text(row)}</a>{end}'
