"""Webhook pages for IT admins: endpoints, their secrets, delivery logs. Thin."""

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from itportal.views import FilteredTableView, RowActionView
from itportal.views import ItAdminRequiredMixin as PortalAdminRequiredMixin
from webhooks import selectors, services
from webhooks.filtersets import DeliveryFilterSet, EndpointFilterSet
from webhooks.forms import EndpointForm
from webhooks.tables import DeliveryTable, EndpointTable

# The new secret travels to the next page in the session and is removed when shown.
NEW_SECRET_KEY = "webhooks_new_secret"  # noqa: S105 - a session key name


class ItAdminRequiredMixin(PortalAdminRequiredMixin):
    denied_message = gettext_lazy("Only IT administration manages webhooks.")


def _remember_secret(request, endpoint, secret: str) -> None:
    request.session[NEW_SECRET_KEY] = {"endpoint": endpoint.pk, "secret": secret}


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class EndpointListView(ItAdminRequiredMixin, FilteredTableView):
    table_class = EndpointTable
    filterset_class = EndpointFilterSet
    template_name = "webhooks/endpoint_list.html"
    title = gettext_lazy("Webhooks")
    intro = gettext_lazy(
        "Other systems of the city receive signed messages when requests change or "
        "entitlements are revoked."
    )

    def get_queryset(self):
        return selectors.endpoints_visible_to(self.request.user)


class EndpointCreateView(ItAdminRequiredMixin, View):
    template = "webhooks/endpoint_form.html"

    def get(self, request):
        return render(request, self.template, {"form": EndpointForm(), "endpoint": None})

    def post(self, request):
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = services.endpoint_create(user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                _remember_secret(request, endpoint, secret)
                messages.success(request, _("The endpoint is registered."))
                return redirect("webhooks:detail", pk=endpoint.pk)
        return render(request, self.template, {"form": form, "endpoint": None})


class EndpointEditView(ItAdminRequiredMixin, View):
    template = "webhooks/endpoint_form.html"

    def _endpoint(self, request, pk):
        return get_object_or_404(selectors.endpoints_visible_to(request.user), pk=pk)

    def get(self, request, pk):
        endpoint = self._endpoint(request, pk)
        form = EndpointForm(
            initial={
                "url": endpoint.url,
                "description": endpoint.description,
                "events": [s.event_type for s in endpoint.subscriptions.all()],
                "is_active": endpoint.is_active,
            }
        )
        return render(request, self.template, {"form": form, "endpoint": endpoint})

    def post(self, request, pk):
        endpoint = self._endpoint(request, pk)
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                services.endpoint_update(endpoint_id=endpoint.pk, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, _("The endpoint is saved."))
                return redirect("webhooks:detail", pk=endpoint.pk)
        return render(request, self.template, {"form": form, "endpoint": endpoint})


class EndpointDetailView(ItAdminRequiredMixin, FilteredTableView):
    """The endpoint, its actions, a secret shown once, and its delivery log."""

    table_class = DeliveryTable
    filterset_class = DeliveryFilterSet
    template_name = "webhooks/endpoint_detail.html"

    def get_queryset(self):
        self.endpoint = get_object_or_404(
            selectors.endpoints_visible_to(self.request.user), pk=self.kwargs["pk"]
        )
        return selectors.deliveries_visible_to(self.request.user).filter(endpoint=self.endpoint)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["endpoint"] = self.endpoint
        context["title"] = self.endpoint.description or self.endpoint.url
        context["grace_hours"] = settings.WEBHOOKS_SECRET_GRACE_HOURS
        context["now"] = timezone.now()
        shown = self.request.session.get(NEW_SECRET_KEY)
        if shown and shown.get("endpoint") == self.endpoint.pk:
            context["new_secret"] = shown["secret"]
            del self.request.session[NEW_SECRET_KEY]
        return context

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        if "new_secret" in context:
            add_never_cache_headers(response)  # no copy of the secret in any cache
        return response


class EndpointActionView(ItAdminRequiredMixin, View):
    def post(self, request, pk, action):
        endpoint = get_object_or_404(selectors.endpoints_visible_to(request.user), pk=pk)
        if action == "rotate-secret":
            endpoint, secret = services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
            _remember_secret(request, endpoint, secret)
            messages.success(request, _("A new secret was created."))
        elif action == "test":
            services.endpoint_send_test(endpoint_id=endpoint.pk, user=request.user)
            messages.success(
                request, _("A test event is on its way; its delivery appears in the log below.")
            )
        else:
            raise PermissionDenied(_("Unknown action."))
        return redirect("webhooks:detail", pk=endpoint.pk)


class DeliveryDetailView(ItAdminRequiredMixin, View):
    def get(self, request, pk):
        delivery = get_object_or_404(selectors.deliveries_visible_to(request.user), pk=pk)
        return render(
            request,
            "webhooks/delivery_detail.html",
            {
                "delivery": delivery,
                "attempts": delivery.attempt_log.all()[:100],
                "body": json.dumps(delivery.event.payload(), indent=2, ensure_ascii=False),
            },
        )


class DeliveryRedeliverView(ItAdminRequiredMixin, RowActionView):
    selector = staticmethod(selectors.deliveries_visible_to)

    def act(self, delivery) -> str:
        services.delivery_redeliver(delivery_id=delivery.pk)
        return _("The delivery will be sent again.")

    def success_url(self, delivery) -> str:
        return reverse("webhooks:delivery", kwargs={"pk": delivery.pk})
