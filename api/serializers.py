"""Request and response bodies of the API. Reads only: writes go through the services."""

import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings

from api.models import ApiToken
from catalogue import selectors as catalogue_selectors
from catalogue.choices import FieldType
from catalogue.models import (
    ApprovalPolicyStep,
    CatalogueItem,
    Category,
    CostCentre,
    Department,
    FormField,
    FormRule,
)
from catalogue.models.items import choice_lines
from itportal.inputs import validate_date_range
from itportal.memo import Memo, weight
from provisioning.models import Entitlement, ProvisioningJob
from requests_app.choices import RequestState
from requests_app.models import Approval, FulfilmentTask, RequestEvent, ServiceRequest

TEXT_MAX = 4000


class StrictFieldsMixin:
    """Unknown keys in a body are an error, not silently dropped (typos, forged fields)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name[:100]: [_("Unknown field.")] for name in unknown[:20]}
                )
        return super().to_internal_value(data)


class BoundedDateTimeField(serializers.DateTimeField):
    """DRF's, refusing moments outside the portal's date range (itportal.inputs) before
    the time-zone arithmetic, which overflows near the years 1 and 9999."""

    def enforce_timezone(self, value):
        try:
            validate_date_range(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return super().enforce_timezone(value)


class BoundedDateField(serializers.DateField):
    def to_internal_value(self, value):
        value = super().to_internal_value(value)
        try:
            validate_date_range(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: BoundedDateTimeField,
        models.DateField: BoundedDateField,
    }


class ValuesBodies:
    """The bodies a serializer makes of model objects, made of rows read as values.

    Each field formats the row's value under its ``source`` with its own
    ``to_representation`` (None stays None, as in ``Serializer.to_representation``), in
    the serializer's order of fields; ``made`` maps the names of the other fields (nested,
    related) to a function of the row. Lists of many rows use it: a dict per row instead of
    model objects walked field by field. The fields are built once per process (building
    a model serializer's fields took a fifth of the item list's CPU); formatting uses no
    request state, and times are converted to the time zone active when it is called.
    """

    def __init__(self, serializer_class, **made):
        self.serializer_class = serializer_class
        self.made = made
        self._plans = {}

    @cached_property
    def plan(self) -> list[tuple]:
        plan = []
        for field in self.serializer_class()._readable_fields:
            name = field.field_name
            if name in self.made:
                plan.append((name, None, self.made[name], None))
            else:
                plan.append((name, field.source, field.to_representation, field))
        return plan

    @cached_property
    def _timed(self) -> bool:
        return any(isinstance(field, serializers.DateTimeField) for *_, field in self.plan)

    def _plan_now(self) -> list[tuple]:
        """(name, source, make, kind) per field, times in the time zone active now: kept
        per zone, not made again for each of a list's nested lists (75 a page of items).
        A value of type ``kind`` is its own body (see ``_passed_type``)."""
        zone = timezone.get_current_timezone() if self._timed else None
        plan = self._plans.get(zone)
        if plan is None:
            plan = []
            for name, source, make, field in self.plan:
                kind = _NotPassed
                if isinstance(field, serializers.DateTimeField):
                    make = _iso_time(field, zone)
                elif field is not None:
                    kind = _passed_type(field)
                plan.append((name, source, make, kind))
            self._plans[zone] = plan
        return plan

    def __call__(self, rows) -> list[dict]:
        plan = self._plan_now()
        bodies = []
        for row in rows:
            body = {}
            for name, source, make, kind in plan:
                if source is None:
                    body[name] = make(row)
                    continue
                value = row[source]
                body[name] = value if value is None or type(value) is kind else make(value)
            bodies.append(body)
        return bodies


class _NotPassed:
    """A type no value has: every value is formatted."""


def _passed_type(field) -> type:
    """The type whose values ``field.to_representation`` returns unchanged, so they are
    passed through as they are (checked inline, without a call per value): DRF's
    BooleanField compares each value with its sets of true, false and null spellings (a
    list of items has a dozen booleans per row), CharField makes a copy of a text with
    ``str()``, ChoiceField looks each text up among its choices (a dozen per form field).
    ``_NotPassed`` for other fields."""
    method = type(field).to_representation
    if method is serializers.ChoiceField.to_representation:
        # Choices of texts map each text to itself (and any other value to itself).
        texts = field.choice_strings_to_values.items()
        if all(type(key) is type(value) is str and key == value for key, value in texts):
            return str
        return _NotPassed
    return {
        serializers.BooleanField.to_representation: bool,
        serializers.CharField.to_representation: str,
        serializers.IntegerField.to_representation: int,
    }.get(method, _NotPassed)


def _iso_time(field: serializers.DateTimeField, zone):
    """``field.to_representation`` for the aware times of a list, in the time zone
    ``zone``: DRF's ISO 8601 ("+00:00" as "Z") without its per-value look-ups of the format
    and time zone (115 values a page). Anything else goes to the field."""
    iso = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if not settings.USE_TZ or iso is None or iso.lower() != ISO_8601:
        return field.to_representation

    def time(value):
        if not isinstance(value, datetime.datetime) or value.tzinfo is None:
            return field.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return time


def _full_name(first_name: str, last_name: str, username: str) -> str:
    """``User.get_full_name() or get_username()`` from the columns."""
    return f"{first_name} {last_name}".strip() or username


def _user_columns(path: str) -> tuple[str, ...]:
    """The columns ``_user_ref`` reads of the user at ``path``."""
    return (f"{path}__username", f"{path}__first_name", f"{path}__last_name")


def _employee_columns(path: str) -> tuple[str, ...]:
    """The columns ``_employee_ref`` reads of the employee at ``path``."""
    return (f"{path}__personnel_number", *_user_columns(f"{path}__user"))


def _user_ref(row: dict, path: str) -> dict | None:
    """UserRefSerializer's body of the user at ``path`` of a values row (None for none)."""
    username = row[f"{path}__username"]
    if username is None:
        return None
    first_name, last_name = row[f"{path}__first_name"], row[f"{path}__last_name"]
    return {"username": username, "name": _full_name(first_name, last_name, username)}


def _employee_ref(row: dict, path: str) -> dict:
    """EmployeeRefSerializer's body of the employee at ``path`` of a values row."""
    user = _user_ref(row, f"{path}__user")
    return {"uid": row[f"{path}__personnel_number"], "name": user["name"]}


# --- errors (docs/api.md, "Errors") ---------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """401, 403, 404, 405, 409, 429."""

    detail = serializers.CharField(help_text=_("What went wrong, in the user's language."))


class ValidationErrorSerializer(serializers.Serializer):
    """400: each field with its problems; ``non_field_errors`` for the body as a whole.

    Nested bodies name the place, e.g. ``answers.room`` or ``form_fields[1].choices``.
    """

    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


# --- people -------------------------------------------------------------------------------


class UserRefSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class EmployeeRefSerializer(serializers.Serializer):
    uid = serializers.CharField(source="personnel_number", read_only=True)
    name = serializers.CharField(source="display_name", read_only=True)


class CostCentreSerializer(serializers.ModelSerializer):
    class Meta:
        model = CostCentre
        fields = ["id", "code", "name"]


# --- catalogue ----------------------------------------------------------------------------


class CategorySerializer(StrictModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "slug", "name", "description", "position"]
        # Uniqueness is checked by the model's full_clean in the service, like the admin.
        extra_kwargs = {"slug": {"validators": []}}


class FormFieldSerializer(StrictModelSerializer):
    choices = serializers.ListField(
        child=serializers.CharField(max_length=200),
        source="choice_list",
        required=False,
        max_length=200,
        help_text=_("For choice fields: the options."),
    )

    class Meta:
        model = FormField
        fields = [
            "key",
            "label",
            "help_text",
            "field_type",
            "required",
            "position",
            "choices",
            "answer_format",
            "pattern",
            "min_value",
            "max_value",
            "max_length",
            "earliest_days",
            "latest_days",
            "needed_from",
            "directory_base",
            "condition_effect",
            "condition_field",
            "condition_operator",
            "condition_value",
        ]
        extra_kwargs = {"key": {"validators": []}}

    def validate_choices(self, value):
        if any("\n" in choice or "\r" in choice for choice in value):
            raise serializers.ValidationError(_("An option must not contain a line break."))
        return value

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if "choice_list" in values:
            values["choices"] = "\n".join(values.pop("choice_list"))
        return values


class FormRuleSerializer(StrictModelSerializer):
    class Meta:
        model = FormRule
        fields = ["position", "kind", "first_field", "second_field", "more_fields", "message"]


class ApprovalStepSerializer(StrictModelSerializer):
    group = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Group.objects.all(),
        required=False,
        allow_null=True,
        help_text=_("For group steps: the group's name."),
    )

    class Meta:
        model = ApprovalPolicyStep
        fields = ["position", "approver_kind", "group", "person_field_key", "label"]


class CatalogueItemSerializer(StrictModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    service_owner = serializers.SlugRelatedField(slug_field="name", queryset=Group.objects.all())
    allowed_departments = serializers.SlugRelatedField(
        slug_field="code", queryset=Department.objects.all(), many=True, required=False
    )
    allowed_groups = serializers.SlugRelatedField(
        slug_field="name", queryset=Group.objects.all(), many=True, required=False
    )
    form_fields = FormFieldSerializer(many=True, required=False, max_length=100)
    form_rules = FormRuleSerializer(many=True, required=False, max_length=50)
    approval_policy = ApprovalStepSerializer(
        many=True, required=False, source="approval_steps", max_length=20
    )

    class Meta:
        model = CatalogueItem
        fields = [
            "id",
            "slug",
            "name",
            "summary",
            "description",
            "keywords",
            "category",
            "service_owner",
            "fulfilment_kind",
            "price_once",
            "price_monthly",
            "audience",
            "allowed_departments",
            "allowed_groups",
            "orderable_for_others",
            "independent_fulfilment",
            "grants_access",
            "collect_on_leaving",
            "is_active",
            "valid_until_field",
            "sla_target_days",
            "response_target_hours",
            "version",
            "created_at",
            "updated_at",
            "form_fields",
            "form_rules",
            "approval_policy",
        ]
        read_only_fields = ["version", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"validators": []}}

    # The list reads its items as values (catalogue.selectors.item_list_values) and their
    # forms, rules and policies as values too (item_list_parts): building and walking six
    # kinds of model objects through prefetches and nested serializers was most of its
    # CPU. ``rows`` makes the same bodies (tests/test_api_catalogue.py compares).
    ROW_COLUMNS = (
        "id", "slug", "name", "summary", "description", "keywords", "category__slug",
        "service_owner__name", "fulfilment_kind", "price_once", "price_monthly", "audience",
        "orderable_for_others", "independent_fulfilment", "grants_access",
        "collect_on_leaving", "is_active", "valid_until_field", "sla_target_days",
        "response_target_hours", "version", "created_at", "updated_at",
    )  # fmt: skip
    FORM_FIELD_COLUMNS = (
        "key", "label", "help_text", "field_type", "required", "position", "choices",
        "answer_format", "pattern", "min_value", "max_value", "max_length", "earliest_days",
        "latest_days", "needed_from", "directory_base", "condition_effect", "condition_field",
        "condition_operator", "condition_value",
    )  # fmt: skip
    FORM_RULE_COLUMNS = (
        "position", "kind", "first_field", "second_field", "more_fields", "message",
    )  # fmt: skip
    STEP_COLUMNS = ("position", "approver_kind", "group__name", "person_field_key", "label")

    @classmethod
    def rows(cls, values) -> list[dict]:
        """The bodies of ``values`` (dicts of ROW_COLUMNS, the allowed departments' codes
        and groups' names and the parts' stamp, see ``item_list_values``): each kept per
        process under its row and the time zone (the only thing the body depends on
        besides them), so only items whose body is not kept have their parts read (in
        three queries) and their bodies made."""
        values = list(values)
        zone = timezone.get_current_timezone()
        keys = [
            (zone, *(tuple(value) if type(value) is list else value for value in row.values()))
            for row in values
        ]
        kept = [_KEPT_ITEM_BODIES.get(key) for key in keys]
        missing = [row for row, body in zip(values, kept, strict=True) if body is None]
        if not missing:
            return KeptBodies(kept)
        parts = catalogue_selectors.item_list_parts(
            [row["id"] for row in missing],
            form_fields=cls.FORM_FIELD_COLUMNS,
            form_rules=cls.FORM_RULE_COLUMNS,
            approval_steps=cls.STEP_COLUMNS,
        )
        for row in missing:
            for name, of_items in parts.items():
                row[f"part_{name}"] = of_items.get(row["id"], ())
        made = iter(_ITEM_BODIES(missing))
        for index, key in enumerate(keys):
            if kept[index] is None:
                body = next(made)
                text = KEPT_BODY_RENDERER.render(body)
                kept[index] = (body, text)
                _KEPT_ITEM_BODIES.put(key, kept[index], weight(key) + weight(body) + len(text))
        return KeptBodies(kept)


# An item's body and its JSON by its row and time zone (CatalogueItemSerializer.rows): a
# few hundred items in two or three zones, of 2 to 6 kB each. Kept bodies are shared by
# the views that read them and not changed (the renderer only reads them).
_KEPT_ITEM_BODIES = Memo(2048, 8 << 20)
KEPT_BODY_RENDERER = JSONRenderer()


class KeptBodies(list):
    """Bodies of a list page, each with its JSON as ``KEPT_BODY_RENDERER`` writes it
    (``texts``): ``KeptBodiesJSONRenderer`` writes the page around them."""

    __slots__ = ("texts",)

    def __init__(self, kept: list[tuple[dict, bytes]]):
        super().__init__(body for body, _text in kept)
        self.texts = [text for _body, text in kept]


class KeptBodiesJSONRenderer(JSONRenderer):
    """DRF's JSON, but for a page whose ``results`` (its last key) are ``KeptBodies`` only
    the page's frame is encoded and the bodies' kept texts put in: encoding the bodies of
    an item list on every view was a tenth of its CPU. The same bytes: without indent,
    a value's JSON is the same alone and in a list, and the line separators
    (U+2028, U+2029) are escaped in both."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        results = data.get("results") if type(data) is dict else None
        if (
            type(results) is not KeptBodies
            or next(reversed(data)) != "results"
            or self.get_indent(accepted_media_type, renderer_context or {}) is not None
            or self.compact != KEPT_BODY_RENDERER.compact
        ):
            return super().render(data, accepted_media_type, renderer_context)
        frame = super().render({**data, "results": []}, accepted_media_type, renderer_context)
        if not frame.endswith(b"[]}"):
            return super().render(data, accepted_media_type, renderer_context)
        comma = b"," if self.compact else b", "
        return b"".join((frame[:-3], b"[", comma.join(results.texts), b"]}"))


_FORM_FIELD_BODIES = ValuesBodies(
    FormFieldSerializer, choices=lambda row: choice_lines(row["choices"])
)
_FORM_RULE_BODIES = ValuesBodies(FormRuleSerializer)
_STEP_BODIES = ValuesBodies(ApprovalStepSerializer, group=lambda row: row["group__name"])
_ITEM_BODIES = ValuesBodies(
    CatalogueItemSerializer,
    category=lambda row: row["category__slug"],
    service_owner=lambda row: row["service_owner__name"],
    allowed_departments=lambda row: row["allowed_department_codes"],
    allowed_groups=lambda row: row["allowed_group_names"],
    form_fields=lambda row: _FORM_FIELD_BODIES(row["part_form_fields"]),
    form_rules=lambda row: _FORM_RULE_BODIES(row["part_form_rules"]),
    approval_policy=lambda row: _STEP_BODIES(row["part_approval_steps"]),
)


# --- requests -----------------------------------------------------------------------------


class RequestSerializer(serializers.ModelSerializer):
    item = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    item_name = serializers.CharField(read_only=True)
    category = serializers.CharField(source="item.category.name", read_only=True)
    beneficiary = EmployeeRefSerializer(read_only=True)
    requester = UserRefSerializer(read_only=True)
    cost_centre = CostCentreSerializer(read_only=True)

    class Meta:
        model = ServiceRequest
        fields = [
            "id",
            "state",
            "item",
            "item_name",
            "category",
            "item_version",
            "requester",
            "beneficiary",
            "cost_centre",
            "price_once",
            "price_monthly",
            "created_at",
            "submitted_at",
            "approved_at",
            "fulfilment_started_at",
            "closed_at",
        ]
        read_only_fields = fields

    # The lists read these columns as values (requests_app.selectors.list_values): a row is
    # one dict, not seven model objects (request, item, category, beneficiary and their
    # user, requester, cost centre) walked field by field. ``rows`` gives each the same
    # body as ``to_representation`` of the request (tests/test_api_requests.py compares).
    ROW_COLUMNS = (
        "id",
        "state",
        "item__slug",
        "listed_item_name",
        "item__name",
        "item__category__name",
        "item_version",
        *_user_columns("requester"),
        *_employee_columns("beneficiary"),
        "cost_centre_id",
        "cost_centre__code",
        "cost_centre__name",
        "price_once",
        "price_monthly",
        "created_at",
        "submitted_at",
        "approved_at",
        "fulfilment_started_at",
        "closed_at",
    )

    @classmethod
    def rows(cls, values) -> list[dict]:
        """The bodies of ``values`` (dicts of ROW_COLUMNS), as ``to_representation``."""
        return _REQUEST_BODIES(values)


_REQUEST_BODIES = ValuesBodies(
    RequestSerializer,
    item=lambda row: row["item__slug"],
    item_name=lambda row: row["listed_item_name"] or row["item__name"],
    category=lambda row: row["item__category__name"],
    requester=lambda row: _user_ref(row, "requester"),
    beneficiary=lambda row: _employee_ref(row, "beneficiary"),
    cost_centre=lambda row: {
        "id": row["cost_centre_id"],
        "code": row["cost_centre__code"],
        "name": row["cost_centre__name"],
    },
)


class ApprovalSerializer(serializers.ModelSerializer):
    approver = UserRefSerializer(read_only=True, allow_null=True)
    group = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    decided_by = UserRefSerializer(read_only=True, allow_null=True)
    on_behalf_of = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "position",
            "approver_kind",
            "label",
            "status",
            "approver",
            "group",
            "routing_note",
            "activated_at",
            "decided_by",
            "on_behalf_of",
            "decided_at",
            "comment",
        ]
        read_only_fields = fields


class RequestEventSerializer(serializers.ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)
    # Empty for the record of the request's creation.
    from_state = serializers.ChoiceField(choices=RequestState.choices, allow_blank=True,
                                         read_only=True)  # fmt: skip
    on_behalf_of = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = RequestEvent
        fields = ["id", "created_at", "kind", "from_state", "to_state", "actor", "on_behalf_of",
                  "comment"]  # fmt: skip
        read_only_fields = fields


class AnswerSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    field_type = serializers.ChoiceField(choices=FieldType.choices)
    value = serializers.JSONField(allow_null=True)


class RequestDetailSerializer(RequestSerializer):
    fulfilment_group = serializers.SlugRelatedField(slug_field="name", read_only=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    answers = serializers.SerializerMethodField()
    approvals = ApprovalSerializer(many=True, read_only=True, source="approval_list")
    timeline = RequestEventSerializer(many=True, read_only=True, source="timeline_list")
    actions = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        source="action_names",
        help_text=_("The actions you may take now (POST /api/v1/requests/{id}/{action}/)."),
    )

    class Meta(RequestSerializer.Meta):
        fields = [
            *RequestSerializer.Meta.fields,
            "justification",
            "needed_from",
            "fulfilment_due_on",
            "response_due_at",
            "responded_at",
            "hold_reason",
            "fulfilment_group",
            "assignee",
            "resolution_note",
            "answers",
            "approvals",
            "timeline",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(AnswerSerializer(many=True))
    def get_answers(self, service_request):
        answers = service_request.answers or {}
        return [
            {
                "key": f["key"],
                "label": f["label"],
                "field_type": f["field_type"],
                "value": answers.get(f["key"]),
            }
            for f in service_request.item_snapshot.get("fields", [])
        ]


class OrderBodySerializer(StrictSerializer):
    """One item with its answers, as the order page posts it: for an order or a cart line."""

    item = serializers.SlugField(max_length=100, help_text=_("Slug of the catalogue item."))
    item_version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text=_("The item version the answers were written for (from the item)."),
    )
    beneficiary = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("Personnel number of the colleague to order for; empty for yourself."),
    )
    cost_centre = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text=_("Id of the cost centre to charge; empty for the beneficiary's."),
    )
    justification = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    answers = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text=_(
            "Answers keyed by the form field's key: text, number, date (YYYY-MM-DD), choice "
            "(the option), multiple choice (a list of options), yes/no (true/false), person "
            "(personnel number)."
        ),
    )


class RequestCreateSerializer(OrderBodySerializer):
    submit = serializers.BooleanField(
        default=True, help_text=_("false keeps the request as a draft; submit it later.")
    )


class ActionBodySerializer(StrictSerializer):
    expected_state = serializers.ChoiceField(
        choices=RequestState.choices,
        required=False,
        help_text=_("The state you saw; if the request has moved on since, the answer is 409."),
    )


class CommentBodySerializer(ActionBodySerializer):
    comment = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)


class DecisionBodySerializer(CommentBodySerializer):
    expected_approval = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text=_("Id of the approval step you decide; 409 if it was decided meanwhile."),
    )


class RejectBodySerializer(DecisionBodySerializer):
    comment = serializers.CharField(max_length=TEXT_MAX)


class CompleteBodySerializer(ActionBodySerializer):
    note = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)


class FailBodySerializer(ActionBodySerializer):
    reason = serializers.CharField(max_length=TEXT_MAX)


# --- provisioning -------------------------------------------------------------------------


class ItemRefSerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class EntitlementSerializer(serializers.ModelSerializer):
    holder = EmployeeRefSerializer(read_only=True)
    item = ItemRefSerializer(read_only=True)
    request = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Entitlement
        fields = ["id", "holder", "item", "request", "state", "granted_at", "expires_on",
                  "revoked_at", "revoke_reason", "review_note"]  # fmt: skip
        read_only_fields = fields

    # The list reads these columns as values (one dict per row, not the entitlement, holder,
    # user and item objects); ``rows`` makes the same bodies (tests/test_api_provisioning.py
    # compares).
    ROW_COLUMNS = (
        "id",
        *_employee_columns("holder"),
        "item__slug",
        "item__name",
        "request_id",
        "state",
        "granted_at",
        "expires_on",
        "revoked_at",
        "revoke_reason",
        "review_note",
    )

    @classmethod
    def rows(cls, values) -> list[dict]:
        """The bodies of ``values`` (dicts of ROW_COLUMNS), as ``to_representation``."""
        return _ENTITLEMENT_BODIES(values)


_ENTITLEMENT_BODIES = ValuesBodies(
    EntitlementSerializer,
    holder=lambda row: _employee_ref(row, "holder"),
    item=lambda row: {"slug": row["item__slug"], "name": row["item__name"]},
    request=lambda row: row["request_id"],
)


class FulfilmentTaskSerializer(serializers.ModelSerializer):
    """Work nobody ordered: collect a leaver's device, remove a manual access by hand."""

    request = serializers.PrimaryKeyRelatedField(read_only=True)
    item_name = serializers.CharField(source="request.item_name", read_only=True)
    person = EmployeeRefSerializer(read_only=True)
    fulfilment_group = serializers.SlugRelatedField(slug_field="name", read_only=True)
    done_by = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = FulfilmentTask
        fields = ["id", "kind", "state", "request", "item_name", "person", "fulfilment_group",
                  "reason", "created_at", "done_at", "done_by", "note"]  # fmt: skip
        read_only_fields = fields

    # The list reads these columns as values (requests_app.selectors.task_list_values): a
    # dict per task, not the task, its request (item snapshot and answers), person and
    # department, user, group and done_by as model objects; ``rows`` makes the same bodies
    # (tests/test_api_fulfilment_tasks.py compares).
    ROW_COLUMNS = (
        "id",
        "kind",
        "state",
        "request_id",
        "item_name",
        *_employee_columns("person"),
        "fulfilment_group__name",
        "reason",
        "created_at",
        "done_at",
        *_user_columns("done_by"),
        "note",
    )

    @classmethod
    def rows(cls, values) -> list[dict]:
        """The bodies of ``values`` (dicts of ROW_COLUMNS), as ``to_representation``."""
        return _TASK_BODIES(values)


_TASK_BODIES = ValuesBodies(
    FulfilmentTaskSerializer,
    request=lambda row: row["request_id"],
    item_name=lambda row: row["item_name"],
    person=lambda row: _employee_ref(row, "person"),
    fulfilment_group=lambda row: row["fulfilment_group__name"],
    done_by=lambda row: _user_ref(row, "done_by"),
)


class TaskDoneBodySerializer(StrictSerializer):
    note = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text=_("What was done, optional.")
    )


class RevokeBodySerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class JobSerializer(serializers.ModelSerializer):
    request = serializers.PrimaryKeyRelatedField(read_only=True)
    entitlement = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    attributes = serializers.JSONField(read_only=True)

    class Meta:
        model = ProvisioningJob
        fields = ["id", "request", "entitlement", "direction", "position", "kind", "user_uid",
                  "target_dn", "attributes", "dialect", "state", "attempts", "last_error",
                  "created_at", "updated_at", "started_at", "finished_at"]  # fmt: skip
        read_only_fields = fields

    # The list reads the job's own columns as values (not the request, its item and
    # beneficiary and the entitlement that jobs_visible_to joins for the job's page);
    # ``rows`` makes the same bodies (tests/test_api_provisioning.py compares). ``position``
    # is also the list's order, which the next link's cursor reads from the last row.
    ROW_COLUMNS = (
        "id",
        "request_id",
        "entitlement_id",
        "direction",
        "position",
        "kind",
        "user_uid",
        "target_dn",
        "attributes",
        "dialect",
        "state",
        "attempts",
        "last_error",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
    )

    @classmethod
    def rows(cls, values) -> list[dict]:
        """The bodies of ``values`` (dicts of ROW_COLUMNS), as ``to_representation``."""
        return _JOB_BODIES(values)


class JobDetailSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log"]
        read_only_fields = fields


_JOB_BODIES = ValuesBodies(
    JobSerializer,
    request=lambda row: row["request_id"],
    entitlement=lambda row: row["entitlement_id"],
)


class EmptyBodySerializer(StrictSerializer):
    pass


# --- controlling --------------------------------------------------------------------------


class CostRowSerializer(serializers.Serializer):
    month = serializers.DateField()
    cost_centre_code = serializers.CharField()
    cost_centre_name = serializers.CharField()
    fulfilled = serializers.IntegerField()
    once = serializers.DecimalField(max_digits=14, decimal_places=2)
    entitlements = serializers.IntegerField()
    monthly = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)


class UsageRowSerializer(serializers.Serializer):
    month = serializers.DateField()
    service = serializers.CharField()
    group = serializers.CharField(help_text=_("Department or cost centre, with a breakdown."))
    orders = serializers.IntegerField()
    active = serializers.IntegerField()


class SecondsField(serializers.Field):
    """A duration as seconds (a number), the form spreadsheets and BI tools read directly."""

    def to_representation(self, value):
        return round(value.total_seconds(), 1)


SecondsField = extend_schema_field({"type": "number", "nullable": True})(SecondsField)


class LeadTimeRowSerializer(serializers.Serializer):
    item_id = serializers.IntegerField(
        allow_null=True, help_text=_("Empty in the row of all services together.")
    )
    service = serializers.CharField()
    fulfilled = serializers.IntegerField()
    with_approval = serializers.IntegerField(
        help_text=_("Fulfilled requests that had approval steps.")
    )
    approval_p50_seconds = SecondsField(source="approval_p50", allow_null=True)
    approval_p90_seconds = SecondsField(source="approval_p90", allow_null=True)
    fulfilment_p50_seconds = SecondsField(source="fulfilment_p50", allow_null=True)
    fulfilment_p90_seconds = SecondsField(source="fulfilment_p90", allow_null=True)
    total_p50_seconds = SecondsField(source="total_p50", allow_null=True)
    total_p90_seconds = SecondsField(source="total_p90", allow_null=True)
    automated = serializers.IntegerField(help_text=_("Fulfilled without manual work."))
    automation_rate = serializers.FloatField(allow_null=True)


class SatisfactionRowSerializer(serializers.Serializer):
    item_id = serializers.IntegerField(
        allow_null=True, help_text=_("Empty in the row of all services together.")
    )
    service = serializers.CharField()
    fulfilled = serializers.IntegerField()
    rated = serializers.IntegerField()
    average = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)
    score_1 = serializers.IntegerField()
    score_2 = serializers.IntegerField()
    score_3 = serializers.IntegerField()
    score_4 = serializers.IntegerField()
    score_5 = serializers.IntegerField()


# --- tokens -------------------------------------------------------------------------------


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "user", "created_at", "last_used_at", "expires_at",
                  "revoked_at", "is_usable"]  # fmt: skip
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_at = BoundedDateTimeField(required=False, allow_null=True)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(
        read_only=True, help_text=_("The key. It is shown only now: store it safely.")
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


# --- bundles ----------------------------------------------------------------------------


class BundleEntrySerializer(serializers.Serializer):
    item = serializers.CharField(source="item.slug", read_only=True)
    name = serializers.CharField(source="item.name", read_only=True)
    item_version = serializers.IntegerField(source="item.version", read_only=True)
    selected = serializers.BooleanField(
        read_only=True, help_text=_("Chosen by default; the others are optional.")
    )
    orderable = serializers.BooleanField(
        read_only=True, help_text=_("Whether you may order this item.")
    )


class BundleSerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    items = BundleEntrySerializer(source="entry_list", many=True, read_only=True)


class BundleOrderItemSerializer(StrictSerializer):
    item = serializers.SlugField(max_length=100, help_text=_("Slug of an item of the bundle."))
    item_version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text=_("The item version the answers were written for (from the bundle)."),
    )
    answers = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text=_("Answers keyed by the form field's key, as when ordering the item alone."),
    )


class BundleOrderSerializer(StrictSerializer):
    beneficiary = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("Personnel number of the colleague to order for; empty for yourself."),
    )
    cost_centre = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text=_("Id of the cost centre to charge; empty for the beneficiary's."),
    )
    justification = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    items = BundleOrderItemSerializer(
        many=True,
        help_text=_("The chosen items of the bundle with their answers; the others are left out."),
    )

    def validate_items(self, value):
        if not value:
            raise serializers.ValidationError(_("Choose at least one item of the bundle."))
        if len(value) > 50:
            raise serializers.ValidationError(_("A bundle order has at most 50 items."))
        slugs = [entry["item"] for entry in value]
        if len(set(slugs)) != len(slugs):
            raise serializers.ValidationError(_("Each item can be chosen only once."))
        return value


class SubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    bundle = serializers.CharField(
        source="bundle.slug", read_only=True, allow_null=True, default=None
    )
    created_at = serializers.DateTimeField(read_only=True)
    requests = RequestSerializer(source="request_list", many=True, read_only=True)


# --- cart -------------------------------------------------------------------------------


class CartLineSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    item = serializers.CharField(source="item.slug", read_only=True)
    item_name = serializers.CharField(source="item.name", read_only=True)
    item_version = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text=_("The item version the answers were written for."),
    )
    beneficiary = EmployeeRefSerializer(read_only=True)
    answers = serializers.JSONField(
        read_only=True, help_text=_("The answers keyed by the form field's key.")
    )
    created_at = serializers.DateTimeField(read_only=True)


class CartLineCreateSerializer(OrderBodySerializer):
    """An item for the cart: the same body as an order (``POST /requests/``), checked the
    same way; nothing is ordered until the cart is submitted."""


class CartSubmitSerializer(StrictSerializer):
    lines = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        max_length=100,
        help_text=_(
            "The ids of all lines of your cart, as you last read them; if the cart has "
            "changed since, nothing is ordered."
        ),
    )
