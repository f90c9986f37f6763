"""Shared bases for the portal's pages: filtered table lists, the IT-admin gate; the city's
colours as a stylesheet."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.http import require_GET
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from itportal import branding
from itportal.exceptions import ActionConflict
from itportal.inputs import BoundedPaginator, queryset_of
from itportal.roles import is_it_admin
from itportal.statements import count_with_conditions
from itportal.tables import TiesBrokenData


class FilteredTableView(SingleTableMixin, FilterView):
    """A django-tables2 table over a django-filter FilterSet, paginated.

    Subclasses set ``table_class``, ``filterset_class``, ``title`` and a ``selector``
    (user → queryset) or their own ``get_queryset`` with one, so visibility is decided in
    one place.
    """

    template_name = "portal/table_page.html"
    # The table paginates (silently falling back to the first/last page on a bad ?page=);
    # ``paginate_by`` would make ListView paginate the same rows a second time, with its
    # own COUNT query and a 404 for ?page=abc or a page past the end.
    table_pagination = {"per_page": 25}
    title = ""
    intro = ""
    selector = None
    # A method (queryset -> queryset) for a table whose rows are values (dicts): it reads
    # the page's rows from the filtered, sorted queryset (BoundedPaginator's ``read``).
    read_page_rows = None
    # A method (queryset -> querysets) for a list whose rows are the union of parts, each
    # read along its own index (BoundedPaginator's ``parts``).
    page_parts = None

    def get_queryset(self):
        if self.selector is None:
            return super().get_queryset()
        return self.selector(self.request.user)

    def get_table_data(self):
        # Pages of a sorted list must not share or skip rows: ties broken by the id.
        data = super().get_table_data()
        return TiesBrokenData(data) if isinstance(data, QuerySet) else data

    def get_table_pagination(self, table):
        # ``?per_page=`` comes from the user: -1 or 10**9 must not reach the paginator.
        pagination = super().get_table_pagination(table)
        if pagination is not False:
            pagination = {**pagination, "paginator_class": BoundedPaginator}
            if self.read_page_rows is not None:
                pagination["read"] = self.read_page_rows
            if self.page_parts is not None:
                pagination["parts"] = self.page_parts
        return pagination

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = self.title
        context["intro"] = self.intro
        return context


class ConditionsCountedMixin:
    """For a FilteredTableView whose rows are mostly filtered on their own table's columns:
    the list counted by its conditions alone (``itportal.statements.count_with_conditions``),
    the paginator given the number (``counted``); other filters counted as usual."""

    def get_table_pagination(self, table):
        pagination = super().get_table_pagination(table)
        rows = queryset_of(table.data)
        if pagination is not False and rows is not None:
            counted = count_with_conditions(rows, BoundedPaginator.count_limit)
            if counted is not None:
                pagination = {**pagination, "counted": counted}
        return pagination


class ItAdminRequiredMixin:
    """Only IT administration opens the view; everyone else gets 403 with ``denied_message``."""

    denied_message = _("Only IT administration may open this page.")

    def dispatch(self, request, *args, **kwargs):
        if not is_it_admin(request.user):
            raise PermissionDenied(self.denied_message)
        return super().dispatch(request, *args, **kwargs)


class RowActionView(View):
    """A POST that acts on one row the user may see (``selector``); ``act`` does it through
    a service and returns the success message, a conflict becomes an error message."""

    selector = None

    def act(self, row) -> str:
        raise NotImplementedError

    def success_url(self, row) -> str:
        raise NotImplementedError

    def post(self, request, pk):
        row = get_object_or_404(self.selector(request.user), pk=pk)
        try:
            message = self.act(row)
        except ActionConflict as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, message)
        return redirect(self.success_url(row))


@require_GET
@login_not_required  # the login page wears the city's colours too
def branding_css(request):
    """KERN's action colour set to the city's (itportal/branding.py); the URL carries a
    version (``BRANDING_CSS_VERSION``), so the file may be cached for long."""
    response = HttpResponse(
        branding.stylesheet(settings.PORTAL_BRAND_COLOUR, settings.PORTAL_BRAND_ON_COLOUR),
        content_type="text/css; charset=utf-8",
    )
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@login_not_required
def favicon(request):
    """/favicon.ico, for clients that ask for it although pages name the SVG icon."""
    return redirect(static("favicon.svg"), permanent=True)
