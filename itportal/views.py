"""Shared bases for the portal's list pages."""

from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from itportal.inputs import BoundedPaginator


class FilteredTableView(SingleTableMixin, FilterView):
    """A django-tables2 table over a django-filter FilterSet, paginated.

    Subclasses set ``table_class``, ``filterset_class``, ``title`` and implement
    ``get_queryset`` with a selector, so visibility is decided in one place.
    """

    template_name = "portal/table_page.html"
    # The table paginates (silently falling back to the first/last page on a bad ?page=);
    # ``paginate_by`` would make ListView paginate the same rows a second time, with its
    # own COUNT query and a 404 for ?page=abc or a page past the end.
    table_pagination = {"per_page": 25}
    title = ""
    intro = ""

    def get_table_pagination(self, table):
        # ``?per_page=`` comes from the user: -1 or 10**9 must not reach the paginator.
        pagination = super().get_table_pagination(table)
        if pagination is not False:
            pagination = {**pagination, "paginator_class": BoundedPaginator}
        return pagination

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = self.title
        context["intro"] = self.intro
        return context
