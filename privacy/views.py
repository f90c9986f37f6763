"""The data-protection officer's pages: what the portal holds about a person (Art. 15), as a
readable page and as JSON, and the audit trail export (CSV or JSON). Thin: reads in
privacy.selectors."""

import json
import logging

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from itportal.csvexport import stream_csv
from itportal.roles import is_data_protection_officer
from privacy import selectors
from privacy.forms import AuditFilterForm, PersonForm

logger = logging.getLogger("privacy")


class OfficerOnlyMixin:
    def dispatch(self, request, *args, **kwargs):
        if not is_data_protection_officer(request.user):
            raise PermissionDenied(_("Only the data-protection officer sees this."))
        return super().dispatch(request, *args, **kwargs)


def _json_download(data, filename: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class SubjectAccessView(OfficerOnlyMixin, View):
    template = "privacy/subject_access.html"

    def get(self, request):
        form = PersonForm(request.GET or None)
        context = {"form": form}
        if form.is_valid():
            employee = selectors.find_person(form.cleaned_data["person"])
            if employee is None:
                form.add_error("person", _("Nobody with this personnel number or user name."))
            else:
                data = selectors.personal_data(employee)
                logger.info("access report on %s by %s", employee.personnel_number, request.user)
                if request.GET.get("format") == "json":
                    return _json_download(data, f"auskunft-{employee.pk}.json")
                context.update(employee=employee, data=data)
        status = 400 if form.is_bound and form.errors else 200
        return render(request, self.template, context, status=status)


class AuditExportView(OfficerOnlyMixin, View):
    template = "privacy/audit.html"

    def get(self, request):
        form = AuditFilterForm(request.GET or None)
        wanted = request.GET.get("format")
        if not form.is_bound or wanted not in ("csv", "json") or not form.is_valid():
            status = 400 if form.is_bound and form.errors else 200
            return render(request, self.template, {"form": form}, status=status)
        person = None
        if form.cleaned_data["person"]:
            person = selectors.find_person(form.cleaned_data["person"])
            if person is None:
                form.add_error("person", _("Nobody with this personnel number or user name."))
                return render(request, self.template, {"form": form}, status=400)
        events = selectors.audit_records(
            start=form.cleaned_data["start"],
            end=form.cleaned_data["end"],
            request_id=form.cleaned_data["request"],
            person=person,
        )
        logger.info("audit export %s by %s", request.GET.urlencode(), request.user)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        if wanted == "json":
            return _json_download(list(selectors.audit_rows(events)), f"audit-{stamp}.json")
        return stream_csv(
            selectors.audit_rows(events), selectors.AUDIT_COLUMNS, f"audit-{stamp}.csv"
        )
