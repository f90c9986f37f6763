"""API views: thin, over the same selectors, services, FilterSets and permissions as the pages.

Objects a user may not see are 404 (the selector's queryset decides), actions a user may
not take are 403 (the service's permission check decides), and actions that no longer
fit the object's state are 409 (the service's ActionConflict).
"""

import logging

from django.db import DatabaseError
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from api import request_rows
from api import selectors as token_selectors
from api import serializers as s
from api import services as token_services
from api.models import ApiToken
from api.ordering import StableOrderingFilter
from api.orders import (
    bundle_form_data,
    bundle_line_errors,
    order_form_data,
    order_form_errors,
)
from api.permissions import IsItAdmin, ItAdminWrites
from catalogue import selectors as catalogue_selectors
from catalogue import services as catalogue_services
from catalogue.forms import OrderForm
from catalogue.models import ApprovalPolicyStep, Bundle, CatalogueItem, Category, CostCentre
from itportal.roles import is_it_admin
from provisioning import selectors as provisioning_selectors
from provisioning import services as provisioning_services
from provisioning.filtersets import EntitlementFilterSet, JobFilterSet
from provisioning.models import Entitlement, ProvisioningJob
from requests_app import cart
from requests_app import selectors as request_selectors
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.filtersets import RequestFilterSet, TaskFilterSet
from requests_app.models import CartLine, FulfilmentTask, ServiceRequest
from requests_app.views import ACTIONS, DECISIONS, available_actions

logger = logging.getLogger(__name__)


def _employee(user):
    return getattr(user, "employee", None)


def _checked_order_form(user, body: dict) -> tuple[CatalogueItem, OrderForm]:
    """The item and its valid order form for an order body (an order or a cart line):
    403 for no employee or an item not open to them, 404 for no such item, 400 with the
    form's errors under the API's names."""
    employee = _employee(user)
    if employee is None:
        raise PermissionDenied(_("Only employees can order services."))
    item = catalogue_selectors.orderable_item(employee, body["item"])
    data, errors = order_form_data(body, item)
    form = OrderForm(data, item=item, requester_employee=employee)
    valid = form.is_valid()
    for name, messages in order_form_errors(form).items():
        errors.setdefault(name, messages)  # a wrong type says more than "required"
    if errors or not valid:
        raise ValidationError(errors)
    return item, form


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request, *args, **kwargs):
    """Unknown paths under /api/ answer in JSON like the rest of the API, not with the page."""
    raise NotFound()


# --- catalogue ----------------------------------------------------------------------------


class CategoryFilterSet(filters.FilterSet):
    class Meta:
        model = Category
        fields = {"slug": ["exact"]}


@extend_schema_view(
    list=extend_schema(summary="Categories", tags=["catalogue"]),
    retrieve=extend_schema(summary="One category", tags=["catalogue"]),
    create=extend_schema(summary="Create a category (IT admins)", tags=["catalogue"]),
    update=extend_schema(summary="Change a category (IT admins)", tags=["catalogue"]),
    partial_update=extend_schema(summary="Change a category (IT admins)", tags=["catalogue"]),
    destroy=extend_schema(
        summary="Delete a category without items (IT admins)",
        tags=["catalogue"],
        responses={204: None, 409: OpenApiResponse(s.ErrorSerializer)},
    ),
)
class CategoryViewSet(viewsets.ModelViewSet):
    """Categories holding items you may order; IT administration sees and manages all."""

    serializer_class = s.CategorySerializer
    permission_classes = [IsAuthenticated, ItAdminWrites]
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    filterset_class = CategoryFilterSet
    ordering_fields = ["position", "name", "slug"]
    ordering = ["position", "name"]

    def get_queryset(self):
        if is_it_admin(self.request.user):
            return Category.objects.all()
        keys = catalogue_selectors.orderable_item_keys(self.request.user)
        return Category.objects.filter(pk__in=sorted({category for _item, category in keys}))

    def perform_create(self, serializer):
        serializer.instance = catalogue_services.category_save(
            category=None, data=serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = catalogue_services.category_save(
            category=serializer.instance, data=serializer.validated_data
        )


class ItemFilterSet(filters.FilterSet):
    q = filters.CharFilter(label=gettext_lazy("Search"), method="search", max_length=100)
    category = filters.CharFilter(field_name="category__slug", max_length=50)

    class Meta:
        model = CatalogueItem
        fields = ["q", "category", "fulfilment_kind", "is_active"]

    def search(self, queryset, name, value):
        return catalogue_selectors.items_matching(queryset, value)

    def get_form_class(self):
        """django-filter's form class, made once per process: it made a new class on every
        view (its fields, texts with lazy labels, depend on nothing of the request; each
        form copies them), a twentieth of the item list's CPU."""
        kind = type(self)
        if "_kept_form_class" not in kind.__dict__:
            kind._kept_form_class = super().get_form_class()
        return kind._kept_form_class


@extend_schema_view(
    list=extend_schema(summary="Catalogue items you may order", tags=["catalogue"]),
    retrieve=extend_schema(
        summary="One item with its order form and approval policy", tags=["catalogue"]
    ),
    create=extend_schema(summary="Create an item (IT admins)", tags=["catalogue"]),
    update=extend_schema(summary="Change an item (IT admins)", tags=["catalogue"]),
    partial_update=extend_schema(summary="Change an item (IT admins)", tags=["catalogue"]),
)
class CatalogueItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Items as on the catalogue pages: employees see what they may order (an active item
    closed to them is 403, an unknown or retired one 404); IT administration sees all and
    writes with the admin's validation. Every saved change raises the item's version."""

    serializer_class = s.CatalogueItemSerializer
    permission_classes = [IsAuthenticated, ItAdminWrites]
    renderer_classes = [s.KeptBodiesJSONRenderer]
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    filterset_class = ItemFilterSet
    ordering_fields = ["name", "slug", "price_once", "price_monthly", "updated_at"]
    ordering = ["category__position", "name"]

    def list(self, request, *args, **kwargs):
        columns = s.CatalogueItemSerializer.ROW_COLUMNS

        def values(items):
            return catalogue_selectors.item_list_values(items, columns)

        def chosen(items):
            return catalogue_selectors.item_page_values(items, columns)

        return values_list_response(
            self,
            request,
            values,
            s.CatalogueItemSerializer.rows,
            read_chosen=chosen,
            count=catalogue_selectors.item_count,
        )

    def get_queryset(self):
        if is_it_admin(self.request.user):
            items = CatalogueItem.objects.select_related("category", "service_owner")
        elif self.action == "list":
            # The items the employee may order by their ids (orderable_item_keys): the
            # count and the page's statement then have no joins, DISTINCT or subquery.
            keys = catalogue_selectors.orderable_item_keys(self.request.user)
            return CatalogueItem.objects.filter(
                catalogue_selectors.item_among(sorted(item for item, _category in keys))
            )
        else:
            items = catalogue_selectors.items_orderable_by(
                _employee(self.request.user)
            ).select_related("service_owner")
        if self.action == "list":
            return items  # read as values, its parts by item_list_parts
        return items.prefetch_related(
            "form_fields",
            "form_rules",
            # The steps' groups in the steps' query: one query less.
            Prefetch("approval_steps", ApprovalPolicyStep.objects.select_related("group")),
            "allowed_departments",
            "allowed_groups",
        )

    def get_object(self):
        if is_it_admin(self.request.user):
            return super().get_object()
        # The order page's rule: 404 unknown or retired, 403 closed to this employee.
        return catalogue_selectors.orderable_item(_employee(self.request.user), self.kwargs["slug"])

    def _save(self, serializer, item):
        data = dict(serializer.validated_data)
        form_fields = data.pop("form_fields", None)
        steps = data.pop("approval_steps", None)
        rules = data.pop("form_rules", None)
        serializer.instance = catalogue_services.item_save(
            item=item, data=data, form_fields=form_fields, approval_steps=steps, form_rules=rules
        )

    def perform_create(self, serializer):
        self._save(serializer, None)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)


@extend_schema_view(
    list=extend_schema(summary="Bundles: items ordered together in one go", tags=["catalogue"]),
    retrieve=extend_schema(summary="One bundle with its items", tags=["catalogue"]),
)
class BundleViewSet(viewsets.ReadOnlyModelViewSet):
    """Active bundles, each item marked whether you may order it; ordering one creates a
    joint order with one request per chosen item, validated as the bundle's page does."""

    serializer_class = s.BundleSerializer
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    queryset = Bundle.objects.none()  # model for the schema; get_queryset decides
    ordering = ["position", "name"]
    ordering_fields = ["position", "name", "slug"]

    def get_queryset(self):
        return catalogue_selectors.bundles_active()

    def _with_entries(self, bundles):
        bundles = list(bundles)
        entries = [entry for bundle in bundles for entry in bundle.entries.all()]
        orderable = catalogue_selectors.orderable_item_ids(
            _employee(self.request.user), {entry.item_id for entry in entries}
        )
        for bundle in bundles:
            bundle.entry_list = list(bundle.entries.all())
            for entry in bundle.entry_list:
                entry.orderable = entry.item_id in orderable
        return bundles

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = self.get_serializer(self._with_entries(page), many=True).data
        return self.get_paginated_response(data)

    def retrieve(self, request, *args, **kwargs):
        bundle = self._with_entries([self.get_object()])[0]
        return Response(self.get_serializer(bundle).data)

    @extend_schema(
        summary="Order a bundle: the chosen items in one submission",
        description=(
            "One request per chosen item, all or none. Errors name `items.<slug>` (not in the "
            "bundle, not open to you), `items.<slug>.answers.<key>`, "
            "`items.<slug>.item_version`, `beneficiary` or `cost_centre`."
        ),
        request=s.BundleOrderSerializer,
        responses={
            201: s.SubmissionSerializer,
            400: OpenApiResponse(s.ValidationErrorSerializer),
            403: OpenApiResponse(s.ErrorSerializer, description="You are no employee."),
            404: OpenApiResponse(s.ErrorSerializer, description="No such bundle, or retired."),
        },
        tags=["requests"],
    )
    @action(detail=True, methods=["post"])
    def order(self, request, slug=None):
        employee = _employee(request.user)
        if employee is None:
            raise PermissionDenied(_("Only employees can order services."))
        bundle = catalogue_selectors.active_bundle(slug)
        body = s.BundleOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entries = {entry.item.slug: entry for entry in bundle.entries.all()}
        data, chosen, errors = bundle_form_data(body.validated_data, entries)
        if errors:
            raise ValidationError(errors)
        slug_of = {entry.pk: item_slug for item_slug, entry in entries.items()}
        try:
            lines = cart.bundle_lines_checked(
                requester_employee=employee, bundle=bundle, chosen=chosen, data=data
            )
            errors = bundle_line_errors(lines, slug_of)
            if errors:
                raise ValidationError(errors)
            submission = cart.bundle_order(requester=request.user, bundle=bundle, lines=lines)
        except cart.CartRefused as exc:
            named = {f"items.{slug_of[key]}": messages for key, messages in exc.lines.items()}
            raise ValidationError(named or {"items": [exc.message]}) from exc
        submission.request_list = list(request_selectors.submission_requests(submission))
        return Response(s.SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="Cost centres (for orders)", tags=["catalogue"]),
    retrieve=extend_schema(summary="One cost centre", tags=["catalogue"]),
)
class CostCentreViewSet(viewsets.ReadOnlyModelViewSet):
    """The cost centres an order may be charged to, as offered by the order form."""

    lookup_value_regex = "[0-9]+"

    serializer_class = s.CostCentreSerializer
    queryset = CostCentre.objects.all()
    filterset_fields = {"code": ["exact"]}
    ordering_fields = ["code", "name"]
    ordering = ["code"]


# --- cart ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="My cart: items with their answers, not yet ordered", tags=["cart"]),
    create=extend_schema(
        summary="Put an item into my cart",
        description=(
            "The same body as ordering one item (`POST /requests/`), checked the same way "
            "(conditions, formats, rules across fields, who may order it); errors name "
            "`answers.<key>`, `beneficiary`, `cost_centre`, `item_version` or "
            "`non_field_errors` (e.g. the cart is full). Nothing is ordered yet."
        ),
        request=s.CartLineCreateSerializer,
        responses={
            201: s.CartLineSerializer,
            400: OpenApiResponse(s.ValidationErrorSerializer),
            403: OpenApiResponse(
                s.ErrorSerializer,
                description="The item is not open to you, or you are no employee.",
            ),
            404: OpenApiResponse(s.ErrorSerializer, description="No such item, or retired."),
        },
        tags=["cart"],
    ),
    destroy=extend_schema(
        summary="Remove a line from my cart",
        responses={
            204: None,
            404: OpenApiResponse(s.ErrorSerializer, description="Not a line of your cart."),
        },
        tags=["cart"],
    ),
)
class CartViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in user's cart, the same as the portal's Warenkorb: lines are kept until
    the cart is submitted, which places one request per line in one joint order."""

    serializer_class = s.CartLineSerializer
    queryset = CartLine.objects.none()  # model for the schema; get_queryset decides
    lookup_value_regex = "[0-9]+"
    ordering_fields = ["created_at", "id"]
    ordering = ["created_at", "id"]

    def get_queryset(self):
        return request_selectors.cart_lines_of(self.request.user)

    def create(self, request, *args, **kwargs):
        body = s.CartLineCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item, form = _checked_order_form(request.user, body.validated_data)
        line = cart.cart_line_add(owner=request.user, item=item, form=form)
        line = self.get_queryset().get(pk=line.pk)
        return Response(self.get_serializer(line).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        cart.cart_line_remove(owner=self.request.user, line_id=instance.pk)

    @extend_schema(
        summary="Order everything in my cart: one request per line, in one joint order",
        description=(
            "All or nothing: every line is checked again against its item as it is now. "
            "Errors name `lines.<id>` (the line's problems, e.g. an answer the item's form "
            "no longer accepts: remove the line and add it again) or `lines` (the cart is "
            "empty, or changed since you read it)."
        ),
        request=s.CartSubmitSerializer,
        responses={
            201: s.SubmissionSerializer,
            400: OpenApiResponse(s.ValidationErrorSerializer),
            403: OpenApiResponse(s.ErrorSerializer, description="You are no employee."),
        },
        tags=["cart"],
    )
    @action(detail=False, methods=["post"])
    def submit(self, request):
        body = s.CartSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            submission = cart.cart_submit(owner=request.user, line_ids=body.validated_data["lines"])
        except cart.CartRefused as exc:
            named = {f"lines.{key}": messages for key, messages in exc.lines.items()}
            raise ValidationError(named or {"lines": [exc.message]}) from exc
        submission.request_list = list(request_selectors.submission_requests(submission))
        return Response(s.SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED)


# --- requests -----------------------------------------------------------------------------


REQUEST_ORDERING = ["id", "created_at", "submitted_at", "closed_at", "state", "price_once"]


class RequestFilterBackend(filters.DjangoFilterBackend):
    """The request lists' RequestFilterSet, not built when the query names none of its
    filters (nor their suffixed parts): each filter then leaves the list as it is (empty
    values filter nothing), and building and validating the set's form of six fields was
    a tenth of a list's CPU (1 ms). A named filter, valid or not, goes through the set."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        names = () if filterset_class is None else filterset_class.base_filters
        if not any(
            key == name or key.startswith(f"{name}_")
            for key in request.query_params
            for name in names
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)


REQUEST_FILTER_BACKENDS = [RequestFilterBackend, StableOrderingFilter]


def _action_schema(body, summary, description=""):
    return extend_schema(
        summary=summary,
        description=description,
        request=body,
        responses={
            200: s.RequestDetailSerializer,
            400: OpenApiResponse(s.ValidationErrorSerializer),
            403: OpenApiResponse(s.ErrorSerializer),
            404: OpenApiResponse(s.ErrorSerializer),
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="The request's state does not allow this (any more).",
            ),
        },
        tags=["requests"],
    )


def values_list_response(
    view, request, values, rows, parts=None, read_chosen=None, parts_key=None, count=None
):
    """A list whose page is read as values (``values``: queryset -> values queryset;
    ``read_chosen``, if given: the chosen rows by a kept statement, see the paginator) and
    given its bodies by ``rows`` (a serializer's ``rows``): the count and the choice of the page's
    rows stay on the filtered model queryset, or on the union of ``parts()`` (querysets
    whose rows together are the list's, unfiltered; see the paginator), made only where
    their union is not kept under ``parts_key`` (what the parts are made of); ``count``: the
    paginator's."""
    queryset = view.filter_queryset(view.get_queryset())
    made = None
    if parts is not None:

        def made():
            return [view.filter_queryset(part) for part in parts()]

    page = view.paginator.paginate_queryset(
        queryset,
        request,
        view=view,
        read=values,
        parts=made,
        read_chosen=read_chosen,
        parts_key=parts_key,
        count=count,
    )
    if page is None:
        return Response(rows(values(queryset)))
    return view.get_paginated_response(rows(page))


def request_rows_list(view, request, parts=None, *, ids_first=False, parts_key=None):
    """A list of requests read as values and given the list body by
    ``RequestSerializer.rows``: a sixth of the CPU of serialising model objects."""

    columns = s.RequestSerializer.ROW_COLUMNS

    def values(rows):
        return request_selectors.list_values(rows, columns)

    def chosen(rows):
        return request_rows.page_rows(rows, columns)

    # The page's ids chosen first (from the parts' union, or with ``ids_first`` from the
    # list's own rows): their rows by a kept statement that looks related columns up per row.
    return values_list_response(
        view,
        request,
        values,
        s.RequestSerializer.rows,
        parts,
        read_chosen=chosen if parts or ids_first else None,
        parts_key=parts_key,
    )


@extend_schema_view(
    list=extend_schema(
        summary="My requests: placed by me or for me",
        description="With `scope=visible`: every request you have a part in (IT admins: all).",
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                enum=["mine", "visible"],
                description="mine (default): placed by or for me; visible: all I may see.",
            )
        ],
        tags=["requests"],
    ),
    retrieve=extend_schema(
        summary="One request with approvals, timeline and the actions you may take",
        tags=["requests"],
    ),
    create=extend_schema(
        summary="Order an item",
        description=(
            "The answers are validated exactly as the order form in the browser validates "
            "them; errors name `answers.<key>`, `beneficiary`, `cost_centre`, "
            "`item_version` or `non_field_errors`. The request is submitted unless "
            "`submit` is false."
        ),
        request=s.RequestCreateSerializer,
        responses={
            201: s.RequestDetailSerializer,
            403: OpenApiResponse(
                s.ErrorSerializer,
                description="The item is not open to you, or you are no employee.",
            ),
            404: OpenApiResponse(s.ErrorSerializer, description="No such item, or retired."),
        },
        tags=["requests"],
    ),
)
class RequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = ServiceRequest.objects.none()  # model for the schema; get_queryset decides
    lookup_value_regex = "[0-9]+"
    filter_backends = REQUEST_FILTER_BACKENDS
    filterset_class = RequestFilterSet
    ordering_fields = REQUEST_ORDERING
    ordering = ["-created_at", "-id"]

    def get_serializer_class(self):
        if self.action == "list":
            return s.RequestSerializer
        return s.RequestDetailSerializer

    def list(self, request, *args, **kwargs):
        if self._scope() == "mine":
            # Placed by me, and by others for me: each counted and paged along its own
            # index (the OR of both read all of a person's requests for a page).
            def parts():
                return request_selectors.requests_of_parts(request.user)

            return request_rows_list(self, request, parts, parts_key=self._parts_key())
        return request_rows_list(self, request, ids_first=True)

    def _parts_key(self) -> tuple:
        """What the parts of "mine" are made of: whose list, the query's parameters but
        the page's (its filters, order and scope, as asked) and the time zone their dates
        are compared in (the pager keeps their compiled union under it)."""
        pager = self.paginator
        paging = {pager.limit_query_param, pager.offset_query_param, pager.cursor_query_param}
        asked = tuple(
            sorted(
                (name, tuple(values))
                for name, values in self.request.query_params.lists()
                if name not in paging
            )
        )
        return ("api-mine", self.request.user.pk, asked, timezone.get_current_timezone_name())

    def _scope(self) -> str:
        scope = self.request.query_params.get("scope") or "mine"
        if scope not in ("mine", "visible"):
            raise ValidationError({"scope": [_("Choose “mine” or “visible”.")]})
        return scope

    def get_queryset(self):
        user = self.request.user
        if self.action != "list":
            return request_selectors.requests_visible_to(user)
        if self._scope() == "visible":
            return request_selectors.listed(request_selectors.requests_visible_to(user))
        # Counted and paged from its parts, read as values: without the model rows' joins
        # and deferred columns, which only cost building on every view.
        return request_selectors.requests_of_rows(user)

    def get_object(self):
        service_request = get_object_or_404(
            request_selectors.requests_visible_to(self.request.user), pk=self.kwargs["pk"]
        )
        return self._with_details(service_request)

    def _with_details(self, service_request):
        user = self.request.user
        service_request.approval_list = list(request_selectors.request_approvals(service_request))
        service_request.timeline_list = list(request_selectors.request_timeline(service_request))
        names = {spec.name for spec in available_actions(service_request, user)}
        names = {API_ACTION_NAMES.get(name, name) for name in names}
        if service_request.state == RequestState.DRAFT and service_request.requester_id == user.pk:
            names.add("submit")
        service_request.action_names = sorted(names)
        return service_request

    def _detail(self, request_id, status_code=status.HTTP_200_OK):
        service_request = get_object_or_404(
            request_selectors.requests_visible_to(self.request.user), pk=request_id
        )
        data = s.RequestDetailSerializer(self._with_details(service_request)).data
        return Response(data, status=status_code)

    def create(self, request, *args, **kwargs):
        body = s.RequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item, form = _checked_order_form(request.user, body.validated_data)
        service_request = request_services.request_create(
            requester=request.user,
            item=item,
            item_version=form.cleaned_data["item_version"],
            beneficiary=form.cleaned_data["beneficiary"],
            cost_centre=form.cleaned_data["cost_centre"],
            answers=form.answers,
            justification=form.cleaned_data["justification"],
            submit=body.validated_data["submit"],
        )
        return self._detail(service_request.pk, status.HTTP_201_CREATED)

    def _act(self, request, pk, action_name, body_class):
        service_request = get_object_or_404(
            request_selectors.requests_visible_to(request.user), pk=pk
        )
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        kwargs = {
            "request_id": service_request.pk,
            "user": request.user,
            "expected_state": values.pop("expected_state", None),
        }
        if action_name == "submit":
            service = request_services.request_submit
        else:
            spec = ACTIONS[action_name]
            service = spec.service
            if spec.name in DECISIONS:
                kwargs["expected_approval"] = values.pop("expected_approval", None)
            kwargs.update(values)  # comment / note / reason, as the service names it
        saved = service(**kwargs)  # committed from here on
        try:
            return self._detail(service_request.pk)
        except DatabaseError:
            # The database went away right after the commit: the action stands, so say
            # so instead of answering with a server error that invites a second click.
            logger.warning(
                "request %s: %s saved, reading the answer failed",
                service_request.pk,
                action_name,
                exc_info=True,
            )
            return Response(
                {
                    "id": service_request.pk,
                    "state": saved.state,
                    "detail": _(
                        "Saved. The request's details cannot be read just now; "
                        "fetch it again later."
                    ),
                }
            )

    @_action_schema(s.ActionBodySerializer, "Submit a draft (the requester)")
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._act(request, pk, "submit", s.ActionBodySerializer)

    @_action_schema(s.DecisionBodySerializer, "Approve the current step (its approver)")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._act(request, pk, "approve", s.DecisionBodySerializer)

    @_action_schema(s.RejectBodySerializer, "Reject, with a reason (the step's approver)")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._act(request, pk, "reject", s.RejectBodySerializer)

    @_action_schema(s.CommentBodySerializer, "Cancel (the requester, IT admins)")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(request, pk, "cancel", s.CommentBodySerializer)

    @_action_schema(
        s.ActionBodySerializer, "Take into fulfilment (fulfilling group, IT admins; manual items)"
    )
    @action(detail=True, methods=["post"])
    def take(self, request, pk=None):
        return self._act(request, pk, "take", s.ActionBodySerializer)

    @_action_schema(s.CompleteBodySerializer, "Mark as fulfilled (fulfilling group, IT admins)")
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._act(request, pk, "complete", s.CompleteBodySerializer)

    @_action_schema(s.FailBodySerializer, "Mark as failed, with a reason")
    @action(detail=True, methods=["post"])
    def fail(self, request, pk=None):
        return self._act(request, pk, "fail", s.FailBodySerializer)

    @_action_schema(
        s.CommentBodySerializer,
        "Retry a failed request (IT admins)",
        "The page's “Reopen”: back to approved, so it is fulfilled again (by hand or by "
        "automation, which re-runs its failed provisioning jobs).",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._act(request, pk, "reopen", s.CommentBodySerializer)


# The portal's transition names where the API names them as issue #5 does.
API_ACTION_NAMES = {"reopen": "retry"}


class RequestListViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """A list of requests from one of the pages' selectors, filtered and ordered alike."""

    queryset = ServiceRequest.objects.none()
    serializer_class = s.RequestSerializer
    filter_backends = REQUEST_FILTER_BACKENDS
    filterset_class = RequestFilterSet
    ordering_fields = REQUEST_ORDERING
    ordering = ["-created_at", "-id"]
    selector = None  # (user) -> QuerySet[ServiceRequest]

    def list(self, request, *args, **kwargs):
        return request_rows_list(self, request)

    def get_queryset(self):
        return type(self).selector(self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="Approvals for me: requests waiting for my decision", tags=["requests"]
    )
)
class ApprovalViewSet(RequestListViewSet):
    """Requests whose current step you may decide, also as a substitute."""

    selector = staticmethod(request_selectors.requests_to_decide)


@extend_schema_view(
    list=extend_schema(
        summary="Fulfilment queue: approved requests my groups fulfil by hand", tags=["requests"]
    )
)
class FulfilmentQueueViewSet(RequestListViewSet):
    selector = staticmethod(request_selectors.fulfilment_queue)

    def list(self, request, *args, **kwargs):
        # The page's ids first, along the queue's partial index, then their rows by a kept
        # statement that looks related columns up per row: joined, the request's seven
        # tables made PostgreSQL search join orders for 7 ms per view (25 rows ran in 0.7).
        return request_rows_list(self, request, ids_first=True)


def _object_action_schema(summary, body, result, conflict, tag):
    """The schema of a POST action on one object: its body, the object after it, and the
    errors (409 when the object's state does not allow it)."""
    return extend_schema(
        summary=summary,
        request=body,
        responses={
            200: result,
            400: OpenApiResponse(s.ValidationErrorSerializer),
            403: OpenApiResponse(s.ErrorSerializer),
            404: OpenApiResponse(s.ErrorSerializer),
            409: OpenApiResponse(s.ErrorSerializer, description=conflict),
        },
        tags=[tag],
    )


@extend_schema_view(
    list=extend_schema(
        summary="Fulfilment tasks of my groups (IT admins: all)",
        description=(
            "Work nobody ordered: collect a leaver's device (`collect`), remove a manual "
            "access by hand (`remove_access`). Oldest first; filter by `state`, `kind` and "
            "`group` (the fulfilling group's name)."
        ),
        tags=["requests"],
    ),
    retrieve=extend_schema(summary="One fulfilment task", tags=["requests"]),
)
class FulfilmentTaskViewSet(viewsets.ReadOnlyModelViewSet):
    """The tasks of the fulfilment queue page, with the same rights: IT admins and the
    members of the task's fulfilling group."""

    queryset = FulfilmentTask.objects.none()
    lookup_value_regex = "[0-9]+"
    serializer_class = s.FulfilmentTaskSerializer
    filterset_class = TaskFilterSet
    ordering_fields = ["id", "created_at", "done_at"]
    ordering = ["created_at", "id"]

    def get_queryset(self):
        return request_selectors.tasks_visible_to(self.request.user)

    def list(self, request, *args, **kwargs):
        def values(rows):
            return request_selectors.task_list_values(rows, s.FulfilmentTaskSerializer.ROW_COLUMNS)

        return values_list_response(self, request, values, s.FulfilmentTaskSerializer.rows)

    @_object_action_schema(
        "Mark a task done, with an optional note (its group, IT admins)",
        s.TaskDoneBodySerializer,
        s.FulfilmentTaskSerializer,
        "Done already.",
        "requests",
    )
    @action(detail=True, methods=["post"])
    def done(self, request, pk=None):
        task = self.get_object()
        body = s.TaskDoneBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        request_services.task_complete(
            task_id=task.pk, user=request.user, note=body.validated_data.get("note", "")
        )
        return Response(s.FulfilmentTaskSerializer(self.get_object()).data)


# --- provisioning -------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Entitlements: mine and my direct reports' (IT admins: all)",
        tags=["entitlements"],
    ),
    retrieve=extend_schema(summary="One entitlement", tags=["entitlements"]),
)
class EntitlementViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Entitlement.objects.none()
    lookup_value_regex = "[0-9]+"
    serializer_class = s.EntitlementSerializer
    filterset_class = EntitlementFilterSet
    ordering_fields = ["id", "granted_at", "expires_on", "state"]
    ordering = ["-granted_at", "-id"]

    def get_queryset(self):
        return provisioning_selectors.entitlements_visible_to(self.request.user)

    def list(self, request, *args, **kwargs):
        def values(rows):
            return rows.values(*s.EntitlementSerializer.ROW_COLUMNS)

        return values_list_response(self, request, values, s.EntitlementSerializer.rows)

    @_object_action_schema(
        "Have an entitlement removed (holder, their manager, IT admins)",
        s.RevokeBodySerializer,
        s.EntitlementSerializer,
        "Already being revoked.",
        "entitlements",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        entitlement = self.get_object()
        body = s.RevokeBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        provisioning_services.entitlement_revoke(
            entitlement_id=entitlement.pk,
            user=request.user,
            reason=body.validated_data.get("reason", ""),
        )
        return Response(s.EntitlementSerializer(self.get_object()).data)


@extend_schema_view(
    list=extend_schema(summary="Provisioning jobs (IT admins)", tags=["provisioning"]),
    retrieve=extend_schema(summary="One job with its log (IT admins)", tags=["provisioning"]),
)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ProvisioningJob.objects.none()
    lookup_value_regex = "[0-9]+"
    permission_classes = [IsItAdmin]
    filterset_class = JobFilterSet
    ordering_fields = ["id", "created_at", "updated_at", "state", "attempts"]
    ordering = ["-created_at", "position"]

    def get_serializer_class(self):
        return s.JobSerializer if self.action == "list" else s.JobDetailSerializer

    def get_queryset(self):
        return provisioning_selectors.jobs_visible_to(self.request.user)

    def list(self, request, *args, **kwargs):
        def values(rows):
            return rows.values(*s.JobSerializer.ROW_COLUMNS)

        return values_list_response(self, request, values, s.JobSerializer.rows)

    @_object_action_schema(
        "Retry a failed job (IT admins)",
        s.EmptyBodySerializer,
        s.JobDetailSerializer,
        "Only failed jobs.",
        "provisioning",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = self.get_object()
        s.EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        provisioning_services.job_retry(job_id=job.pk, user=request.user)
        return Response(s.JobDetailSerializer(self.get_object()).data)


# --- tokens -------------------------------------------------------------------------------


class TokenFilterSet(filters.FilterSet):
    user = filters.CharFilter(field_name="user__username", max_length=150)
    revoked = filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ApiToken
        fields = ["user", "revoked"]


@extend_schema_view(
    list=extend_schema(summary="API tokens: mine (IT admins: everybody's)", tags=["tokens"]),
    retrieve=extend_schema(summary="One API token", tags=["tokens"]),
    create=extend_schema(
        summary="Create an API token: the key is in this answer only",
        request=s.ApiTokenCreateSerializer,
        responses={201: s.ApiTokenCreatedSerializer},
        tags=["tokens"],
    ),
    destroy=extend_schema(
        summary="Revoke an API token (own; IT admins: any)",
        responses={204: None, 409: OpenApiResponse(s.ErrorSerializer)},
        tags=["tokens"],
    ),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = ApiToken.objects.none()
    lookup_value_regex = "[0-9]+"
    serializer_class = s.ApiTokenSerializer
    filterset_class = TokenFilterSet
    ordering_fields = ["id", "created_at", "last_used_at", "expires_at", "name"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return token_selectors.tokens_visible_to(self.request.user)

    def create(self, request, *args, **kwargs):
        body = s.ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, key = token_services.token_create(user=request.user, **body.validated_data)
        token.key = key
        return Response(s.ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        token_services.token_revoke(token_id=instance.pk, user=self.request.user)
