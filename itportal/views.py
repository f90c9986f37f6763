"""Shared bases for the portal's list pages."""

from django_filters.views import FilterView
from django_tables2 import SingleTableMixin


class FilteredTableView(SingleTableMixin, FilterView):
    """A django-tables2 table over a django-filter FilterSet, paginated.

    Subclasses set ``table_class``, ``filterset_class``, ``title`` and implement
    ``get_queryset`` with a selector, so visibility is decided in one place.
    """

    template_name = "portal/table_page.html"
    paginate_by = 25
    title = ""
    intro = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = self.title
        context["intro"] = self.intro
        return context
