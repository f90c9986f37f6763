"""Writes on the cart and on joint orders: several items ordered in one submission.

A cart line keeps the order form as it was posted; submitting builds each line's form again
from the item as it is now and validates it like the order page does. Only when every line
is valid are the requests created, all in one transaction, one per line, through
``services.request_create``: a failing line leaves nothing behind and says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _

from catalogue import selectors as catalogue_selectors
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem
from requests_app import notifications, services
from requests_app.models import CART_MAX_LINES, CartLine, Submission


class CartRefused(Exception):
    """Nothing was saved. ``message`` says why in general, ``lines`` per line (line key →
    messages; the key is a cart line's id, or a bundle item's id)."""

    def __init__(self, message: str, lines: dict | None = None):
        super().__init__(message)
        self.message = message
        self.lines = lines or {}


@dataclass
class OrderLine:
    """One request to place: the item and its valid order form. ``key`` names the line in
    errors (a cart line's id, a bundle item's id)."""

    key: int
    item: CatalogueItem
    form: OrderForm
    errors: list[str] = field(default_factory=list)
    closed: bool = False  # the item is not open to the orderer (its form was not checked)


# The fields a bundle's order page asks once for all its items.
SHARED_FIELDS = ("beneficiary", "cost_centre", "justification")


def _named_messages(form: OrderForm) -> list[tuple[str, str]]:
    """(field name, sentence naming the field) for each of the form's errors."""
    messages = []
    for name, errors in form.errors.items():
        for error in errors:
            if name == "__all__" or name not in form.fields:
                messages.append((name, str(error)))
            else:
                messages.append((name, f"{form.fields[name].label}: {error}"))
    return messages


def form_messages(form: OrderForm) -> list[str]:
    """The form's errors as sentences, each naming its field, for a message per line."""
    return [message for _name, message in _named_messages(form)]


def _exception_messages(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    return [str(exc) or _("You may not order this service.")]


def posted_form_data(form: OrderForm) -> dict[str, list[str]]:
    """The raw values the browser posted for the form's fields, keyed by field name."""
    data = {}
    for name in form.fields:
        values = form.data.getlist(form.add_prefix(name)) if hasattr(form.data, "getlist") else []
        if values:
            data[name] = [str(value) for value in values]
    return data


def cart_line_add(*, owner, item: CatalogueItem, form: OrderForm) -> CartLine:
    """Put an item with its validated order form into ``owner``'s cart."""
    if not form.is_valid():
        raise ValidationError(_("The order form has errors."))
    with transaction.atomic():
        # Counted under a lock of the owner's lines, so two tabs cannot overfill the cart.
        count = len(CartLine.objects.select_for_update().filter(owner=owner).values_list("pk"))
        if count >= CART_MAX_LINES:
            raise ValidationError(
                _("Your cart holds at most %(max)s items; please submit it first.")
                % {"max": CART_MAX_LINES}
            )
        return CartLine.objects.create(
            owner=owner,
            item=item,
            beneficiary=form.cleaned_data["beneficiary"],
            form_data=posted_form_data(form),
            answers=form.answers,
        )


def cart_line_remove(*, owner, line_id: int) -> None:
    deleted, _rows = CartLine.objects.filter(owner=owner, pk=line_id).delete()
    if not deleted:
        raise PermissionDenied(_("This is not a line of your cart."))


def submission_place(
    *, requester, lines: list[OrderLine], bundle=None, needed_from=None
) -> Submission:
    """Create one request per valid line, all or none, and one confirmation to the requester.

    Raises CartRefused naming the line that the request service refused (the item changed
    or closed since the form was checked); the transaction is then rolled back.
    """
    if not lines:
        raise CartRefused(_("There is nothing to order."))
    with transaction.atomic():
        submission = Submission.objects.create(requester=requester, bundle=bundle)
        for line in lines:
            data = line.form.cleaned_data
            try:
                services.request_create(
                    requester=requester,
                    item=line.item,
                    item_version=data["item_version"],
                    beneficiary=data["beneficiary"],
                    cost_centre=data["cost_centre"],
                    answers=line.form.answers,
                    justification=data["justification"],
                    submission=submission,
                    needed_from=needed_from,
                )
            except (ValidationError, PermissionDenied) as exc:
                raise CartRefused(
                    _("Nothing was ordered: please correct the marked items."),
                    {line.key: _exception_messages(exc)},
                ) from exc
        notifications.notify_submission(submission)
    return submission


def cart_lines_checked(*, owner, line_ids: list[int]) -> list[OrderLine]:
    """The owner's cart lines, each with its order form built again and validated.

    ``line_ids`` are the lines the user saw: a line of someone else, an unknown one or a
    cart changed in another tab is refused, so nobody orders what they did not see.
    """
    employee = getattr(owner, "employee", None)
    if employee is None:
        raise PermissionDenied(_("Only employees can order services."))
    lines = list(
        CartLine.objects.filter(owner=owner).select_related("item").order_by("created_at", "id")
    )
    if not lines:
        raise CartRefused(_("Your cart is empty."))
    if sorted(set(line_ids)) != sorted(line.pk for line in lines) or len(line_ids) != len(lines):
        raise CartRefused(
            _("Your cart has changed in the meantime. Please check it and submit it again.")
        )
    orderable = set(
        CatalogueItem.objects.orderable_by(employee)
        .filter(pk__in=[line.item_id for line in lines])
        .values_list("pk", flat=True)
    )
    checked = []
    for line in lines:
        form = OrderForm(
            MultiValueDict(line.form_data), item=line.item, requester_employee=employee
        )
        order_line = OrderLine(key=line.pk, item=line.item, form=form)
        if line.item_id not in orderable:
            order_line.errors.append(_("This service can no longer be ordered."))
        elif not form.is_valid():
            order_line.errors.extend(form_messages(form))
            if form.has_error("item_version"):
                order_line.errors.append(_("Please remove this item and add it again."))
        checked.append(order_line)
    return checked


def cart_submit(*, owner, line_ids: list[int]) -> Submission:
    """Order everything in the cart at once and empty it; all or nothing."""
    lines = cart_lines_checked(owner=owner, line_ids=line_ids)
    errors = {line.key: line.errors for line in lines if line.errors}
    if errors:
        raise CartRefused(_("Nothing was ordered: please correct the marked items."), errors)
    with transaction.atomic():
        # Lock the lines: a second click (another tab) waits here and then finds them gone.
        locked = list(
            CartLine.objects.select_for_update()
            .filter(owner=owner, pk__in=[line.key for line in lines])
            .values_list("pk", flat=True)
        )
        if len(locked) != len(lines):
            raise CartRefused(
                _("Your cart has changed in the meantime. Please check it and submit it again.")
            )
        submission = submission_place(requester=owner, lines=lines)
        CartLine.objects.filter(pk__in=locked).delete()
    return submission


def bundle_lines_checked(
    *, requester_employee, bundle, chosen: set[int], data: QueryDict
) -> list[OrderLine]:
    """The chosen items of a bundle, each with its order form validated.

    ``data`` is the posted page: the shared fields once (for whom, cost centre,
    justification), each item's own answers under the prefix ``e<entry id>``. Every item keeps
    its own rules (self-only, who may order it). An unknown entry id is refused.
    """
    entries = {entry.pk: entry for entry in bundle.entries.all()}
    unknown = chosen - set(entries)
    if unknown:
        raise CartRefused(_("The bundle has no such item."))
    if not chosen:
        raise CartRefused(_("Choose at least one item of the bundle."))
    orderable = catalogue_selectors.orderable_item_ids(
        requester_employee, [entries[pk].item_id for pk in chosen]
    )
    lines = []
    for pk, entry in entries.items():
        if pk not in chosen:
            continue
        form = bundle_entry_form(entry, requester_employee, data)
        line = OrderLine(key=pk, item=entry.item, form=form)
        if entry.item_id not in orderable:
            line.closed = True
            line.errors.append(_("This service is not available to you."))
        elif not form.is_valid():
            shared = {form.add_prefix(name) for name in SHARED_FIELDS} | set(SHARED_FIELDS)
            line.errors.extend(
                message for name, message in _named_messages(form) if name not in shared
            )
        lines.append(line)
    return lines


def bundle_entry_form(entry, requester_employee, data: QueryDict | None = None) -> OrderForm:
    """One bundle item's order form; the shared answers of the page are copied into it."""
    prefix = f"e{entry.pk}"
    if data is not None:
        data = data.copy()
        for name in SHARED_FIELDS:
            data.setlist(f"{prefix}-{name}", data.getlist(name))
    return OrderForm(data, item=entry.item, requester_employee=requester_employee, prefix=prefix)


def bundle_order(*, requester, bundle, lines: list[OrderLine], needed_from=None) -> Submission:
    """Order the chosen items of a bundle in one submission; all or nothing.

    ``needed_from``: when the beneficiary needs them (a joiner's first working day)."""
    errors = {line.key: line.errors for line in lines if line.errors}
    if errors:
        raise CartRefused(_("Nothing was ordered: please correct the marked items."), errors)
    return submission_place(
        requester=requester, lines=lines, bundle=bundle, needed_from=needed_from
    )
