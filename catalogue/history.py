"""The change history of catalogue items: who changed which field when, and restoring.

django-simple-history writes a row per save (``CatalogueItem.history``); the author comes from
the request (its middleware) or, for a restore, from the service. Here: reading those rows as
field-by-field changes, and the one write, restoring an old version.

An item's order form, rules, approval steps and provisioning actions are rows of their own,
each with its own history. A version of the item is one row of the item's history; the rows
that belong to it are those as they stood just before the item's next history row (every
writer saves the item first and its rows after, in one transaction: the item editor, the
provisioning-actions page, the admin, the exchange). Provisioning sits above the catalogue,
so its action model comes through the registry in ``catalogue.exchange.hooks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.db import models, transaction
from django.utils.translation import gettext as _

from catalogue.exchange import hooks
from catalogue.models import ApprovalPolicyStep, CatalogueItem, Category, FormField, FormRule
from catalogue.services import item_save

RESTORE_PREFIX = "restore:"
# The change reason of the item's history row written when only its provisioning actions
# changed (provisioning.services.item_actions_save).
ACTIONS_CHANGED = "provisioning-actions"


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
    actions_changed: bool = False  # only the provisioning actions changed


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
        entry.actions_changed = reason == ACTIONS_CHANGED
        entries.append(entry)
        previous = record
    entries.reverse()
    return entries


@dataclass
class RowEntry:
    """One saved change of an order-form field, a rule, an approval step or a provisioning
    action."""

    record: object  # a historical row
    part: str  # "form field", "rule", "approval step", "provisioning action"
    name: str
    changes: list[FieldChange] = field(default_factory=list)


def _action_model():
    registered = hooks.provisioning()
    return registered.action_model if registered is not None else None


def _parts() -> list[tuple[str, type, str]]:
    """(key, model, label) of the item's rows that have a history, in the order shown."""
    parts = [
        ("form_fields", FormField, _("form field")),
        ("form_rules", FormRule, _("rule")),
        ("approval_steps", ApprovalPolicyStep, _("approval step")),
    ]
    action_model = _action_model()
    if action_model is not None:
        parts.append(("provisioning_actions", action_model, _("provisioning action")))
    return parts


def _row_fields(model) -> list[models.Field]:
    kept = {f.name for f in model.history.model._meta.fields}
    return [
        f for f in model._meta.concrete_fields if f.name in kept and f.name not in ("id", "item")
    ]


def _row_name(record) -> str:
    """A row's name, for a historical row or (a row without history) the row itself."""
    model = getattr(record, "instance_type", type(record))
    if model is FormField:
        return f"{record.label} ({record.key})"
    if model is FormRule:
        return str(dict(FormRule._meta.get_field("kind").flatchoices).get(record.kind, record.kind))
    if model is ApprovalPolicyStep:
        kind = ApprovalPolicyStep._meta.get_field("approver_kind")
        return record.label or str(dict(kind.flatchoices).get(record.approver_kind, ""))
    # A provisioning action: what it does, and to which group.
    kind = dict(model._meta.get_field("kind").flatchoices)
    return f"{kind.get(record.kind, record.kind)} {record.target}".strip()


class _RowValues:
    """Readable values of historical rows: group names loaded once, choice labels."""

    def __init__(self, records):
        group_ids = {r.group_id for r in records if getattr(r, "group_id", None)}
        self.groups = dict(Group.objects.filter(pk__in=group_ids).values_list("pk", "name"))

    def __call__(self, record, f: models.Field) -> str:
        value = getattr(record, f.attname)
        if value is None or value == "":
            return "—"
        if f.name == "group":
            return self.groups.get(value, f"#{value}")
        if f.choices:
            return str(dict(f.flatchoices).get(value, value))
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        return str(value)


def form_history(item: CatalogueItem) -> list[RowEntry]:
    """Changes of the item's order form, rules, approval steps and provisioning actions,
    newest first, each with its fields before and after; a fixed number of queries (one per
    kind, one for groups)."""
    loaded = []
    for _key, model, part in _parts():
        records = model.history.filter(item_id=item.pk).select_related("history_user")
        loaded.append(
            (part, _row_fields(model), list(records.order_by("history_date", "history_id")))
        )
    shown = _RowValues([r for _part, _fields, records in loaded for r in records])
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


def _cutoff(record):
    """The moment up to which rows belong to the item's version ``record``: its next history
    row (exclusive), or None for the newest version (the rows as they are)."""
    return (
        record.instance_type.history.filter(id=record.id)
        .filter(
            models.Q(history_date__gt=record.history_date)
            | models.Q(history_date=record.history_date, history_id__gt=record.history_id)
        )
        .order_by("history_date", "history_id")
        .values_list("history_date", flat=True)
        .first()
    )


def version_rows(record) -> dict[str, list]:
    """The item's rows as they stood at version ``record``, per part key, in position order.

    Historical rows (``history_type`` "+" or "~") of the rows that existed then; a row that
    exists now but has no history at all (saved before its history was kept) is taken as it
    is, so a restore never deletes what the history does not know. A fixed number of
    queries: one for the cut-off, two per kind.
    """
    cutoff = _cutoff(record)
    result = {}
    for key, model, _label in _parts():
        history = model.history.filter(item_id=record.id)
        if cutoff is not None:
            history = history.filter(history_date__lt=cutoff)
        latest = {}
        for row in history.order_by("history_date", "history_id"):
            latest[row.id] = row
        rows = [row for row in latest.values() if row.history_type != "-"]
        known = set(model.history.filter(item_id=record.id).values_list("id", flat=True))
        rows.extend(model.objects.filter(item_id=record.id).exclude(pk__in=known))
        rows.sort(key=lambda row: (row.position, row.id))
        result[key] = rows
    return result


@dataclass
class VersionPart:
    """One kind of row of an old version, for the page: each row's name and its set values."""

    label: str
    rows: list[tuple[str, list[tuple[str, str]]]]


def version_parts(record) -> list[VersionPart]:
    rows_by_key = version_rows(record)
    shown = _RowValues([row for rows in rows_by_key.values() for row in rows])
    labels = {
        "form_fields": _("Order form"),
        "form_rules": _("Rules across fields"),
        "approval_steps": _("Approval steps"),
        "provisioning_actions": _("Provisioning actions"),
    }
    parts = []
    for key, model, _label in _parts():
        fields = [f for f in _row_fields(model) if f.name != "position"]
        rows = []
        for row in rows_by_key[key]:
            values = [(str(f.verbose_name), shown(row, f)) for f in fields]
            rows.append((_row_name(row), [(name, value) for name, value in values if value != "—"]))
        parts.append(VersionPart(str(labels[key]), rows))
    return parts


def version_fields(record) -> list[tuple[str, str]]:
    """(label, value) of every kept field of one old version."""
    label = _Labels([record])
    return [(str(f.verbose_name), label(record, f)) for f in tracked_fields()]


def _row_values(row, model, exclude=("id", "item")) -> dict:
    return {
        f.attname if f.name == "group" else f.name: getattr(row, f.attname)
        for f in _row_fields(model)
        if f.name not in exclude
    }


@transaction.atomic
def item_restore(*, item: CatalogueItem, history_id: int, user) -> CatalogueItem:
    """Give the item the field values of an old version, and its order form, rules, approval
    steps and provisioning actions as they stood then; recorded as a change by ``user``.

    Validated like any change (``item_save``, the actions' own save): a value no longer
    allowed (e.g. a slug another item took since) raises ValidationError and nothing is saved.
    """
    record = item.history.get(history_id=history_id)
    rows = version_rows(record)
    data = {f.attname: getattr(record, f.attname) for f in tracked_fields()}
    item._history_user = user
    item._change_reason = f"{RESTORE_PREFIX}{record.history_id}"
    item = item_save(
        item=item,
        data=data,
        form_fields=[_row_values(row, FormField) for row in rows["form_fields"]],
        form_rules=[_row_values(row, FormRule) for row in rows["form_rules"]],
        approval_steps=[_row_values(row, ApprovalPolicyStep) for row in rows["approval_steps"]],
    )
    registered = hooks.provisioning()
    if "provisioning_actions" in rows and registered is not None and registered.actions_save:
        registered.actions_save(
            item=item,
            actions=[
                _row_values(row, registered.action_model, exclude=("id", "item", "position"))
                for row in rows["provisioning_actions"]
            ],
            record=False,
        )
        item.refresh_from_db(fields=["version"])
    return item
