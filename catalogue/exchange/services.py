"""Export and import of catalogue items (writes only in ``catalogue_import``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q
from django.urls import reverse
from django.utils.translation import gettext as _

from catalogue.exchange import FORMAT_VERSION, hooks
from catalogue.exchange import fields as f
from catalogue.exchange import placeholders as ph
from catalogue.exchange.validation import (
    ExchangeError,
    Problem,
    check_document,
    fail,
    used_placeholders,
)
from catalogue.models import (
    ApprovalPolicyStep,
    Bundle,
    BundleItem,
    CatalogueItem,
    Category,
    Department,
    FormField,
    FormRule,
)

SKIP, UPDATE, RENAME = "skip", "update", "rename"
CONFLICT_POLICIES = (SKIP, UPDATE, RENAME)


def _actions_of(item) -> list:
    if hooks.provisioning() is None:
        return []
    return sorted(item.provisioning_actions.all(), key=lambda a: a.position)


# --- export ------------------------------------------------------------------------------


def _dn_token(collector, template: str, whole_kind: str, suffix_kind: str):
    """A template with its directory names replaced by placeholder tokens."""
    if not template or ph.TEMPLATE.fullmatch(template.strip()):
        return template
    if ph.parse_literal_dn(template) is not None and (
        whole_kind == ph.DIRECTORY_GROUP or ph.looks_like_dn(template)
    ):
        return ph.Token(collector.use(whole_kind, template))
    split = ph.split_templated_dn(template)
    if split:
        prefix, suffix = split
        return ph.Token(collector.use(suffix_kind, suffix), prefix=f"{prefix},")
    return template


def _export_action(collector, action) -> dict:
    lines = hooks.provisioning().parse_attributes(action.attributes)
    return {
        **f.dump(action, f.PROVISIONING_ACTION_FIELDS),
        "target": _dn_token(
            collector, action.target.strip(), ph.DIRECTORY_GROUP, ph.DIRECTORY_BASE
        ),
        "attributes": [
            {
                "attribute": name,
                "template": _dn_token(collector, value, ph.DIRECTORY_DN, ph.DIRECTORY_DN),
            }
            for name, value in lines.items()
        ],
    }


def catalogue_export(*, category_slugs=(), item_slugs=()) -> dict:
    """The exchange document for all items, or for the named categories and items.

    Deterministic: the same catalogue gives the same document (ordered by slug, position
    and key; placeholder names derived from the local values).
    """
    related = [
        "allowed_departments",
        "allowed_groups",
        "form_fields",
        "form_rules",
        "approval_steps__group",
    ]
    if hooks.provisioning() is not None:
        related.append("provisioning_actions")
    items = CatalogueItem.objects.select_related("category", "service_owner").prefetch_related(
        *related
    )
    categories = Category.objects.all()
    if category_slugs or item_slugs:
        known_categories = set(
            Category.objects.filter(slug__in=category_slugs).values_list("slug", flat=True)
        )
        known_items = set(
            CatalogueItem.objects.filter(slug__in=item_slugs).values_list("slug", flat=True)
        )
        unknown = [s for s in category_slugs if s not in known_categories]
        unknown += [s for s in item_slugs if s not in known_items]
        if unknown:
            raise fail(_("Unknown category or item: %(slugs)s") % {"slugs": ", ".join(unknown)})
        items = items.filter(Q(category__slug__in=category_slugs) | Q(slug__in=item_slugs))
        categories = categories.filter(
            Q(slug__in=category_slugs) | Q(items__slug__in=item_slugs)
        ).distinct()

    collector = ph.Collector()
    exported_items = []
    for item in sorted(items, key=lambda i: i.slug):
        data = f.dump(item, f.ITEM_FIELDS)
        data["category"] = item.category.slug
        data["service_owner"] = ph.Token(collector.use(ph.GROUP, item.service_owner.name))
        data["allowed_departments"] = [
            ph.Token(collector.use(ph.DEPARTMENT, d.code, d.name))
            for d in sorted(item.allowed_departments.all(), key=lambda d: d.code)
        ]
        data["allowed_groups"] = [
            ph.Token(collector.use(ph.GROUP, g.name))
            for g in sorted(item.allowed_groups.all(), key=lambda g: g.name)
        ]
        data["form_fields"] = [
            {
                **f.dump(field, f.FORM_FIELD_FIELDS),
                "directory_base": ph.Token(collector.use(ph.DIRECTORY_BASE, field.directory_base))
                if field.directory_base
                else "",
            }
            for field in sorted(item.form_fields.all(), key=lambda x: (x.position, x.key))
        ]
        data["form_rules"] = [
            f.dump(rule, f.FORM_RULE_FIELDS)
            for rule in sorted(item.form_rules.all(), key=lambda r: (r.position, r.pk))
        ]
        data["approval_steps"] = [
            {
                **f.dump(step, f.APPROVAL_STEP_FIELDS),
                "group": ph.Token(collector.use(ph.GROUP, step.group.name)) if step.group else None,
            }
            for step in sorted(item.approval_steps.all(), key=lambda s: s.position)
        ]
        data["provisioning_actions"] = [
            _export_action(collector, action) for action in _actions_of(item)
        ]
        exported_items.append(data)

    names = collector.names()
    return {
        "$schema": settings.PORTAL_BASE_URL.rstrip("/") + reverse("catalogue:exchange:schema"),
        "format_version": FORMAT_VERSION,
        "source": settings.PORTAL_CITY_NAME,
        "placeholders": collector.declarations(names),
        "categories": [
            f.dump(c, f.CATEGORY_FIELDS) for c in sorted(categories, key=lambda c: c.slug)
        ],
        "items": ph.resolve_tokens(exported_items, names),
        "bundles": _export_bundles(
            {data["slug"] for data in exported_items},
            whole_catalogue=not (category_slugs or item_slugs),
        ),
    }


def _export_bundles(item_slugs: set[str], *, whole_catalogue: bool) -> list[dict]:
    """All bundles; for a part of the catalogue, those whose items are all in the part, so
    that the document names no item it does not carry."""
    entries = BundleItem.objects.select_related("item").order_by("position", "id")
    bundles = Bundle.objects.prefetch_related(Prefetch("entries", queryset=entries))
    exported = []
    for bundle in sorted(bundles, key=lambda b: b.slug):
        bundle_entries = list(bundle.entries.all())
        if not whole_catalogue and not all(e.item.slug in item_slugs for e in bundle_entries):
            continue
        exported.append(
            {
                **f.dump(bundle, f.BUNDLE_FIELDS),
                "items": [
                    {"item": e.item.slug, **f.dump(e, f.BUNDLE_ITEM_FIELDS)} for e in bundle_entries
                ],
            }
        )
    return exported


def dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# --- mapping placeholders to local values --------------------------------------------------


def directory_groups() -> list[dict] | None:
    """The groups below the directory's group base, or None without a reachable directory."""
    registered = hooks.provisioning()
    return registered.directory_groups() if registered else None


def check_mapping(document: dict, mapping: dict[str, str]) -> dict[str, object]:
    """Local values for the placeholders the items use; raises ExchangeError naming each
    placeholder that is unmapped or mapped to something that does not exist or is unsafe."""
    declared = document["placeholders"]
    problems: list[Problem] = []
    wanted = used_placeholders(document)
    values = {name: (mapping.get(name) or "").strip() for name in wanted}
    by_kind: dict[str, list[str]] = {}
    for name in wanted:
        by_kind.setdefault(declared[name]["kind"], []).append(name)

    def at(name):
        return f"$.placeholders.{name}"

    for name in wanted:
        if not values[name]:
            problems.append(Problem(at(name), _("no local value chosen")))
    groups = {
        g.name: g
        for g in Group.objects.filter(name__in=[values[n] for n in by_kind.get(ph.GROUP, [])])
    }
    departments = {
        d.code: d
        for d in Department.objects.filter(
            code__in=[values[n] for n in by_kind.get(ph.DEPARTMENT, [])]
        )
    }
    resolved: dict[str, object] = {}
    group_base = settings.DIRECTORY.get("group_base") or ""
    listed = directory_groups() if by_kind.get(ph.DIRECTORY_GROUP) else None
    listed_dns = {g["dn"].lower() for g in listed or []}
    for name in wanted:
        kind, value = declared[name]["kind"], values[name]
        if not value:
            continue
        if kind == ph.GROUP:
            if value not in groups:
                problems.append(
                    Problem(at(name), _("there is no group named “%(name)s”") % {"name": value})
                )
            resolved[name] = groups.get(value)
        elif kind == ph.DEPARTMENT:
            if value not in departments:
                problems.append(
                    Problem(
                        at(name),
                        _("there is no department with the code “%(code)s”") % {"code": value},
                    )
                )
            resolved[name] = departments.get(value)
        else:
            error = ph.check_dn_value(
                value, group_base=group_base, below_base=kind != ph.DIRECTORY_DN
            )
            if (
                not error
                and kind == ph.DIRECTORY_GROUP
                and listed is not None
                and value.lower() not in listed_dns
            ):
                error = _("the directory has no group %(dn)s") % {"dn": value}
            if error:
                problems.append(Problem(at(name), error))
            resolved[name] = value
    if problems:
        raise ExchangeError(problems)
    return resolved


# --- import ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did, or (dry run) would do."""

    dry_run: bool
    categories_created: list[str] = field(default_factory=list)
    categories_updated: list[str] = field(default_factory=list)
    categories_kept: list[str] = field(default_factory=list)
    items_created: list[str] = field(default_factory=list)
    items_updated: list[str] = field(default_factory=list)
    items_skipped: list[str] = field(default_factory=list)
    items_renamed: list[tuple[str, str]] = field(default_factory=list)
    form_fields: int = 0
    approval_steps: int = 0
    provisioning_actions: int = 0
    bundles_created: list[str] = field(default_factory=list)
    bundles_updated: list[str] = field(default_factory=list)
    bundles_skipped: list[str] = field(default_factory=list)
    bundles_renamed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = self._items_summary()
        bundles = (
            self.bundles_created,
            self.bundles_updated,
            self.bundles_skipped,
            self.bundles_renamed,
        )
        if any(bundles):
            text += " " + _(
                "Bundles: %(bc)s new, %(bu)s updated, %(br)s under a new slug, %(bs)s skipped."
            ) % {
                "bc": len(self.bundles_created),
                "bu": len(self.bundles_updated),
                "br": len(self.bundles_renamed),
                "bs": len(self.bundles_skipped),
            }
        return text

    def _items_summary(self) -> str:
        return _(
            "Categories: %(cc)s new, %(cu)s updated, %(ck)s kept. Items: %(ic)s new, "
            "%(iu)s updated, %(ir)s under a new slug, %(is)s skipped. Form fields: %(ff)s, "
            "approval steps: %(st)s, provisioning actions: %(pa)s."
        ) % {
            "cc": len(self.categories_created),
            "cu": len(self.categories_updated),
            "ck": len(self.categories_kept),
            "ic": len(self.items_created),
            "iu": len(self.items_updated),
            "ir": len(self.items_renamed),
            "is": len(self.items_skipped),
            "ff": self.form_fields,
            "st": self.approval_steps,
            "pa": self.provisioning_actions,
        }


class _DryRun(Exception):
    pass


def _clean(obj, path: str) -> None:
    """Model validation; its messages become problems at ``path``."""
    try:
        obj.full_clean()
    except ValidationError as exc:
        problems = [
            Problem(f"{path}.{name}" if name != "__all__" else path, message)
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
        raise ExchangeError(problems) from exc


def _free_slug(slug: str, taken: set[str]) -> str:
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = f"{slug[: 100 - len(suffix)]}{suffix}"
        if candidate not in taken and not CatalogueItem.objects.filter(slug=candidate).exists():
            return candidate
        number += 1


def catalogue_import(
    *, document: dict, mapping: dict[str, str], on_conflict: str = SKIP, dry_run: bool = False
) -> ImportReport:
    """Check the document and the mapping, then create or update everything in one
    transaction; on any problem nothing is written. A dry run does the same and rolls back,
    so its report is exactly what the import would do."""
    if on_conflict not in CONFLICT_POLICIES:
        raise fail(_("Unknown choice for existing items: %(value)s") % {"value": on_conflict})
    check_document(document)
    resolved = check_mapping(document, mapping)
    report = ImportReport(dry_run=dry_run)
    try:
        with transaction.atomic():
            _apply(document, resolved, on_conflict, report)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except IntegrityError as exc:
        raise fail(
            _("The catalogue changed while importing (%(error)s); please try again.")
            % {"error": str(exc).splitlines()[0]}
        ) from exc
    return report


def _apply(document, resolved, on_conflict, report: ImportReport) -> None:
    registered = hooks.provisioning()

    def value(reference: str):
        return resolved[ph.references(reference)[0]]

    def fill(template: str) -> str:
        return ph.REFERENCE.sub(lambda m: resolved[m.group(1)], template)

    categories = {}
    local_categories = Category.objects.select_for_update().in_bulk(
        [c["slug"] for c in document["categories"]], field_name="slug"
    )
    for i, data in enumerate(document["categories"]):
        category = local_categories.get(data["slug"])
        if category is None:
            category = Category(**f.load(data, f.CATEGORY_FIELDS))
            report.categories_created.append(data["slug"])
        elif on_conflict == UPDATE:
            for name, loaded in f.load(data, f.CATEGORY_FIELDS).items():
                setattr(category, name, loaded)
            report.categories_updated.append(data["slug"])
        else:
            report.categories_kept.append(data["slug"])
            categories[data["slug"]] = category
            continue
        _clean(category, f"$.categories[{i}]")
        category.save()
        categories[data["slug"]] = category

    local_items = CatalogueItem.objects.select_for_update().in_bulk(
        [i["slug"] for i in document["items"]], field_name="slug"
    )
    taken = {i["slug"] for i in document["items"]}
    for i, data in enumerate(document["items"]):
        at = f"$.items[{i}]"
        item = local_items.get(data["slug"])
        values = f.load(data, f.ITEM_FIELDS)
        updating = item is not None and on_conflict == UPDATE
        if item is not None and on_conflict == SKIP:
            report.items_skipped.append(data["slug"])
            continue
        if updating:
            report.items_updated.append(data["slug"])
            item.form_fields.all().delete()
            item.form_rules.all().delete()
            item.approval_steps.all().delete()
            if registered is not None:
                item.provisioning_actions.all().delete()
        else:
            if item is not None:  # RENAME
                values["slug"] = _free_slug(data["slug"], taken)
                taken.add(values["slug"])
                report.items_renamed.append((data["slug"], values["slug"]))
            else:
                report.items_created.append(data["slug"])
            item = CatalogueItem()
        for name, loaded in values.items():
            setattr(item, name, loaded)
        item.category = categories[data["category"]]
        item.service_owner = value(data["service_owner"])
        _clean(item, at)
        item.save()
        if updating:
            # Like a change in the admin: a new version, old orders keep theirs.
            CatalogueItem.objects.filter(pk=item.pk).update(version=F("version") + 1)
        item.allowed_departments.set([value(r) for r in data["allowed_departments"]])
        item.allowed_groups.set([value(r) for r in data["allowed_groups"]])

        for j, field_data in enumerate(data["form_fields"]):
            form_field = FormField(
                item=item,
                **f.load(field_data, f.FORM_FIELD_FIELDS),
                directory_base=fill(field_data["directory_base"]),
            )
            _clean(form_field, f"{at}.form_fields[{j}]")
            form_field.save()
            report.form_fields += 1
        for j, rule_data in enumerate(data.get("form_rules", [])):
            rule = FormRule(item=item, **f.load(rule_data, f.FORM_RULE_FIELDS))
            _clean(rule, f"{at}.form_rules[{j}]")
            rule.save()
        for j, step_data in enumerate(data["approval_steps"]):
            step = ApprovalPolicyStep(
                item=item,
                **f.load(step_data, f.APPROVAL_STEP_FIELDS),
                group=value(step_data["group"]) if step_data["group"] else None,
            )
            _clean(step, f"{at}.approval_steps[{j}]")
            step.save()
            report.approval_steps += 1
        for j, action_data in enumerate(data["provisioning_actions"]):
            if registered is None:
                raise fail(_("This portal has no provisioning."), f"{at}.provisioning_actions")
            action = registered.action_model(
                item=item,
                **f.load(action_data, f.PROVISIONING_ACTION_FIELDS),
                target=fill(action_data["target"]),
                attributes="\n".join(
                    f"{a['attribute']} = {fill(a['template'])}" for a in action_data["attributes"]
                ),
            )
            _clean(action, f"{at}.provisioning_actions[{j}]")
            action.save()
            report.provisioning_actions += 1
    _apply_bundles(document, on_conflict, report)


def _apply_bundles(document, on_conflict, report: ImportReport) -> None:
    """Bundles after the items: each item by its slug as imported (renamed ones under their
    new slug), else an item the portal already has; an unknown one is a problem."""
    bundles = document.get("bundles") or []
    if not bundles:
        return
    renamed = dict(report.items_renamed)
    wanted = {renamed.get(e["item"], e["item"]) for b in bundles for e in b["items"]}
    items = CatalogueItem.objects.in_bulk(list(wanted), field_name="slug")
    problems = [
        Problem(
            f"$.bundles[{i}].items[{j}].item",
            _("there is no item “%(slug)s” in the file or in this portal") % {"slug": e["item"]},
        )
        for i, b in enumerate(bundles)
        for j, e in enumerate(b["items"])
        if renamed.get(e["item"], e["item"]) not in items
    ]
    if problems:
        raise ExchangeError(problems)
    local = Bundle.objects.select_for_update().in_bulk(
        [b["slug"] for b in bundles], field_name="slug"
    )
    taken = {b["slug"] for b in bundles}
    for i, data in enumerate(bundles):
        bundle = local.get(data["slug"])
        values = f.load(data, f.BUNDLE_FIELDS)
        if bundle is not None and on_conflict == SKIP:
            report.bundles_skipped.append(data["slug"])
            continue
        if bundle is not None and on_conflict == UPDATE:
            report.bundles_updated.append(data["slug"])
            bundle.entries.all().delete()
        else:
            if bundle is not None:  # RENAME
                values["slug"] = _free_bundle_slug(data["slug"], taken)
                taken.add(values["slug"])
                report.bundles_renamed.append((data["slug"], values["slug"]))
            else:
                report.bundles_created.append(data["slug"])
            bundle = Bundle()
        for name, loaded in values.items():
            setattr(bundle, name, loaded)
        _clean(bundle, f"$.bundles[{i}]")
        bundle.save()
        for j, entry_data in enumerate(data["items"]):
            entry = BundleItem(
                bundle=bundle,
                item=items[renamed.get(entry_data["item"], entry_data["item"])],
                **f.load(entry_data, f.BUNDLE_ITEM_FIELDS),
            )
            _clean(entry, f"$.bundles[{i}].items[{j}]")
            entry.save()


def _free_bundle_slug(slug: str, taken: set[str]) -> str:
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = f"{slug[: 100 - len(suffix)]}{suffix}"
        if candidate not in taken and not Bundle.objects.filter(slug=candidate).exists():
            return candidate
        number += 1
