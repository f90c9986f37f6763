"""Ordering: the order page of one item, the cart and the confirmation of a joint order.

Ordering lives with the requests (it creates them); the catalogue only describes items.
"""

import copy
import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from catalogue import selectors as catalogue_selectors
from catalogue.forms import OrderForm
from catalogue.licences import licences_free
from catalogue.models import CatalogueItem
from requests_app import cart, holdings, selectors, services

# The header's cart badge reads the count from the session, so that no page pays a query
# for it; it is set at login and whenever the cart page or a cart action touches the cart.
CART_COUNT_KEY = "cart_count"


def remember_cart_count(request) -> int:
    count = selectors.cart_count(request.user)
    request.session[CART_COUNT_KEY] = count
    return count


def _employee(request):
    return getattr(request.user, "employee", None)


class OrderView(View):
    """The order form of one item; a valid post creates and submits the request."""

    template_name = "requests/order.html"

    def _item(self, request, slug, *, steps: bool = True) -> CatalogueItem:
        if _employee(request) is None:
            raise PermissionDenied(_("Only employees can order services."))
        return catalogue_selectors.orderable_item(_employee(request), slug, steps=steps)

    def _form(self, request, item, data=None):
        return OrderForm(data, item=item, requester_employee=_employee(request))

    def _context(self, request, item, form) -> dict:
        # What the orderer already has of the item: ordering it again is allowed (a second
        # device, a renewal), but should be a choice, not an oversight.
        employee = _employee(request)
        return {
            "item": item,
            "form": form,
            "licences_free": licences_free(item),
            "held": holdings.held_access(employee, item),
            "open_requests": holdings.open_requests(employee, item),
        }

    def get(self, request, slug):
        # The approval steps are recorded when a request is made (a post), not shown here.
        item = self._item(request, slug, steps=False)
        form = self._form(request, item)
        earlier = _earlier_request(request, item)
        if earlier is not None:
            form.initial.update(_initial_from(earlier, form, _employee(request)))
        form.initial.update(_initial_from_query(request.GET, form))
        context = self._context(request, item, form)
        context["earlier"] = earlier
        return render(request, self.template_name, context)

    def post(self, request, slug):
        item = self._item(request, slug)
        form = self._form(request, item, request.POST)
        if form.is_valid() and "to_cart" in request.POST:
            try:
                cart.cart_line_add(owner=request.user, item=item, form=form)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                remember_cart_count(request)
                messages.success(request, _("“%(item)s” is in your cart.") % {"item": item.name})
                return redirect("ordering:cart")
        elif form.is_valid():
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
        return render(request, self.template_name, self._context(request, item, form), status=400)


def _earlier_request(request, item):
    """The request named by ``?wie=`` if the user may see it and it was for this item."""
    number = request.GET.get("wie", "")
    if not (number.isascii() and number.isdecimal() and len(number) < 18):
        return None
    return (
        selectors.requests_visible_to(request.user)
        .filter(pk=int(number), item=item)
        .select_related("beneficiary")
        .first()
    )


# A pre-filled answer in the address (``?f_laufwerk=cn=…``, from ordering in words) is at most
# this long; everything is checked again when the form is sent.
_QUERY_VALUE_LENGTH = 2000


def _initial_from_query(query, form) -> dict:
    """Initial values named in the address: answers as ``f_<key>=`` and the colleague as
    ``fuer=<personnel number>`` (links from ordering in words and the joiner mail).

    Only fields the form has; a value too long or with control characters is left out.
    """
    initial = {}

    def fit(value: str) -> bool:
        return len(value) <= _QUERY_VALUE_LENGTH and all(
            c.isprintable() or c in "\r\n\t" for c in value
        )

    for name in query:
        if not name.startswith(form.FIELD_PREFIX) or name not in form.fields:
            continue
        values = [v for v in query.getlist(name) if v and fit(v)]
        if not values:
            continue
        multiple = isinstance(form.fields[name], forms.MultipleChoiceField)
        initial[name] = values if multiple else values[0]
    for_whom = query.get("fuer", "")
    if "beneficiary" in form.fields and for_whom and len(for_whom) <= 64 and fit(for_whom):
        initial["beneficiary"] = for_whom
    return initial


def _initial_from(earlier, form, requester_employee) -> dict:
    """The order form's initial values from an earlier request's answers ("order again").

    Only fields the item still has, in the form each field takes: a person as its personnel
    number, a directory group as its DN, a required yes/no as "yes"/"no"; everything is
    checked again when submitted.
    """
    initial = {}
    for definition in form.definitions:
        value = earlier.answers.get(definition.key)
        if value in (None, "", []):
            continue
        if isinstance(value, dict):
            # A person answer keeps the personnel number, a directory group its DN.
            value = value.get("uid") or value.get("dn")
            if not value:
                continue
        elif isinstance(value, bool) and definition.required:
            value = "yes" if value else "no"
        initial[form.FIELD_PREFIX + definition.key] = value
    if "beneficiary" in form.fields and earlier.beneficiary_id != getattr(
        requester_employee, "pk", None
    ):
        initial["beneficiary"] = earlier.beneficiary.personnel_number
    if earlier.justification:
        initial["justification"] = earlier.justification
    return initial


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _cart_rows(lines, errors: dict) -> list[dict]:
    """Each line with its answers under the field labels, from the prefetched form fields."""
    rows = []
    for line in lines:
        fields = {f.key: f for f in line.item.form_fields.all()}
        answers = [
            {
                "label": fields[key].label if key in fields else key,
                "value": value,
                "type": fields[key].field_type if key in fields else "",
            }
            for key, value in line.answers.items()
            if value not in (None, "", [])
        ]
        rows.append({"line": line, "answers": answers, "errors": errors.get(line.pk, [])})
    return rows


def _posted_ids(request) -> list[int] | None:
    """The line ids posted with the cart, or None if one is not a plain number."""
    values = request.POST.getlist("line")
    if not all(v.isascii() and v.isdecimal() and len(v) < 18 for v in values):
        return None
    return [int(v) for v in values]


class CartView(View):
    """The cart: its lines with their answers; a post submits all of them at once."""

    template_name = "requests/cart.html"

    def _render(self, request, *, errors=None, message=None, status=200):
        lines = list(selectors.cart_lines_of(request.user))
        request.session[CART_COUNT_KEY] = len(lines)
        context = {"rows": _cart_rows(lines, errors or {}), "error": message}
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self._render(request)

    def post(self, request):
        if _employee(request) is None:
            raise PermissionDenied(_("Only employees can order services."))
        line_ids = _posted_ids(request)
        if line_ids is None:
            return self._render(
                request, message=_("The cart was posted with invalid lines."), status=400
            )
        try:
            submission = cart.cart_submit(owner=request.user, line_ids=line_ids)
        except cart.CartRefused as exc:
            return self._render(request, errors=exc.lines, message=exc.message, status=400)
        remember_cart_count(request)
        messages.success(
            request,
            _("Your order #%(number)s has been placed.") % {"number": submission.pk},
        )
        return redirect(submission)


class CartLineRemoveView(View):
    def post(self, request, pk):
        try:
            cart.cart_line_remove(owner=request.user, line_id=pk)
        except PermissionDenied:
            remember_cart_count(request)
            raise
        remember_cart_count(request)
        messages.success(request, _("The item was removed from your cart."))
        return redirect("ordering:cart")


class SubmissionView(View):
    """The confirmation of a joint order: its requests, one per item."""

    def get(self, request, pk):
        submission = get_object_or_404(selectors.submissions_of(request.user), pk=pk)
        context = {
            "submission": submission,
            "requests": list(selectors.submission_requests(submission)),
        }
        return render(request, "requests/submission.html", context)


# --- bundles -----------------------------------------------------------------------------


def _date_param(value: str):
    """An ISO date from the query string (the joiner mail's ``ab``), or None."""
    if len(value) != 10 or not value.isascii():
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


class BundleListView(View):
    """The bundles an employee can order in one go (e.g. for a new colleague)."""

    def get(self, request):
        bundles = list(catalogue_selectors.bundles_active())
        return render(request, "requests/bundles.html", {"bundles": bundles})


class BundleOrderForm(forms.Form):
    """What a bundle's order page asks once for all its items: the order form's own fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in cart.SHARED_FIELDS:
            self.fields[name] = copy.deepcopy(OrderForm.base_fields[name])
        self.fields["beneficiary"].help_text = _(
            "Leave empty to order for yourself, or pick the colleague (e.g. the new one)."
        )
        self.fields["needed_from"] = forms.DateField(
            label=_("Needed from"),
            required=False,
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            help_text=_("E.g. the new colleague's first working day; empty: as soon as possible."),
        )

    def clean_needed_from(self):
        needed_from = self.cleaned_data.get("needed_from")
        if needed_from and needed_from < timezone.localdate():
            raise ValidationError(_("The date must not lie in the past."))
        return needed_from


class BundleOrderView(View):
    """One page for a bundle: who it is for once, then each item with its own form; the
    items can be deselected. A valid post orders the chosen ones in one submission."""

    template_name = "requests/bundle_order.html"

    def _setup(self, request, slug):
        employee = _employee(request)
        if employee is None:
            raise PermissionDenied(_("Only employees can order services."))
        bundle = catalogue_selectors.active_bundle(slug)
        entries = list(bundle.entries.all())
        orderable = catalogue_selectors.orderable_item_ids(employee, [e.item_id for e in entries])
        return employee, bundle, entries, orderable

    def _render(self, request, bundle, entries, orderable, *, shared, forms_by_entry, chosen,
                errors=None, message=None, status=200):  # fmt: skip
        errors = errors or {}
        rows = [
            {
                "entry": entry,
                "orderable": entry.item_id in orderable,
                "form": forms_by_entry.get(entry.pk),
                "chosen": entry.pk in chosen,
                "errors": errors.get(entry.pk, []),
                "logic_id": f"form-logic-{entry.pk}",
            }
            for entry in entries
        ]
        context = {"bundle": bundle, "form": shared, "rows": rows, "error": message}
        return render(request, self.template_name, context, status=status)

    def get(self, request, slug):
        employee, bundle, entries, orderable = self._setup(request, slug)
        forms_by_entry = {
            e.pk: cart.bundle_entry_form(e, employee) for e in entries if e.item_id in orderable
        }
        chosen = {e.pk for e in entries if e.selected and e.item_id in orderable}
        # The joiner mail links here with the new colleague (?fuer=personnel number).
        initial = {}
        for_whom = request.GET.get("fuer", "")
        if for_whom and len(for_whom) <= 50 and for_whom.isprintable():
            initial["beneficiary"] = for_whom
        needed_from = _date_param(request.GET.get("ab", ""))
        if needed_from and needed_from >= timezone.localdate():
            initial["needed_from"] = needed_from
        return self._render(
            request, bundle, entries, orderable,
            shared=BundleOrderForm(initial=initial), forms_by_entry=forms_by_entry, chosen=chosen,
        )  # fmt: skip

    def post(self, request, slug):
        employee, bundle, entries, orderable = self._setup(request, slug)
        shared = BundleOrderForm(request.POST)
        shared_valid = shared.is_valid()
        posted = request.POST.getlist("chosen")
        chosen = {int(v) for v in posted if v.isascii() and v.isdecimal() and len(v) < 18}
        if len(chosen) != len(set(posted)):
            chosen.add(-1)  # a value that is not an id: refused as an unknown item
        lines = []
        try:
            lines = cart.bundle_lines_checked(
                requester_employee=employee, bundle=bundle, chosen=chosen, data=request.POST
            )
            if not shared_valid:
                raise cart.CartRefused(_("Please correct the marked fields."))
            submission = cart.bundle_order(
                requester=request.user,
                bundle=bundle,
                lines=lines,
                needed_from=shared.cleaned_data.get("needed_from"),
            )
        except cart.CartRefused as exc:
            # The chosen items show their answers and errors; the others their empty form.
            forms_by_entry = {
                e.pk: cart.bundle_entry_form(e, employee) for e in entries if e.item_id in orderable
            }
            forms_by_entry.update({line.key: line.form for line in lines})
            return self._render(
                request, bundle, entries, orderable, shared=shared,
                forms_by_entry=forms_by_entry, chosen=chosen, errors=exc.lines,
                message=exc.message, status=400,
            )  # fmt: skip
        messages.success(
            request,
            _("Your order #%(number)s has been placed.") % {"number": submission.pk},
        )
        return redirect(submission)
