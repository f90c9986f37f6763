"""Catalogue pages: browse, look at an item, order it."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from catalogue import selectors
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem, Category
from provisioning.selectors import with_licence_usage
from requests_app import services


def _employee(request):
    employee = getattr(request.user, "employee", None)
    return employee


class CatalogueIndexView(TemplateView):
    template_name = "catalogue/index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.get("q", "")[:100]
        context["query"] = query
        context["categories"] = selectors.categories_with_items(
            _employee(self.request), query=query
        )
        context["has_employee"] = _employee(self.request) is not None
        return context


class CategoryView(TemplateView):
    template_name = "catalogue/category.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        category = get_object_or_404(Category, slug=kwargs["slug"])
        context["category"] = category
        context["items"] = selectors.items_orderable_by(_employee(self.request), category=category)
        return context


def _orderable_item(request, slug) -> CatalogueItem:
    return selectors.orderable_item(_employee(request), slug)


def _licences_free(item: CatalogueItem) -> int | None:
    """Free licences of the item's pool (None: no pool). Used counts held and reserved ones.

    An exhausted pool does not block orders: the page says so, and IT administration frees
    or buys a licence before fulfilling (the controlling page "Licence pools" warns them).
    """
    if item.licence_pool_size is None:
        return None
    held, reserved = (
        with_licence_usage(CatalogueItem.objects.filter(pk=item.pk))
        .values_list("licences_in_use", "licences_reserved")
        .get()
    )
    return max(item.licence_pool_size - held - reserved, 0)


class ItemDetailView(View):
    def get(self, request, slug):
        item = _orderable_item(request, slug)
        context = {"item": item, "licences_free": _licences_free(item)}
        return render(request, "catalogue/item_detail.html", context)


class OrderView(View):
    """The order form of one item; a valid post creates and submits the request."""

    template_name = "catalogue/order.html"

    def _form(self, request, item, data=None):
        return OrderForm(data, item=item, requester_employee=_employee(request))

    def get(self, request, slug):
        if _employee(request) is None:
            raise PermissionDenied(_("Only employees can order services."))
        item = _orderable_item(request, slug)
        context = {
            "item": item,
            "form": self._form(request, item),
            "licences_free": _licences_free(item),
        }
        return render(request, self.template_name, context)

    def post(self, request, slug):
        if _employee(request) is None:
            raise PermissionDenied(_("Only employees can order services."))
        item = _orderable_item(request, slug)
        form = self._form(request, item, request.POST)
        if form.is_valid():
            try:
                service_request = services.request_create(
                    requester=request.user,
                    item=item,
                    item_version=form.cleaned_data["item_version"],
                    beneficiary=form.cleaned_data["beneficiary"],
                    cost_centre=form.cleaned_data["cost_centre"],
                    answers=form.answers,
                    justification=form.cleaned_data["justification"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("Your request #%(number)s has been placed.") % {"number": service_request.pk},
                )
                return redirect(service_request)
        if form.has_error("item_version"):
            # Stale, forged, missing or changed while saving: show the form with the
            # user's answers and the version now in the database, so the next post is current.
            current = CatalogueItem.objects.filter(pk=item.pk).values_list("version", flat=True)
            data = request.POST.copy()
            data["item_version"] = current.first() or item.version
            form.data = data
        context = {"item": item, "form": form, "licences_free": _licences_free(item)}
        return render(request, self.template_name, context, status=400)


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


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
