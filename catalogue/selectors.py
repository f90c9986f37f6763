"""Reads of the catalogue and the organisation."""

import dataclasses
import functools
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.core.exceptions import EmptyResultSet, FullResultSet, PermissionDenied
from django.db import connection, connections
from django.db.models import (
    BooleanField,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Greatest
from django.http import Http404
from django.utils.translation import gettext as _

from catalogue.choices import Audience
from catalogue.models import (
    ApprovalPolicyStep,
    Bundle,
    BundleItem,
    CatalogueItem,
    Category,
    Employee,
    FormField,
    FormRule,
)
from catalogue.search import search_words, tsquery_text
from itportal.inputs import bounded_count
from itportal.roles import group_names
from itportal.statements import (
    CompiledRows,
    conditions_mark,
    kept_statement_order,
    read_with_conditions,
    split_at_conditions,
)

# How alike a search word and a word of an item's name or keywords must be to count as a typo
# of it (pg_trgm word similarity, 0..1): "Monitr"/"Monitor" 0.71, "notbook"/"Notebook" 0.6.
TYPO_SIMILARITY = 0.5


def _clean_query(query: str) -> str:
    """A search term fit for the database: at most 100 characters, no NUL bytes.

    PostgreSQL refuses NUL in text, so a crafted ``?q=%00`` would otherwise be a server error.
    """
    return (query or "").replace("\x00", "").strip()[:100]


def items_orderable_by(employee, *, query: str = "", category: Category | None = None):
    """Items the employee may order; with a query only matching ones, best match first."""
    # The search columns are the database's to match on; no page or body shows them, and
    # a tsvector per item was the largest part of reading an item.
    items = (
        CatalogueItem.objects.orderable_by(employee)
        .select_related("category")
        .defer("search_vector", "search_words")
    )
    if category is not None:
        items = items.filter(category=category)
    items = items_matching(items, query)
    if "relevance" in items.query.annotations:
        return items.order_by("-relevance", "name")
    return items.order_by("category__position", "category__name", "name")


def orderable_item_keys(user) -> list[tuple[int, int]]:
    """(id, category id) of the items ``user``'s employee may order, in no order: the rows
    of ``CatalogueItem.objects.orderable_by(user.employee)``, nothing for a user without an
    employee record (as ``orderable_by(None)``).

    One statement written once (``_orderable_keys_sql``), the user's id its only value:
    the employee, their department and the user's groups are looked up in it. The API's
    item and category lists filter by these ids (``pk__in``), where the ``orderable_by``
    query (an OR over two joins, made distinct, with the user's groups as a subquery),
    read ``user.employee`` first and was built and compiled again for the count and the
    page's rows on every view: half of the item list's view CPU, for the same few ids."""
    if not user.is_authenticated:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_orderable_keys_sql(), (user.pk, Audience.EVERYONE.value))
        return cursor.fetchall()


@functools.cache
def _orderable_keys_sql() -> str:
    """``orderable_by``'s condition as SQL: active, and open to everyone, to the employee's
    department or to one of the user's groups (each an EXISTS, so no row twice)."""
    return _orderable_sql("i.id, i.category_id")


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _orderable_sql(columns: str, joins: str = "", order: str = "") -> str:
    """``columns`` of the items ``i`` the user (the first parameter) may order, with
    ``joins`` and in ``order``; the second parameter is ``Audience.EVERYONE``."""
    departments = CatalogueItem.allowed_departments.through
    groups = CatalogueItem.allowed_groups.through
    user_groups = Employee.user.field.related_model.groups.through
    # Only table names from the models and the callers' constant SQL are interpolated;
    # the values are parameters.
    return (
        f"SELECT {columns} FROM {_table(CatalogueItem)} i{joins}"  # noqa: S608
        f" JOIN {_table(Employee)} e ON e.user_id = %s"
        " WHERE i.is_active AND (i.audience = %s"
        f" OR EXISTS (SELECT 1 FROM {_table(departments)} d"
        " WHERE d.catalogueitem_id = i.id AND d.department_id = e.department_id)"
        f" OR EXISTS (SELECT 1 FROM {_table(groups)} g JOIN {_table(user_groups)} ug"
        " ON ug.group_id = g.group_id"
        " WHERE g.catalogueitem_id = i.id AND ug.user_id = e.user_id))"
        f"{order}"
    )


@dataclasses.dataclass(frozen=True)
class Card:
    """What an item's card shows (``item_cards``)."""

    slug: str
    name: str
    summary: str
    price_once: Decimal
    price_monthly: Decimal


@dataclasses.dataclass(frozen=True)
class Section:
    """A category of the catalogue's page with the cards of its items."""

    slug: str
    name: str
    description: str
    cards: tuple[Card, ...]


def catalogue_sections(user) -> tuple[Section, ...]:
    """The categories that hold items ``user``'s employee may order, in the catalogue's
    order, each with the cards of those items (``items_orderable_by``'s, by name): plain
    values, one statement written once (``_sections_sql``), the user's id its only value.

    The page keeps its markup under these values (``catalogue_sections`` in
    catalogue/templatetags/portal.py). Building and compiling the ``orderable_by`` query
    (distinct, two joins and the user's groups) and making a model object of each item
    and its category were a third of the page's CPU."""
    if not user.is_authenticated:
        return ()
    with connection.cursor() as cursor:
        cursor.execute(_sections_sql(), (user.pk, Audience.EVERYONE.value))
        rows = cursor.fetchall()
    sections: dict[int, tuple] = {}
    for category, slug, name, description, *card in rows:
        if category not in sections:
            sections[category] = (slug, name, description, [])
        sections[category][3].append(Card(*card))
    return tuple(
        Section(slug, name, description, tuple(cards))
        for slug, name, description, cards in sections.values()
    )


@functools.cache
def _sections_sql() -> str:
    return _orderable_sql(
        "c.id, c.slug, c.name, c.description,"
        " i.slug, i.name, i.summary, i.price_once, i.price_monthly",
        f" JOIN {_table(Category)} c ON c.id = i.category_id",
        " ORDER BY c.position, c.name, i.name",
    )


def items_matching(items: QuerySet[CatalogueItem], query: str) -> QuerySet[CatalogueItem]:
    """Items that match the search, annotated with their ``relevance``.

    An item matches by German full-text search over name, keywords, summary and description
    (stemmed, so "Monitore" finds "Monitor"; each word also as a prefix, for typing), or when a
    search word is a likely typo of a word of its name or keywords ("notbook"). Relevance
    weighs the name over keywords over summary over description, plus the typo similarity.
    """
    query = _clean_query(query)
    words = search_words(query)
    if not words:
        # Only punctuation: nothing to search for, so nothing matches.
        return items.none() if query else items
    ts_query = SearchQuery(tsquery_text(words), config="german", search_type="raw")
    variants = [variant for word in words for variant in word]
    similarities = [TrigramWordSimilarity(Value(v), "search_words") for v in variants]
    similarity = similarities[0] if len(similarities) == 1 else Greatest(*similarities)
    return (
        items.annotate(
            rank=SearchRank("search_vector", ts_query),
            similarity=similarity,
        )
        # The similarity is computed, not matched with pg_trgm's ``%>`` operator: that reads
        # its threshold from a session setting, which PgBouncer in transaction mode drops.
        .filter(Q(search_vector=ts_query) | Q(similarity__gte=TYPO_SIMILARITY))
        .annotate(relevance=F("rank") + F("similarity"))
    )


def orderable_item(employee, slug: str, *, steps: bool = True) -> CatalogueItem:
    """The item to show or order, with its form and policy (``steps``: its approval steps,
    which the empty order form does not show); the page and the API share it.

    Unknown or retired: 404. Active but not open to this employee: 403, saying so.

    One read of the item by its slug, with the departments and groups it is open to, and
    ``CatalogueItem.objects.orderable_by``'s condition decided from them (``_open_to``);
    it, the form fields and the approval steps each by a statement compiled once per
    process (``_ITEM_BY_SLUG``, ``_FORM_FIELDS``, ``_APPROVAL_STEPS``). The
    ``orderable_by`` query (an OR over two joins, made distinct) and two prefetches, built
    and compiled on every view, were a third of the order page's CPU (3.5 ms), for the
    same few rows; building and compiling the item's read with its two arrays, 0.9 ms more.
    """
    item = next(iter(_ITEM_BY_SLUG(slug)), None)
    if item is None or not item.is_active:
        raise Http404(_("This service does not exist or has been retired."))
    if not _open_to(item, employee):
        raise PermissionDenied(_("This service is not available to you."))
    _keep_related(item, "form_fields", _FORM_FIELDS(item.pk, known={"item": item}))
    if steps:
        _keep_related(item, "approval_steps", _APPROVAL_STEPS(item.pk, known={"item": item}))
    return item


def _items_by_slug(slug: str) -> QuerySet[CatalogueItem]:
    through_departments = CatalogueItem.allowed_departments.through.objects.filter(
        catalogueitem=OuterRef("pk")
    )
    through_groups = CatalogueItem.allowed_groups.through.objects.filter(
        catalogueitem=OuterRef("pk")
    )
    return (
        CatalogueItem.objects.select_related("category")
        .defer("search_vector", "search_words")
        .annotate(
            allowed_department_ids=ArraySubquery(through_departments.values("department_id")),
            allowed_group_names=ArraySubquery(through_groups.values("group__name")),
        )
        .filter(slug=slug)
        .order_by()[:1]
    )


def _open_to(item: CatalogueItem, employee) -> bool:
    """``CatalogueItem.objects.orderable_by(employee)``'s condition for an active item:
    open to everyone, to the employee's department or to one of their groups (by name,
    which is unique, as the user's roles are read once per request)."""
    if employee is None:
        return False
    return (
        item.audience == Audience.EVERYONE
        or employee.department_id in item.allowed_department_ids
        or not group_names(employee.user).isdisjoint(item.allowed_group_names)
    )


# The slug's stand-in in the item's compiled read: no slug has a NUL character.
_SLUG_MARK = "\x00slug"
_ITEM_BY_SLUG = CompiledRows(CatalogueItem, _items_by_slug, mark=_SLUG_MARK, annotated=True)

# An item's form fields and approval steps (with their groups) in the models' order, as
# the prefetches read them.
_FORM_FIELDS = CompiledRows(FormField, lambda number: FormField.objects.filter(item_id=number))
_APPROVAL_STEPS = CompiledRows(
    ApprovalPolicyStep,
    lambda number: ApprovalPolicyStep.objects.filter(item_id=number).select_related("group"),
)


_FORM_RULES = CompiledRows(FormRule, lambda number: FormRule.objects.filter(item_id=number))


def item_form_rules(item: CatalogueItem) -> list[FormRule]:
    """``list(item.form_rules.all())``: prefetched if they were, else by a statement
    compiled once per process (the order form reads them on every view)."""
    if "form_rules" in getattr(item, "_prefetched_objects_cache", {}) or item.pk is None:
        return list(item.form_rules.all())
    return _FORM_RULES(item.pk, known={"item": item})


def _keep_related(item: CatalogueItem, name: str, rows: list) -> None:
    """``rows`` as ``item.<name>.all()``, as ``prefetch_related`` keeps them."""
    cache = item.__dict__.setdefault("_prefetched_objects_cache", {})
    queryset = getattr(item, name).all()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    cache[name] = queryset


def item_list_values(items: QuerySet[CatalogueItem], columns) -> QuerySet:
    """``items`` (filtered and ordered) as dicts of ``columns``, for lists built from
    values; with ``allowed_department_codes`` and ``allowed_group_names``, each sorted, read
    in the same query (two queries fewer than prefetching them), and ``parts_stamp``
    (``_parts_stamp_sql``)."""
    through_departments = CatalogueItem.allowed_departments.through.objects.filter(
        catalogueitem=OuterRef("pk")
    )
    through_groups = CatalogueItem.allowed_groups.through.objects.filter(
        catalogueitem=OuterRef("pk")
    )
    return items.prefetch_related(None).values(
        *columns,
        allowed_department_codes=ArraySubquery(
            through_departments.order_by("department__code").values("department__code")
        ),
        allowed_group_names=ArraySubquery(
            through_groups.order_by("group__name").values("group__name")
        ),
        parts_stamp=RawSQL(_parts_stamp_sql(), ()),  # noqa: S611 - table names only
    )


@functools.cache
def _parts_stamp_sql() -> str:
    """What an item's form fields, form rules and approval steps (with their groups'
    names) hold, as a text that changes with any of their columns: the MD5 of their rows
    as text. A list keeps each item's body under its columns and this stamp
    (``CatalogueItemSerializer.rows``), so it reads the parts only of items whose body it
    does not keep; the three reads and formatting them were a fifth of the list's CPU."""
    item = f"{_table(CatalogueItem)}.{connection.ops.quote_name('id')}"

    def stamp(model, row: str = "p::text", joins: str = "") -> str:
        # Only table and column names are interpolated.
        return (
            f"coalesce((SELECT md5(string_agg({row}, ' ' ORDER BY p.id))"  # noqa: S608
            f" FROM {_table(model)} p{joins} WHERE p.item_id = {item}), '')"
        )

    group = f" LEFT JOIN {_table(Group)} g ON g.id = p.group_id"
    return " || ' ' || ".join(
        (
            stamp(FormField),
            stamp(FormRule),
            stamp(ApprovalPolicyStep, "p::text || coalesce(g.name, '')", group),
        )
    )


def item_among(ids: list[int]) -> Q | Func:
    """The condition "the item is one of ``ids``" as one array parameter (``id = ANY``):
    compiled on every view for the count and the page, ``pk__in`` was a parameter per
    item, each resolved and placed apart (a tenth of the item list's CPU). No ids: the
    ORM's ``pk__in=[]``, which reads nothing."""
    if not ids:
        return Q(pk__in=[])
    # An expression of the key, not raw SQL naming the table: the pager's choice of a
    # page's ids puts the list in a subquery, where the table has another alias.
    return Func(
        F("pk"),
        Value(ids, ArrayField(IntegerField())),
        template="(%(expressions)s))",
        arg_joiner=" = ANY(",
        output_field=BooleanField(),
    )


def item_count(items: QuerySet[CatalogueItem], limit: int) -> int:
    """``bounded_count(items, limit)``: for items picked by conditions on their own columns
    alone (the employee's list: its ids and filters such as ``fulfilment_kind``), by a
    statement written once, only the conditions compiled per view; building and compiling
    the ORM's count (its rows' ids, sliced and wrapped) was an eighth of the item list's
    CPU. Any other queryset (joined, searched, distinct) is counted by ``bounded_count``."""
    # Conditions on the items' own columns alone, as a kept statement takes them (any order).
    if items.model is not CatalogueItem or kept_statement_order(items.order_by("pk")) is None:
        return bounded_count(items, limit)
    query = items.query
    try:
        where, params = query.get_compiler(using=items.db).compile(query.where)
    except EmptyResultSet:  # ``pk__in=[]``: none, as the ORM counts without a query
        return 0
    except FullResultSet:
        return bounded_count(items, limit)
    with connections[items.db].cursor() as cursor:
        # The conditions as the ORM compiled them (values as parameters), and a number.
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {_table(CatalogueItem)}"  # noqa: S608
            f" WHERE {where} LIMIT {int(limit) + 1}) counted",
            params,
        )
        return cursor.fetchone()[0]


def item_page_values(items: QuerySet[CatalogueItem], columns) -> list:
    """``item_list_values(items, columns)`` of ``items``, which pick their rows by
    conditions on the item's own columns (the pager's ``pk__in`` its chosen ids) and order
    them: the same dicts in one statement, whose part that selects, joins and orders the
    columns is compiled once per columns and order (``_item_rows_statement``); per view
    only the conditions are compiled. Building and compiling 23 columns, two joins and two
    arrays was a fifth of the item list's CPU, for the same SQL. Other querysets (joined,
    sliced, annotated, unordered) are read through the ORM."""
    order = kept_statement_order(items)
    if order is None:
        return list(item_list_values(items, columns))
    names, rows = read_with_conditions(items, _item_rows_statement(tuple(columns), order))
    return [dict(zip(names, row, strict=True)) for row in rows]


@functools.lru_cache(maxsize=64)
def _item_rows_statement(columns: tuple[str, ...], order: tuple[str, ...]) -> tuple:
    """``item_list_values`` of the items that meet a condition, in ``order``, as the ORM
    compiles it: the SQL before and after the condition and the parameters of each."""
    marked = CatalogueItem.objects.filter(conditions_mark()).order_by(*order)
    return split_at_conditions(item_list_values(marked, columns))


def item_list_parts(item_ids, *, form_fields, form_rules, approval_steps) -> dict:
    """The order forms, form rules and approval policies of the items ``item_ids`` as
    dicts of the given columns, each in its model's order, by item id: three queries for
    a list's items, as the prefetches read them. Each statement is the ORM's, compiled
    once per columns (``_item_parts_statement``): building and compiling the three
    querysets on every view was a third of the item list's CPU, for the same SQL."""
    parts = {"form_fields": {}, "form_rules": {}, "approval_steps": {}}
    ids = list(item_ids)
    if not ids:
        return parts  # as the ORM's ``item_id__in=[]``: nothing to read, no query
    reads = (
        ("form_fields", FormField, form_fields),
        ("form_rules", FormRule, form_rules),
        ("approval_steps", ApprovalPolicyStep, approval_steps),
    )
    with connection.cursor() as cursor:
        for name, model, columns in reads:
            sql, params, at = _item_parts_statement(model, tuple(columns))
            cursor.execute(sql, (*params[:at], ids, *params[at + 1 :]))
            names = [column.name for column in cursor.description]
            kept = parts[name]
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                kept.setdefault(row["item_id"], []).append(row)
    return parts


# The parameter that stands for the item ids in _item_parts_statement's SQL.
_ITEM_IDS_MARK = "item ids"


@functools.lru_cache(maxsize=16)
def _item_parts_statement(model, columns: tuple[str, ...]) -> tuple[str, tuple, int]:
    """``model``'s rows of some items as dicts of ``item_id`` and ``columns``, in the
    model's order, as the ORM compiles it; the items' ids are an array parameter (its
    place in the parameters is the third value), so one statement serves every list."""
    quote = connection.ops.quote_name
    item_id = f"{quote(model._meta.db_table)}.{quote('item_id')}"
    # Only a column's name is interpolated; the ids are a parameter.
    of_items = RawSQL(f"{item_id} = ANY(%s)", (_ITEM_IDS_MARK,), output_field=BooleanField())  # noqa: S611
    rows = model.objects.filter(of_items).values("item_id", *columns)
    sql, params = rows.query.sql_with_params()
    if params.count(_ITEM_IDS_MARK) != 1:
        raise RuntimeError("item parts: the ids' stand-in is not where expected")
    return sql, tuple(params), params.index(_ITEM_IDS_MARK)


def general_request_item(employee) -> CatalogueItem | None:
    """The item for requests the catalogue does not list, if it exists and is open to them."""
    slug = settings.PORTAL_GENERAL_REQUEST_ITEM
    if not slug:
        return None
    return CatalogueItem.objects.orderable_by(employee).filter(slug=slug).first()


# What an item's card does not show: the long texts (and the search columns, which
# items_orderable_by leaves out already).
CARD_DEFERRED = ("description", "keywords", "search_vector", "search_words")


def employees_search(query: str, *, limit: int = 20) -> QuerySet[Employee]:
    query = _clean_query(query)
    qs = Employee.objects.active().select_related("user", "department")
    if not query:
        return qs.none()
    for word in query.split()[:4]:
        qs = qs.filter(
            Q(user__first_name__icontains=word)
            | Q(user__last_name__icontains=word)
            | Q(personnel_number__istartswith=word)
        )
    return qs.order_by("user__last_name", "user__first_name")[:limit]


def items_for_editor():
    """Every item, retired ones too, for the catalogue editor's list (one query)."""
    return CatalogueItem.objects.select_related("category").order_by(
        "category__position", "category__name", "name"
    )


def bundles_active() -> QuerySet[Bundle]:
    """Bundles that can be ordered, each with its items in order."""
    entries = BundleItem.objects.select_related("item").order_by("position", "id")
    return Bundle.objects.active().prefetch_related(Prefetch("entries", queryset=entries))


def active_bundle(slug: str) -> Bundle:
    """The bundle to order, with its items and their order forms; 404 if unknown or retired."""
    entries = (
        BundleItem.objects.select_related("item")
        .prefetch_related("item__form_fields", "item__form_rules")
        .order_by("position", "id")
    )
    bundle = (
        Bundle.objects.active()
        .prefetch_related(Prefetch("entries", queryset=entries))
        .filter(slug=slug)
        .first()
    )
    if bundle is None:
        raise Http404(_("This bundle does not exist or has been retired."))
    return bundle


def orderable_item_ids(employee, item_ids) -> set[int]:
    """Which of ``item_ids`` the employee may order (one query)."""
    return set(
        CatalogueItem.objects.orderable_by(employee)
        .filter(pk__in=list(item_ids))
        .values_list("pk", flat=True)
    )
