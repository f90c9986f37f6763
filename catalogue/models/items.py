"""What can be ordered: categories, items, their order forms and approval policies."""

from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from catalogue.choices import (
    ApproverKind,
    Audience,
    ConditionEffect,
    ConditionOperator,
    FieldType,
    FulfilmentKind,
    RuleKind,
)
from catalogue.formats import format_choices, get_format
from catalogue.patterns import pattern_problem
from catalogue.search import folded

slug_key_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*$",
    _("Use lower-case letters, digits and underscores, starting with a letter."),
)


class Category(models.Model):
    """A grouping of catalogue items shown on the catalogue page."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), unique=True)
    description = models.TextField(_("description"), blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class CatalogueItemQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def orderable_by(self, employee):
        """Items the employee may order: active, and open to them by department or group."""
        qs = self.active()
        if employee is None:
            return qs.none()
        return qs.filter(
            models.Q(audience=Audience.EVERYONE)
            | models.Q(allowed_departments=employee.department_id)
            | models.Q(allowed_groups__in=employee.user.groups.all())
        ).distinct()


class CatalogueItem(models.Model):
    """Something an employee can order (Leistung)."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), unique=True, max_length=100)
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    description = models.TextField(
        _("description"), blank=True, help_text=_("Markdown; rendered sanitised.")
    )
    keywords = models.CharField(
        _("search keywords"),
        max_length=500,
        blank=True,
        help_text=_(
            'Other words people search for, separated by commas, e.g. "Laptop" for a '
            'notebook or "Passwort" for a password reset.'
        ),
    )
    # Kept by PostgreSQL itself, so every way of saving an item (admin, API, exchange import)
    # leaves them current. The German configuration stems ("Monitore" finds "Monitor");
    # the name weighs most, then keywords, summary and description.
    search_vector = models.GeneratedField(
        expression=SearchVector("name", weight="A", config="german")
        + SearchVector("keywords", weight="B", config="german")
        + SearchVector("summary", weight="C", config="german")
        + SearchVector("description", weight="D", config="german"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # Name and keywords, lower-cased with umlauts and ß folded, for typo-tolerant matching.
    search_words = models.GeneratedField(
        expression=folded("name", "keywords"),
        output_field=models.TextField(),
        db_persist=True,
    )
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, related_name="items"
    )
    service_owner = models.ForeignKey(
        Group,
        verbose_name=_("service owner"),
        on_delete=models.PROTECT,
        related_name="owned_items",
        help_text=_("Group responsible for the item; it fulfils manual orders."),
    )
    fulfilment_kind = models.CharField(
        _("fulfilment"), max_length=20, choices=FulfilmentKind, default=FulfilmentKind.MANUAL
    )
    price_once = models.DecimalField(
        _("one-off price (EUR)"),
        max_digits=10,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
    )
    price_monthly = models.DecimalField(
        _("monthly price (EUR)"),
        max_digits=10,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
    )
    audience = models.CharField(
        _("who may order"), max_length=20, choices=Audience, default=Audience.EVERYONE
    )
    allowed_departments = models.ManyToManyField(
        "catalogue.Department", verbose_name=_("allowed departments"), blank=True
    )
    allowed_groups = models.ManyToManyField(
        Group, verbose_name=_("allowed groups"), blank=True, related_name="orderable_items"
    )
    orderable_for_others = models.BooleanField(_("may be ordered for a colleague"), default=True)
    independent_fulfilment = models.BooleanField(
        _("fulfilled by someone not involved"),
        default=False,
        help_text=_(
            "Segregation of duties: whoever fulfils a request for this service may be neither "
            "its requester, its beneficiary nor one of its approvers."
        ),
    )
    grants_access = models.BooleanField(
        _("what fulfilment gives"),
        choices=[(True, _("Lasting access")), (False, _("One-off delivery"))],
        default=True,
        help_text=_(
            "Lasting access (an account, a group, a licence) is listed under Entitlements "
            "until it is revoked; a one-off delivery (a device, a password reset) stays a "
            "fulfilled order."
        ),
    )
    collect_on_leaving = models.BooleanField(
        _("collected when the holder leaves"),
        default=False,
        help_text=_(
            "For devices and tokens: when the person it was delivered to leaves, the service "
            "owner group gets a task to collect it."
        ),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Retired items can no longer be ordered.")
    )
    valid_until_field = models.CharField(
        _("'valid until' field"),
        max_length=50,
        blank=True,
        help_text=_(
            "Key of a date field of the order form; the service is then held until that date "
            "and removed automatically."
        ),
    )
    licence_pool_size = models.PositiveIntegerField(
        _("licence pool size"),
        null=True,
        blank=True,
        help_text=_("Number of licences behind this item; empty means unlimited."),
    )
    licence_warning_below = models.PositiveIntegerField(
        _("warn below (free licences)"),
        null=True,
        blank=True,
        help_text=_(
            "IT controlling is warned when fewer licences than this are free; empty means "
            "a tenth of the pool, rounded up."
        ),
    )
    sla_target_days = models.PositiveSmallIntegerField(
        _("resolution target (working days)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(365)],
        help_text=_(
            "Working days from approval to fulfilment that IT promises; empty for no target."
        ),
    )
    # Working hours within the business hours (PORTAL_BUSINESS_HOURS_*), not working days:
    # a first reaction is promised within hours (requests_app/sla.py).
    response_target_hours = models.PositiveSmallIntegerField(
        _("response target (working hours)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(2000)],
        help_text=_(
            "Working hours from approval to the first reaction of IT (taken into "
            "fulfilment, a comment, or the automation started); empty for no target."
        ),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CatalogueItemQuerySet.as_manager()
    # Every save leaves a row: who, when, all fields (the change history IT admins read and
    # restore from). The version, timestamps and search columns follow from the rest, so not kept.
    history = HistoricalRecords(
        excluded_fields=["version", "created_at", "updated_at", "search_vector", "search_words"],
        history_change_reason_field=models.TextField(null=True),
    )

    class Meta:
        ordering = ["category__position", "name"]
        verbose_name = _("catalogue item")
        verbose_name_plural = _("catalogue items")
        indexes = [
            GinIndex(fields=["search_vector"], name="item_search_vector"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_once__gte=0) & models.Q(price_monthly__gte=0),
                name="item_prices_not_negative",
                violation_error_message=_("Prices cannot be negative."),
            ),
            models.CheckConstraint(
                condition=models.Q(licence_warning_below__isnull=True)
                | models.Q(
                    licence_pool_size__isnull=False,
                    licence_warning_below__lte=models.F("licence_pool_size"),
                ),
                name="item_licence_warning_within_pool",
                violation_error_message=_(
                    "The warning threshold cannot exceed the licence pool size."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalogue:item", kwargs={"slug": self.slug})

    def clean(self):
        super().clean()
        below = self.licence_warning_below
        if below is None:
            return
        if self.licence_pool_size is None:
            raise ValidationError(
                {"licence_warning_below": _("A warning threshold needs a licence pool size.")}
            )
        if below > self.licence_pool_size:
            raise ValidationError(
                {
                    "licence_warning_below": _(
                        "The warning threshold cannot exceed the licence pool size (%(size)s)."
                    )
                    % {"size": self.licence_pool_size}
                }
            )

    @property
    def licence_warning_level(self) -> int | None:
        """Free licences below which to warn: the set threshold, or 10 % of the pool."""
        return self.warning_level(self.licence_pool_size, self.licence_warning_below)

    @staticmethod
    def warning_level(pool_size: int | None, warning_below: int | None) -> int | None:
        """``licence_warning_level`` of an item with these two columns (rows read as values)."""
        if pool_size is None:
            return None
        if warning_below is not None:
            return warning_below
        return -(-pool_size // 10)  # ceil(size / 10)

    def snapshot(self) -> dict:
        """What an order keeps of this item, so later changes never rewrite it."""
        return {
            "version": self.version,
            "name": self.name,
            "slug": self.slug,
            "category": self.category.name,
            "fulfilment_kind": self.fulfilment_kind,
            "grants_access": self.grants_access,
            "valid_until_field": self.valid_until_field,
            "independent_fulfilment": self.independent_fulfilment,
            "sla_target_days": self.sla_target_days,
            "response_target_hours": self.response_target_hours,
            "price_once": str(self.price_once),
            "price_monthly": str(self.price_monthly),
            "fields": [f.snapshot() for f in self.form_fields.all()],
            "approval_policy": [s.snapshot() for s in self.approval_steps.all()],
        }


def choice_lines(choices: str) -> list[str]:
    """The options of a choice field, one a line in ``FormField.choices``."""
    return [line.strip() for line in choices.splitlines() if line.strip()]


class FormField(models.Model):
    """One field of an item's order form, defined by IT admins without code."""

    item = models.ForeignKey(
        CatalogueItem, verbose_name=_("item"), on_delete=models.CASCADE, related_name="form_fields"
    )
    key = models.CharField(
        _("key"),
        max_length=50,
        validators=[slug_key_validator],
        help_text=_("Technical name of the answer, e.g. 'share_path'."),
    )
    label = models.CharField(_("label"), max_length=200)
    help_text = models.CharField(_("help text"), max_length=500, blank=True)
    field_type = models.CharField(_("type"), max_length=20, choices=FieldType)
    required = models.BooleanField(_("required"), default=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    choices = models.TextField(
        _("choices"), blank=True, help_text=_("For choice fields: one option per line.")
    )
    answer_format = models.CharField(
        _("format"),
        max_length=30,
        blank=True,
        choices=format_choices,
        help_text=_("For text fields: the form the answer must have, e.g. a room number."),
    )
    pattern = models.CharField(
        _("pattern"),
        max_length=200,
        blank=True,
        help_text=_(
            "For experts, instead of a format: a regular expression the whole answer must match."
        ),
    )
    min_value = models.DecimalField(
        _("minimum"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    max_value = models.DecimalField(
        _("maximum"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    max_length = models.PositiveIntegerField(_("maximum length"), null=True, blank=True)
    # Date fields: bounds relative to the day of ordering (a fixed date would go stale).
    earliest_days = models.PositiveSmallIntegerField(
        _("earliest date (days from today)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(3650)],
        help_text=_(
            "For date fields: the earliest date that may be chosen, in days from the day of "
            "ordering, e.g. 5 for a delivery's lead time; 0 = not in the past; empty = no limit."
        ),
    )
    latest_days = models.PositiveSmallIntegerField(
        _("latest date (days from today)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(3650)],
        help_text=_("For date fields: the latest date that may be chosen, in days from today."),
    )
    needed_from = models.BooleanField(
        _("'needed from' date"),
        default=False,
        help_text=_(
            "For one date field of the form: the day the service is needed from. The request "
            "shows it, and an automated service is set up on that day, not before. The date "
            "cannot lie in the past."
        ),
    )
    directory_base = models.CharField(
        _("directory base"),
        max_length=500,
        blank=True,
        help_text=_(
            "For directory-group fields: the groups below this DN are offered, e.g. "
            "ou=fileshares,ou=groups,dc=musterstadt,dc=example."
        ),
    )
    # A condition on another answer of the same form (catalogue.conditions evaluates it).
    condition_effect = models.CharField(
        _("condition"),
        max_length=10,
        blank=True,
        choices=ConditionEffect,
        help_text=_("Empty: the field is always shown."),
    )
    condition_field = models.CharField(
        _("depends on field"), max_length=50, blank=True, help_text=_("Key of the other field.")
    )
    condition_operator = models.CharField(
        _("comparison"), max_length=10, blank=True, choices=ConditionOperator
    )
    condition_value = models.TextField(
        _("value"),
        blank=True,
        max_length=2000,
        help_text=_('One value per line; for yes/no fields "yes" or "no".'),
    )

    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("form field")
        verbose_name_plural = _("form fields")
        constraints = [
            models.UniqueConstraint(
                fields=["item", "key"],
                name="formfield_unique_key_per_item",
                violation_error_message=_("Each field of an item needs its own key."),
            ),
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(needed_from=True),
                name="formfield_one_needed_from_per_item",
                violation_error_message=_(
                    "Only one field of a form can be the 'needed from' date."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def choice_list(self) -> list[str]:
        return choice_lines(self.choices)

    def clean(self) -> None:
        errors = {}
        if (
            self.field_type in (FieldType.CHOICE, FieldType.MULTIPLE_CHOICE)
            and not self.choice_list
        ):
            errors["choices"] = _("Choice fields need at least one option.")
        if self.answer_format and get_format(self.answer_format) is None:
            errors["answer_format"] = _("Unknown format.")
        if (self.answer_format or self.pattern) and self.field_type not in (
            FieldType.TEXT,
            FieldType.LONG_TEXT,
        ):
            errors["answer_format" if self.answer_format else "pattern"] = _(
                "Only text fields have a format."
            )
        if self.answer_format and self.pattern:
            errors["pattern"] = _("Choose a format or enter a pattern, not both.")
        if self.field_type != FieldType.DATE:
            if self.earliest_days is not None:
                errors["earliest_days"] = _("Only date fields have an earliest date.")
            if self.latest_days is not None:
                errors["latest_days"] = _("Only date fields have a latest date.")
            if self.needed_from:
                errors["needed_from"] = _("Only a date field can be the 'needed from' date.")
        elif (
            self.earliest_days is not None
            and self.latest_days is not None
            and self.earliest_days > self.latest_days
        ):
            errors["latest_days"] = _("The latest date cannot come before the earliest.")
        if self.condition_effect:
            if not self.condition_field:
                errors["condition_field"] = _("Name the field the condition depends on.")
            if not self.condition_operator:
                errors["condition_operator"] = _("Choose how the answer is compared.")
            elif self.condition_operator != ConditionOperator.IS_SET and not any(
                line.strip() for line in self.condition_value.splitlines()
            ):
                errors["condition_value"] = _("Enter the value to compare with.")
        if self.pattern:
            problem = pattern_problem(self.pattern)
            if problem is not None:
                errors["pattern"] = _("Not a valid regular expression: %(error)s") % {
                    "error": problem
                }
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            errors["max_value"] = _("The maximum must not be below the minimum.")
        if errors:
            raise ValidationError(errors)

    def snapshot(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "help_text": self.help_text,
            "field_type": self.field_type,
            "required": self.required,
            "choices": self.choice_list,
            "answer_format": self.answer_format,
            "pattern": self.pattern,
            "condition_effect": self.condition_effect,
            "condition_field": self.condition_field,
            "condition_operator": self.condition_operator,
            "condition_value": self.condition_value,
            "min_value": None if self.min_value is None else str(self.min_value),
            "max_value": None if self.max_value is None else str(self.max_value),
            "earliest_days": self.earliest_days,
            "latest_days": self.latest_days,
            "needed_from": self.needed_from,
            "max_length": self.max_length,
            "directory_base": self.directory_base,
        }


class ApprovalPolicyStep(models.Model):
    """One step of an item's approval policy; steps run in position order."""

    item = models.ForeignKey(
        CatalogueItem,
        verbose_name=_("item"),
        on_delete=models.CASCADE,
        related_name="approval_steps",
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    approver_kind = models.CharField(_("approver"), max_length=30, choices=ApproverKind)
    group = models.ForeignKey(
        Group,
        verbose_name=_("group"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("For group steps: any one member decides."),
    )
    person_field_key = models.CharField(
        _("person field"),
        max_length=50,
        blank=True,
        help_text=_(
            "For person-field steps: the key of a person field; for group-owner steps: the key "
            "of a directory-group field of the order form."
        ),
    )
    label = models.CharField(
        _("label"), max_length=200, blank=True, help_text=_("e.g. 'IT security' or 'Data owner'.")
    )

    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("approval step")
        verbose_name_plural = _("approval policy")
        constraints = [
            models.UniqueConstraint(
                fields=["item", "position"],
                name="policystep_unique_position_per_item",
                violation_error_message=_("Each approval step of an item needs its own position."),
            )
        ]

    def __str__(self) -> str:
        return self.label or self.get_approver_kind_display()

    def clean(self) -> None:
        if self.approver_kind == ApproverKind.GROUP and not self.group_id:
            raise ValidationError({"group": _("Group steps need a group.")})
        field_kinds = {
            ApproverKind.PERSON_FIELD: FieldType.PERSON,
            ApproverKind.GROUP_OWNER: FieldType.DIRECTORY_GROUP,
        }
        if self.approver_kind in field_kinds:
            if not self.person_field_key:
                raise ValidationError({"person_field_key": _("Name the form field.")})
            if (
                self.item_id
                and not self.item.form_fields.filter(
                    key=self.person_field_key, field_type=field_kinds[self.approver_kind]
                ).exists()
            ):
                raise ValidationError(
                    {
                        "person_field_key": _(
                            "The order form has no field of this kind with this key."
                        )
                    }
                )

    def snapshot(self) -> dict:
        return {
            "approver_kind": self.approver_kind,
            "group_id": self.group_id,
            "group": self.group.name if self.group_id else None,
            "person_field_key": self.person_field_key,
            # Raw label: the page shows the approver kind in the reader's language if empty.
            "label": self.label,
        }


class FormRule(models.Model):
    """A rule across answers of an item's order form, e.g. the end date after the start date."""

    item = models.ForeignKey(
        CatalogueItem, verbose_name=_("item"), on_delete=models.CASCADE, related_name="form_rules"
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    kind = models.CharField(_("rule"), max_length=20, choices=RuleKind)
    first_field = models.CharField(_("field A"), max_length=50, help_text=_("Key of a field."))
    second_field = models.CharField(
        _("field B"), max_length=50, blank=True, help_text=_("Key of a field.")
    )
    more_fields = models.TextField(
        _("further fields"),
        blank=True,
        max_length=2000,
        help_text=_('For "at least one of": further keys, one per line.'),
    )
    message = models.CharField(
        _("error message"),
        max_length=300,
        blank=True,
        help_text=_("Shown when the rule is broken; empty for the standard message."),
    )

    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("form rule")
        verbose_name_plural = _("form rules")

    def __str__(self) -> str:
        return self.get_kind_display()

    def snapshot(self) -> dict:
        return {
            "kind": self.kind,
            "first_field": self.first_field,
            "second_field": self.second_field,
            "more_fields": self.more_fields,
            "message": self.message,
        }
