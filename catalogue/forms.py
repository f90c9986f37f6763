"""Order forms built at run time from an item's field definitions.

The same form validates the browser's post and (later) the API's body, so an
answer is checked by one rule wherever it comes from.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Value
from django.db.models.functions import Concat
from django.urls import get_script_prefix, reverse_lazy
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from catalogue import conditions
from catalogue.choices import FieldType
from catalogue.formats import get_format
from catalogue.models import CostCentre, Employee, FormField
from catalogue.patterns import PatternValidator
from catalogue.selectors import item_form_rules
from itportal.inputs import BoundedDateField
from itportal.memo import is_value

DEFAULT_MAX_LENGTH = {FieldType.TEXT: 200, FieldType.LONG_TEXT: 4000}
# Something that looks like an HTML tag: answers are plain text, and a tag in
# them is nearly always an attack or a paste error worth pointing out.
TAG_RE = re.compile(r"<\s*/?\s*[a-zA-Z!?][^>]*>")
PERSON_RE = re.compile(r"\(([^()]+)\)\s*$")
# Personnel numbers have no spaces; something with a space was typed as a name.
NAME_RE = re.compile(r"\s")


def reject_markup(value: str) -> None:
    if value and TAG_RE.search(value):
        raise ValidationError(
            _("Please enter plain text without HTML tags such as <script>."), code="markup"
        )


class PersonField(forms.CharField):
    """Picks an active employee by personnel number, by "Name (number)" as the picker
    fills it in, or by a full name that only one active employee has.

    The error speaks of what was typed: a personnel number, or a name."""

    default_error_messages = {
        "unknown": _("No active employee with the personnel number “%(value)s”."),
        "unknown_name": _(
            "No active employee is called “%(value)s”. Please pick a person from the list "
            "or enter their personnel number."
        ),
        "ambiguous_name": _(
            "Several employees are called “%(value)s”. Please pick the person from the list "
            "or enter their personnel number."
        ),
    }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 200)
        super().__init__(*args, **kwargs)
        self.widget.attrs.update(
            {
                "list": "people-datalist",
                "autocomplete": "off",
                "data-person-picker": reverse_lazy("catalogue:people_search"),
            }
        )

    @staticmethod
    def _people():
        return Employee.objects.active().filter(user__is_active=True).select_related("user")

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        match = PERSON_RE.search(value)
        uid = (match.group(1) if match else value).strip()
        if match or not NAME_RE.search(uid):
            employee = self._people().filter(personnel_number=uid).first()
            if employee is None:
                raise ValidationError(
                    self.error_messages["unknown"], code="unknown", params={"value": uid}
                )
            return employee
        return self._by_name(" ".join(uid.split()))

    def _by_name(self, name: str):
        """A typed name (it has a space): the one active employee of that full name."""
        people = list(
            self._people()
            .annotate(full_name=Concat("user__first_name", Value(" "), "user__last_name"))
            .filter(full_name__iexact=name)[:2]
        )
        if len(people) == 1:
            return people[0]
        code = "ambiguous_name" if people else "unknown_name"
        raise ValidationError(self.error_messages[code], code=code, params={"value": name})


# Field types whose form field another app supplies (provisioning: directory groups),
# so the catalogue needs no knowledge of the directory.
FIELD_BUILDERS: dict[str, object] = {}


def register_field_type(field_type: str, builder) -> None:
    """``builder(definition, **common) -> forms.Field`` for one FieldType."""
    FIELD_BUILDERS[field_type] = builder


def _help_text(definition) -> str:
    """The field's help, followed by the expected format's description or the dates
    that may be chosen, if it has them."""
    answer_format = get_format(definition.answer_format)
    expected = ""
    if answer_format is not None:
        expected = _("Format: %(format)s, %(description)s.") % {
            "format": answer_format.label,
            "description": answer_format.description,
        }
    elif definition.field_type == FieldType.DATE:
        expected = DateBounds.of(definition).describe()
    if not expected:
        return definition.help_text
    return f"{definition.help_text} {expected}" if definition.help_text else expected


def _short(day: datetime.date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


class DateBounds:
    """The dates a date field accepts, counted from today (the day the form is filled in)."""

    def __init__(self, earliest_days: int | None, latest_days: int | None):
        self.earliest_days = earliest_days
        self.latest_days = latest_days

    @classmethod
    def of(cls, definition) -> DateBounds:
        earliest = definition.earliest_days
        if getattr(definition, "needed_from", False) and earliest is None:
            earliest = 0  # a "needed from" date in the past would mean nothing
        return cls(earliest, definition.latest_days)

    @property
    def earliest(self) -> datetime.date | None:
        if self.earliest_days is None:
            return None
        return timezone.localdate() + datetime.timedelta(days=self.earliest_days)

    @property
    def latest(self) -> datetime.date | None:
        if self.latest_days is None:
            return None
        return timezone.localdate() + datetime.timedelta(days=self.latest_days)

    def describe(self) -> str:
        earliest, latest = self.earliest, self.latest
        if earliest and latest:
            return _("A date from %(earliest)s to %(latest)s.") % {
                "earliest": _short(earliest),
                "latest": _short(latest),
            }
        if earliest:
            return _("A date from %(earliest)s on.") % {"earliest": _short(earliest)}
        if latest:
            return _("A date up to %(latest)s.") % {"latest": _short(latest)}
        return ""

    def check(self, value: datetime.date) -> None:
        earliest, latest = self.earliest, self.latest
        if earliest and value < earliest:
            if self.earliest_days == 0:
                message = _("The date cannot lie in the past; please choose %(earliest)s or later.")
            else:
                message = ngettext(
                    "Please choose %(earliest)s or later: this needs %(days)s day of lead time.",
                    "Please choose %(earliest)s or later: this needs %(days)s days of lead time.",
                    self.earliest_days,
                )
            raise ValidationError(
                message,
                code="too_early",
                params={"earliest": _short(earliest), "days": self.earliest_days},
            )
        if latest and value > latest:
            raise ValidationError(
                _("Please choose %(latest)s or earlier."),
                code="too_late",
                params={"latest": _short(latest)},
            )


class AnswerDateField(BoundedDateField):
    """A date answer: the browser's date picker limited to the bounds (min/max), and the
    same bounds checked again here, with a message that names the first or last date."""

    def __init__(self, *, bounds: DateBounds, **kwargs):
        self.bounds = bounds
        # ISO in the value: what <input type="date"> needs whatever the language.
        attrs = {"type": "date"}
        if bounds.earliest:
            attrs["min"] = bounds.earliest.isoformat()
        if bounds.latest:
            attrs["max"] = bounds.latest.isoformat()
        super().__init__(widget=forms.DateInput(attrs=attrs, format="%Y-%m-%d"), **kwargs)

    def validate(self, value):
        super().validate(value)
        if value is not None:
            self.bounds.check(value)


def _field_for(definition) -> forms.Field:
    """A Django form field for one FormField definition."""
    common = {
        "label": definition.label,
        "help_text": _help_text(definition),
        "required": definition.required,
    }
    kind = definition.field_type
    if kind in (FieldType.TEXT, FieldType.LONG_TEXT):
        validators = [reject_markup]
        answer_format = get_format(definition.answer_format)
        if answer_format is not None:
            validators.append(answer_format.validator())
        elif definition.pattern:
            # An expert's own pattern: the field's help is where its format is explained,
            # so the error repeats it instead of only saying that something is wrong.
            message = None
            if definition.help_text:
                message = _("The answer does not have the required format: %(help)s") % {
                    "help": definition.help_text
                }
            validators.append(PatternValidator(definition.pattern, message=message))
        return forms.CharField(
            max_length=definition.max_length or DEFAULT_MAX_LENGTH[kind],
            widget=forms.Textarea(attrs={"rows": 4}) if kind == FieldType.LONG_TEXT else None,
            validators=validators,
            **common,
        )
    if kind == FieldType.NUMBER:
        return forms.DecimalField(
            min_value=definition.min_value,
            max_value=definition.max_value,
            max_digits=14,
            decimal_places=2,
            **common,
        )
    if kind == FieldType.DATE:
        return AnswerDateField(bounds=DateBounds.of(definition), **common)
    if kind == FieldType.CHOICE:
        choices = [(c, c) for c in definition.choice_list]
        if not definition.required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(choices=choices, **common)
    if kind == FieldType.MULTIPLE_CHOICE:
        return forms.MultipleChoiceField(
            choices=[(c, c) for c in definition.choice_list],
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    if kind == FieldType.YES_NO:
        if definition.required:
            # A required yes/no is a question that must be answered, either way.
            return forms.TypedChoiceField(
                choices=[("", "—"), ("yes", _("Yes")), ("no", _("No"))],
                coerce=lambda v: v == "yes",
                **common,
            )
        return forms.BooleanField(**common)
    if kind == FieldType.ACKNOWLEDGEMENT:
        return forms.BooleanField(
            **{**common, "required": True},
            error_messages={"required": _("Please confirm this statement to order.")},
        )
    if kind == FieldType.PERSON:
        return PersonField(**common)
    if kind in FIELD_BUILDERS:
        return FIELD_BUILDERS[kind](definition, **common)
    return UnavailableField(**common)


class UnavailableField(forms.CharField):
    """A field type nothing can serve here (e.g. directory groups without a directory)."""

    def __init__(self, **kwargs):
        kwargs["required"] = False
        kwargs["disabled"] = True
        super().__init__(**kwargs)

    def clean(self, value):
        raise ValidationError(
            _("This field cannot be filled in at the moment; please contact IT administration."),
            code="unavailable",
        )


def _to_json(value):
    if hasattr(value, "as_answer"):
        return value.as_answer()
    if isinstance(value, Employee):
        return {"uid": value.personnel_number, "name": value.display_name}
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class PlainModelChoiceIterator(forms.models.ModelChoiceIterator):
    """The choices from one plain read of the field's queryset. Django's iterator reads
    with ``QuerySet.iterator()``: a server-side cursor (DECLARE, FETCH, CLOSE: three round
    trips, the rows held at commit) for the few dozen cost centres of every order page."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        # The field's own queryset (each form's copy): read once, however often iterated.
        for obj in self.queryset:
            yield self.choice(obj)


class PlainModelChoiceField(forms.ModelChoiceField):
    iterator = PlainModelChoiceIterator


class OrderForm(forms.Form):
    """The order form of one catalogue item for one requester."""

    FIELD_PREFIX = "f_"

    item_version = forms.IntegerField(widget=forms.HiddenInput)
    beneficiary = PersonField(
        label=_("For whom"),
        required=False,
        help_text=_("Leave empty to order for yourself, or pick a colleague."),
    )
    cost_centre = PlainModelChoiceField(
        label=_("Cost centre"),
        queryset=CostCentre.objects.all(),
        required=False,
        help_text=_(
            "Leave empty to charge the beneficiary's cost centre. A cost centre other than "
            "your own needs its owner's approval."
        ),
    )
    justification = forms.CharField(
        label=_("Justification"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[reject_markup],
    )

    def __init__(self, *args, item, requester_employee, definitions=None, rules=None, **kwargs):
        """``definitions`` / ``rules``: unsaved ones instead of the item's (the editor's
        preview of a form being built)."""
        super().__init__(*args, **kwargs)
        self.item = item
        self.requester_employee = requester_employee
        self.fields["item_version"].initial = item.version
        if not item.orderable_for_others:
            del self.fields["beneficiary"]
        self.definitions = list(item.form_fields.all()) if definitions is None else definitions
        self._rules = rules
        for definition in self.definitions:
            self.fields[self.FIELD_PREFIX + definition.key] = _field_for(definition)
        self.conditional = {d.key for d in self.definitions if conditions.has_condition(d)}
        for key in self.conditional:
            # Judged in clean() from the other answers, never by the field alone.
            self.fields[self.FIELD_PREFIX + key].required = False
        self.field_states = conditions.field_states(self.definitions, {})
        if not self.is_bound:
            self._mark_required()
        # The page shows the item's own fields first; errors are listed in the same order.
        self.order_fields(
            [self.FIELD_PREFIX + d.key for d in self.definitions]
            + ["beneficiary", "cost_centre", "justification"]
        )

    @property
    def rules(self) -> list:
        """The rules across answers: read when the form is judged, not for showing it."""
        if self._rules is None:
            self._rules = item_form_rules(self.item)
        return self._rules

    def clean_item_version(self):
        version = self.cleaned_data["item_version"]
        if version != self.item.version:
            raise ValidationError(
                _(
                    "This service was changed while you were filling in the form. "
                    "Please check the form below and send it again."
                ),
                code="stale_version",
            )
        return version

    def clean(self):
        cleaned = super().clean()
        self._apply_conditions(cleaned)
        if "beneficiary" not in self.fields:
            self._refuse_other_beneficiary()
        beneficiary = cleaned.get("beneficiary") or self.requester_employee
        cleaned["beneficiary"] = beneficiary
        if beneficiary is not None and not cleaned.get("cost_centre"):
            cleaned["cost_centre"] = beneficiary.effective_cost_centre
        return cleaned

    def _apply_conditions(self, cleaned) -> None:
        """Hidden fields: answers discarded, errors dropped. Conditionally required fields:
        required now if their condition holds. Then the rules across fields."""
        answers = {
            d.key: _to_json(cleaned.get(self.FIELD_PREFIX + d.key)) for d in self.definitions
        }
        self.field_states = states = conditions.field_states(self.definitions, answers)
        for definition in self.definitions:
            name = self.FIELD_PREFIX + definition.key
            state = states[definition.key]
            if not state.visible:
                self._errors.pop(name, None)
                cleaned[name] = None
            elif (
                definition.key in self.conditional
                and state.required
                and name not in self._errors
                and self._unanswered(name, cleaned.get(name))
            ):
                message = self.fields[name].error_messages["required"]
                self.add_error(name, ValidationError(message, code="required"))
        for _rule, key, message in conditions.broken_rules(
            self.rules, self.definitions, answers, states
        ):
            name = self.FIELD_PREFIX + key if key else None
            if name is None or name not in self._errors:
                self.add_error(name, ValidationError(message, code="rule"))
        self._mark_required()

    def _unanswered(self, name, value) -> bool:
        field = self.fields[name]
        # A checkbox counts as answered only when ticked (as Django's own required check).
        return value in field.empty_values or (isinstance(field, forms.BooleanField) and not value)

    def _mark_required(self) -> None:
        """Show conditional fields as required where their condition holds now."""
        for key in self.conditional:
            self.fields[self.FIELD_PREFIX + key].required = self.field_states[key].required

    @property
    def logic(self) -> dict:
        """The conditions for the browser (static/js/form-conditions.js)."""
        return conditions.form_logic(self.definitions, self.add_prefix(self.FIELD_PREFIX))

    def _refuse_other_beneficiary(self) -> None:
        """A colleague posted for a self-only item is an error, never silently replaced."""
        posted = (self.data.get(self.add_prefix("beneficiary")) or "").strip()
        if not posted:
            return
        try:
            named = PersonField().clean(posted)
        except ValidationError:
            named = None
        if named is None or named != self.requester_employee:
            raise ValidationError(
                _("This service can only be ordered for yourself."), code="self_only"
            )

    @property
    def answers(self) -> dict:
        """The dynamic answers as JSON-ready values, keyed by field key."""
        return {
            d.key: _to_json(self.cleaned_data.get(self.FIELD_PREFIX + d.key))
            if self.field_states[d.key].visible
            else None
            for d in self.definitions
        }

    def dynamic_fields(self):
        return [self[self.FIELD_PREFIX + d.key] for d in self.definitions]

    def markup_key(self) -> tuple | None:
        """What the markup of this unbound form's fields is a function of (the page keeps
        it, requests_app/templatetags/order_form.py), without its cost centres' options; or
        None where something else decides it: a bound form (its data and errors), a field
        another app builds (the directory's groups), initial values that are not plain.

        The fields are built from the definitions' columns alone (their labels, types,
        formats, bounds, conditions) and the item's version and whether it may be ordered
        for others; dates from today's date; texts in the active language."""
        if self.is_bound or not is_value(self.initial):
            return None
        definitions = []
        for definition in self.definitions:
            if definition.field_type in FIELD_BUILDERS:
                return None
            values = tuple(getattr(definition, name) for name in _DEFINITION_COLUMNS)
            if not is_value(values):
                return None
            definitions.append(tuple(map(repr, values)))
        return (
            type(self),
            self.prefix,
            self.auto_id,
            repr(self.fields["item_version"].initial),
            "beneficiary" in self.fields,
            tuple(definitions),
            tuple(sorted((name, repr(value)) for name, value in self.initial.items())),
            translation.get_language(),
            timezone.get_current_timezone_name(),
            timezone.localdate(),
            get_script_prefix(),  # the people picker's address
        )


# Every column of a field definition but its item: any of them may change how it renders.
_DEFINITION_COLUMNS = tuple(
    field.attname for field in FormField._meta.concrete_fields if field.name != "item"
)
