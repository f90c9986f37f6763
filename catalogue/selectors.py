"""Reads of the catalogue and the organisation."""

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from catalogue.models import CatalogueItem, Category, Employee


def _clean_query(query: str) -> str:
    """A search term fit for the database: at most 100 characters, no NUL bytes.

    PostgreSQL refuses NUL in text, so a crafted ``?q=%00`` would otherwise be a server error.
    """
    return (query or "").replace("\x00", "").strip()[:100]


def items_orderable_by(employee, *, query: str = "", category: Category | None = None):
    items = CatalogueItem.objects.orderable_by(employee).select_related("category")
    if category is not None:
        items = items.filter(category=category)
    return items_matching(items, query).order_by("category__position", "category__name", "name")


def items_matching(items: QuerySet[CatalogueItem], query: str) -> QuerySet[CatalogueItem]:
    """Items whose name, summary or description contains the search term."""
    query = _clean_query(query)
    if not query:
        return items
    return items.filter(
        Q(name__icontains=query) | Q(summary__icontains=query) | Q(description__icontains=query)
    )


def orderable_item(employee, slug: str) -> CatalogueItem:
    """The item to show or order, with its form and policy; the page and the API share it.

    Unknown or retired: 404. Active but not open to this employee: 403, saying so.
    """
    item = (
        items_orderable_by(employee)
        .prefetch_related("form_fields", "approval_steps__group")
        .filter(slug=slug)
        .first()
    )
    if item is None:
        known = CatalogueItem.objects.filter(slug=slug).first()
        if known is None or not known.is_active:
            raise Http404(_("This service does not exist or has been retired."))
        raise PermissionDenied(_("This service is not available to you."))
    return item


def categories_with_items(employee, *, query: str = "") -> list[Category]:
    """Categories that hold at least one item the employee may order, items prefetched."""
    items = items_orderable_by(employee, query=query)
    categories = (
        Category.objects.filter(items__in=items.values("pk"))
        .distinct()
        .prefetch_related(Prefetch("items", queryset=items, to_attr="visible_items"))
    )
    return list(categories)


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
