"""Reads of the catalogue and the organisation."""

from django.db.models import Prefetch, Q, QuerySet

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
    query = _clean_query(query)
    if query:
        items = items.filter(
            Q(name__icontains=query) | Q(summary__icontains=query) | Q(description__icontains=query)
        )
    return items.order_by("category__position", "category__name", "name")


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
