"""An item's change history for IT admins: the list, one old version, restoring it."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from catalogue import history
from catalogue.models import CatalogueItem
from itportal.roles import is_it_admin


def _item(request, pk) -> CatalogueItem:
    if not is_it_admin(request.user):
        raise PermissionDenied(_("Only IT administration sees the change history of items."))
    return get_object_or_404(CatalogueItem, pk=pk)


class ItemHistoryView(View):
    def get(self, request, pk):
        item = _item(request, pk)
        context = {
            "item": item,
            "entries": history.item_history(item),
            "form_entries": history.form_history(item),
        }
        return render(request, "catalogue/history.html", context)


class ItemVersionView(View):
    """One old version in full, with the button that restores it."""

    def _render(self, request, item, history_id, status=200, errors=()):
        record = get_object_or_404(item.history.select_related("history_user"), pk=history_id)
        context = {
            "item": item,
            "record": record,
            "fields": history.version_fields(record),
            "parts": history.version_parts(record),
            "errors": errors,
            "may_restore": request.user.has_perm("catalogue.change_catalogueitem"),
        }
        return render(request, "catalogue/history_version.html", context, status=status)

    def get(self, request, pk, history_id):
        return self._render(request, _item(request, pk), history_id)

    def post(self, request, pk, history_id):
        item = _item(request, pk)
        if not request.user.has_perm("catalogue.change_catalogueitem"):
            raise PermissionDenied(_("You may not change catalogue items."))
        get_object_or_404(item.history, pk=history_id)
        try:
            history.item_restore(item=item, history_id=history_id, user=request.user)
        except ValidationError as exc:
            return self._render(request, item, history_id, status=400, errors=exc.messages)
        messages.success(request, _("The old version has been restored."))
        return redirect(reverse("catalogue:item_history", args=[item.pk]))
