""" "Warum?" pages: why a person holds an entitlement, and why a request's steps and due
date are what they are. Whoever may see the entitlement or request sees why; data
protection sees every one. Thin: the reads are in ``governance.why``."""

from django.shortcuts import get_object_or_404, render
from django.views import View

from governance import why
from governance.sod_services import may_handle_exceptions
from itportal.roles import is_data_protection_officer
from provisioning.models import Entitlement
from provisioning.selectors import entitlements_visible_to
from requests_app.models import ServiceRequest
from requests_app.selectors import requests_visible_to


class EntitlementWhyView(View):
    template_name = "governance/why_entitlement.html"

    def get(self, request, pk):
        user = request.user
        rows = (
            Entitlement.objects.select_related("holder__user", "holder__department", "item")
            if is_data_protection_officer(user)
            else entitlements_visible_to(user)
        )
        entitlement = get_object_or_404(
            rows.select_related("request__requester", "request__beneficiary__user"), pk=pk
        )
        context = why.entitlement_explained(entitlement)
        context["can_see_report"] = may_handle_exceptions(user)
        return render(request, self.template_name, context)


class RequestWhyView(View):
    template_name = "governance/why_request.html"

    def get(self, request, pk):
        user = request.user
        rows = (
            ServiceRequest.objects.all()
            if is_data_protection_officer(user)
            else requests_visible_to(user)
        )
        service_request = get_object_or_404(
            rows.select_related("requester", "beneficiary__user", "item"), pk=pk
        )
        return render(request, self.template_name, why.request_explained(service_request))
