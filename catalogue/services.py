"""Writes of the catalogue for interfaces other than the Django admin (the API).

Validation equals the admin's: every object is ``full_clean``-ed (field validators, the
model's ``clean``, unique constraints), and a saved change raises the item's version.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.forms.models import model_to_dict
from django.utils.translation import gettext as _

from catalogue import conditions
from catalogue.models import (
    ApprovalPolicyStep,
    Bundle,
    BundleItem,
    CatalogueItem,
    Category,
    FormField,
    FormRule,
)

ITEM_M2M = ("allowed_departments", "allowed_groups")
STEP_FIELDS = ("position", "approver_kind", "group", "person_field_key", "label")


def category_save(*, category: Category | None, data: dict) -> Category:
    category = category or Category()
    for name, value in data.items():
        setattr(category, name, value)
    category.full_clean()
    category.save()
    return category


def _state(item: CatalogueItem) -> dict:
    """Everything a change of which makes a new version (search keywords change no order)."""
    state = model_to_dict(item, exclude=["id", "version", "keywords"])
    state["form_fields"] = [f.snapshot() for f in item.form_fields.all()]
    state["approval_policy"] = [s.snapshot() for s in item.approval_steps.all()]
    state["form_rules"] = [r.snapshot() for r in item.form_rules.all()]
    return state


def _replace_rows(item, model, related: str, rows: list[dict], name: str, match=None) -> dict:
    """Make the item's rows of ``model`` equal ``rows``; errors keyed ``name[index].field``.

    With ``match`` (a field name), a row whose ``match`` value exists already is updated in
    place and saved only if it changed, so the change history shows "label changed" rather
    than a delete and a create for every row at every save. Rows that are gone are deleted
    first (their keys become free); without ``match`` every row is replaced.
    """
    existing = list(getattr(item, related).all()) if match else []
    wanted = {row.get(match) for row in rows} if match else set()
    by_match = {getattr(obj, match): obj for obj in existing if getattr(obj, match) in wanted}
    gone = [obj.pk for obj in existing if getattr(obj, match) not in wanted]
    if match:
        model.objects.filter(pk__in=gone).delete()
    else:
        getattr(item, related).all().delete()
    errors: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        obj = by_match.pop(row.get(match), None) if match else None
        before = None if obj is None else _values(obj)
        if obj is None:
            obj = model(item=item, **row)
        else:
            # A row says the whole row: what it leaves out goes back to the default.
            for f in model._meta.concrete_fields:
                if f.primary_key or f.name == "item" or f.name in row or f.attname in row:
                    continue
                setattr(obj, f.attname, f.get_default())
            for field, value in row.items():
                setattr(obj, field, value)
        try:
            obj.full_clean()  # also turns the values into the field's types
        except ValidationError as exc:
            errors.update(row_errors(exc, name, index))
            continue
        if before is None or before != _values(obj):
            obj.save()  # saved one by one, so a duplicate key in ``rows`` is found
    return errors


def row_errors(exc: ValidationError, name: str, index: int) -> dict[str, list[str]]:
    """A row's validation errors keyed ``name[index].field`` (``name[index]`` for the row)."""
    return {
        f"{name}[{index}]" + ("" if field == "__all__" else f".{field}"): messages
        for field, messages in exc.message_dict.items()
    }


def _values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _in_given_order(queryset, match: str, rows: list[dict] | None) -> list:
    objects = list(queryset)
    if rows is None:
        return objects
    order = {row.get(match): index for index, row in enumerate(rows)}
    return sorted(objects, key=lambda obj: order.get(getattr(obj, match), len(order)))


@transaction.atomic
def item_save(
    *,
    item: CatalogueItem | None,
    data: dict,
    form_fields: list[dict] | None = None,
    approval_steps: list[dict] | None = None,
    form_rules: list[dict] | None = None,
) -> CatalogueItem:
    """Create or change an item with its order form, rules and approval policy, all or nothing.

    ``form_fields`` / ``approval_steps`` / ``form_rules`` replace the existing rows when given.
    """
    created = item is None
    item = item or CatalogueItem()
    before = None if created else _state(item)
    data = dict(data)
    m2m = {name: data.pop(name) for name in ITEM_M2M if name in data}
    for name, value in data.items():
        setattr(item, name, value)
    item.full_clean()
    item.save()
    for name, values in m2m.items():
        getattr(item, name).set(values)
    errors = {}
    if form_fields is not None and approval_steps is None and not created:
        # The kept steps must still fit the new form (a person field they name may be gone).
        approval_steps = [
            {name: getattr(step, name) for name in STEP_FIELDS}
            for step in ApprovalPolicyStep.objects.filter(item=item)
        ]
    if form_fields is not None:
        errors.update(
            _replace_rows(item, FormField, "form_fields", form_fields, "form_fields", match="key")
        )
    if approval_steps is not None and not errors:
        # Steps are checked against the new form (person and directory-group fields).
        errors.update(
            _replace_rows(
                item,
                ApprovalPolicyStep,
                "approval_steps",
                approval_steps,
                "approval_policy",
                match="position",
            )
        )
    if form_rules is not None and not errors:
        errors.update(
            _replace_rows(item, FormRule, "form_rules", form_rules, "form_rules", match="position")
        )
    if not errors and (form_fields is not None or form_rules is not None):
        # Conditions and rules name other fields: checked once all rows are in place, in
        # the order given, so an error's index is the row's index in the request.
        fields = _in_given_order(FormField.objects.filter(item=item), "key", form_fields)
        rules = _in_given_order(FormRule.objects.filter(item=item), "position", form_rules)
        errors.update(conditions.definition_problems(fields, rules))
    if errors:
        raise ValidationError(errors)
    item._prefetched_objects_cache = {}  # read the rows just written
    if not created and _state(item) != before:
        CatalogueItem.objects.filter(pk=item.pk).update(version=F("version") + 1)
        item.refresh_from_db(fields=["version", "updated_at"])
    return item


BUNDLE_MAX_ITEMS = 50


@transaction.atomic
def bundle_save(*, bundle: Bundle | None, data: dict, entries: list[dict]) -> Bundle:
    """Create or change a bundle and make its items equal ``entries`` (``item``,
    ``position``, ``selected``), all or nothing; errors keyed ``entries[i].field``.

    An item already in the bundle keeps its row (changed only if it changed); items left out
    are removed. The bundle grants nothing: each item stays open only to whom it is open.
    """
    bundle = bundle or Bundle()
    for name, value in data.items():
        setattr(bundle, name, value)
    bundle.full_clean()
    bundle.save()
    if not entries:
        raise ValidationError({"entries": [_("A bundle needs at least one item.")]})
    if len(entries) > BUNDLE_MAX_ITEMS:
        raise ValidationError(
            {"entries": [_("A bundle has at most %(max)s items.") % {"max": BUNDLE_MAX_ITEMS}]}
        )
    wanted = {_item_id(entry["item"]) for entry in entries}
    existing = {e.item_id: e for e in bundle.entries.all()}
    BundleItem.objects.filter(bundle=bundle).exclude(item_id__in=wanted).delete()
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        item_id = _item_id(entry["item"])
        row = existing.pop(item_id, None)
        before = None if row is None else _values(row)
        row = row or BundleItem(bundle=bundle)
        row.item_id = item_id
        row.position = entry.get("position") or 0
        row.selected = bool(entry.get("selected"))
        try:
            row.full_clean()
        except ValidationError as exc:
            errors.update(row_errors(exc, "entries", index))
            continue
        if before != _values(row):
            row.save()  # one by one, so an item named twice is found
    if errors:
        raise ValidationError(errors)
    return bundle


def _item_id(item) -> int | None:
    return getattr(item, "pk", item)
