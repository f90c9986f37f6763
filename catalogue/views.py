"""Catalogue pages: browse and look at an item (ordering is requests_app's)."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views import View
from django.views.generic import TemplateView

from catalogue import selectors
from catalogue.licences import licences_free
from catalogue.models import Category


def _employee(request):
    employee = getattr(request.user, "employee", None)
    return employee


class CatalogueIndexView(TemplateView):
    template_name = "catalogue/index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.get("q", "")[:100]
        employee = _employee(self.request)
        context["query"] = query
        if query.strip():
            # Search results: one list, best match first, instead of the categories.
            context["results"] = list(selectors.items_orderable_by(employee, query=query))
            if not context["results"]:
                context["general_request"] = selectors.general_request_item(employee)
                context["service_desk_phone"] = settings.PORTAL_SERVICE_DESK_PHONE
                context["service_desk_email"] = settings.PORTAL_SERVICE_DESK_EMAIL
        else:
            context["sections"] = selectors.catalogue_sections(self.request.user)
        context["has_employee"] = employee is not None
        return context


class CategoryView(TemplateView):
    template_name = "catalogue/category.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        category = get_object_or_404(Category, slug=kwargs["slug"])
        context["category"] = category
        context["items"] = selectors.items_orderable_by(
            _employee(self.request), category=category
        ).defer(*selectors.CARD_DEFERRED)
        return context


class ItemDetailView(View):
    def get(self, request, slug):
        item = selectors.orderable_item(_employee(request), slug)
        context = {"item": item, "licences_free": licences_free(item)}
        return render(request, "catalogue/item_detail.html", context)


class PeopleSearchView(View):
    """Employee picker data: name, personnel number and department, at most 20."""

    def get(self, request):
        people = selectors.employees_search(request.GET.get("q", ""))
        return JsonResponse(
            {
                "results": [
                    {
                        "uid": e.personnel_number,
                        "name": e.display_name,
                        "department": e.department.name,
                        "label": f"{e.display_name} ({e.personnel_number})",
                    }
                    for e in people
                ]
            }
        )
