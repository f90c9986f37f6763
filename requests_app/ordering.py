"""The order page of one item: the form built from the item, submitted as a request.

Ordering lives with the requests (it creates them); the catalogue only describes items.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View

from catalogue import selectors as catalogue_selectors
from catalogue.forms import OrderForm
from catalogue.licences import licences_free
from catalogue.models import CatalogueItem
from requests_app import services


def _employee(request):
    return getattr(request.user, "employee", None)


class OrderView(View):
    """The order form of one item; a valid post creates and submits the request."""

    template_name = "requests/order.html"

    def _item(self, request, slug) -> CatalogueItem:
        if _employee(request) is None:
            raise PermissionDenied(_("Only employees can order services."))
        return catalogue_selectors.orderable_item(_employee(request), slug)

    def _form(self, request, item, data=None):
        return OrderForm(data, item=item, requester_employee=_employee(request))

    def get(self, request, slug):
        item = self._item(request, slug)
        context = {
            "item": item,
            "form": self._form(request, item),
            "licences_free": licences_free(item),
        }
        return render(request, self.template_name, context)

    def post(self, request, slug):
        item = self._item(request, slug)
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
        context = {"item": item, "form": form, "licences_free": licences_free(item)}
        return render(request, self.template_name, context, status=400)


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
