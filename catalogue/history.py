"""The change history of catalogue items: who changed which field when, and restoring.

django-simple-history writes a row per save (``CatalogueItem.history``); the author comes from
the request (its middleware) or, for a restore, from the service. Here: reading those rows as
field-by-field changes, and the one write, restoring an old version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.db import models, transaction
from django.utils.translation import gettext as _

from catalogue.models import ApprovalPolicyStep, CatalogueItem, Category, FormField, FormRule
from catalogue.services import item_save

RESTORE_PREFIX = "restore:"


def tracked_fields() -> list[models.Field]:
    """The item's own fields the history keeps (not the version, not the timestamps)."""
    kept = {f.name for f in CatalogueItem.history.model._meta.fields}
    return [f for f in CatalogueItem._meta.concrete_fields if f.name in kept and f.name != "id"]


@dataclass
class FieldChange:
    label: str
    old: str
    new: str


@dataclass
class HistoryEntry:
    record: object  # a HistoricalCatalogueItem
    changes: list[FieldChange] = field(default_factory=list)
    restored_from: object | None = None  # the record a restore brought back


class _Labels:
    """Readable values: names for foreign keys (loaded once for all rows), choice labels."""

    def __init__(self, records):
        self.names = {
            "category": dict(
                Category.objects.filter(pk__in={r.category_id for r in records}).values_list(
                    "pk", "name"
                )
            ),
            "service_owner": dict(
                Group.objects.filter(pk__in={r.service_owner_id for r in records}).values_list(
                    "pk", "name"
                )
            ),
        }

    def __call__(self, record, f: models.Field) -> str:
        value = getattr(record, f.attname)
        if value is None or value == "":
            return "—"
        if f.name in self.names:
            return self.names[f.name].get(value, f"#{value}")
        if f.choices:
            return str(dict(f.flatchoices).get(value, value))
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        return str(value)


def item_history(item: CatalogueItem) -> list[HistoryEntry]:
    """The item's changes, newest first; a fixed number of queries, however long the history."""
    records = list(
        item.history.select_related("history_user").order_by("history_date", "history_id")
    )
    label = _Labels(records)
    fields = tracked_fields()
    by_id = {r.history_id: r for r in records}
    entries: list[HistoryEntry] = []
    previous = None
    for record in records:
        entry = HistoryEntry(record=record)
        for f in fields:
            new = label(record, f)
            old = label(previous, f) if previous is not None else ""
            if previous is None or old != new:
                entry.changes.append(FieldChange(str(f.verbose_name), old, new))
        reason = record.history_change_reason or ""
        if reason.startswith(RESTORE_PREFIX):
            entry.restored_from = by_id.get(int(reason.removeprefix(RESTORE_PREFIX) or 0))
        entries.append(entry)
        previous = record
    entries.reverse()
    return entries


@dataclass
class RowEntry:
    """One saved change of an order-form field, a rule or an approval step."""

    record: object  # a historical row
    part: str  # "form field", "rule", "approval step"
    name: str
    changes: list[FieldChange] = field(default_factory=list)


def _row_name(record) -> str:
    if isinstance(record, FormField.history.model):
        return f"{record.label} ({record.key})"
    if isinstance(record, FormRule.history.model):
        return str(dict(FormRule._meta.get_field("kind").flatchoices).get(record.kind, record.kind))
    kind = ApprovalPolicyStep._meta.get_field("approver_kind")
    return record.label or str(dict(kind.flatchoices).get(record.approver_kind, ""))


def form_history(item: CatalogueItem) -> list[RowEntry]:
    """Changes of the item's order form, rules and approval steps, newest first, each with
    its fields before and after; a fixed number of queries (one per kind, one for groups)."""
    parts = (
        (FormField, _("form field")),
        (FormRule, _("rule")),
        (ApprovalPolicyStep, _("approval step")),
    )
    loaded = []
    for model, part in parts:
        kept = {f.name for f in model.history.model._meta.fields}
        fields = [
            f
            for f in model._meta.concrete_fields
            if f.name in kept and f.name not in ("id", "item")
        ]
        records = model.history.filter(item_id=item.pk).select_related("history_user")
        loaded.append((part, fields, list(records.order_by("history_date", "history_id"))))
    group_ids = {
        r.group_id for _part, _fields, records in loaded for r in records if hasattr(r, "group_id")
    }
    groups = dict(Group.objects.filter(pk__in=group_ids).values_list("pk", "name"))

    def shown(record, f) -> str:
        value = getattr(record, f.attname)
        if value is None or value == "":
            return "—"
        if f.name == "group":
            return groups.get(value, f"#{value}")
        if f.choices:
            return str(dict(f.flatchoices).get(value, value))
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        return str(value)

    entries = []
    for part, fields, records in loaded:
        last = {}
        for record in records:
            previous = last.get(record.id)
            entry = RowEntry(record=record, part=str(part), name=_row_name(record))
            for f in fields:
                new = shown(record, f)
                if record.history_type == "+" and new != "—":
                    entry.changes.append(FieldChange(str(f.verbose_name), "", new))
                elif record.history_type == "~" and previous is not None:
                    old = shown(previous, f)
                    if old != new:
                        entry.changes.append(FieldChange(str(f.verbose_name), old, new))
            last[record.id] = record
            if record.history_type != "~" or entry.changes:
                entries.append(entry)
    entries.sort(key=lambda e: (e.record.history_date, e.record.history_id), reverse=True)
    return entries


def version_fields(record) -> list[tuple[str, str]]:
    """(label, value) of every kept field of one old version."""
    label = _Labels([record])
    return [(str(f.verbose_name), label(record, f)) for f in tracked_fields()]


@transaction.atomic
def item_restore(*, item: CatalogueItem, history_id: int, user) -> CatalogueItem:
    """Give the item the field values of an old version; recorded as a change by ``user``.

    Validated like any change (``item_save``): a value no longer allowed (e.g. a slug another
    item took since) raises ValidationError and nothing is saved. Order form and approval
    steps are not part of the item's history and stay as they are.
    """
    record = item.history.get(history_id=history_id)
    data = {f.attname: getattr(record, f.attname) for f in tracked_fields()}
    item._history_user = user
    item._change_reason = f"{RESTORE_PREFIX}{record.history_id}"
    return item_save(item=item, data=data)
