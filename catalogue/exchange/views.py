"""Catalogue exchange pages, IT administration only: export, upload, map, preview, apply.

Thin: the document travels between the steps in the (server-side) session, the services
check and apply it.
"""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View

from catalogue.exchange import services
from catalogue.exchange.forms import ExportForm, MappingForm, UploadForm
from catalogue.exchange.validation import (
    MAX_UPLOAD_BYTES,
    ExchangeError,
    check_document,
    parse_bytes,
    schema_text,
)
from itportal.roles import is_it_admin

SESSION_KEY = "catalogue_exchange"
logger = logging.getLogger(__name__)


class ItAdminRequiredMixin:
    def dispatch(self, request, *args, **kwargs):
        if not is_it_admin(request.user):
            raise PermissionDenied(_("Only IT administration exchanges catalogue items."))
        return super().dispatch(request, *args, **kwargs)


def _index(request, *, upload_form=None, problems=(), status=200):
    context = {
        "export_form": ExportForm(),
        "upload_form": upload_form or UploadForm(),
        "problems": problems,
        "pending": (request.session.get(SESSION_KEY) or {}).get("filename"),
    }
    return render(request, "catalogue/exchange/index.html", context, status=status)


class IndexView(ItAdminRequiredMixin, View):
    def get(self, request):
        return _index(request)


class ExportView(ItAdminRequiredMixin, View):
    def get(self, request):
        form = ExportForm(request.GET)
        if not form.is_valid():
            return _index(
                request, problems=[e for es in form.errors.values() for e in es], status=400
            )
        document = services.catalogue_export(
            category_slugs=[c.slug for c in form.cleaned_data["categories"]],
            item_slugs=[i.slug for i in form.cleaned_data["items"]],
        )
        response = HttpResponse(services.dumps(document), content_type="application/json")
        name = f"katalog-{timezone.localdate():%Y-%m-%d}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class UploadView(ItAdminRequiredMixin, View):
    def post(self, request):
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return _index(request, upload_form=form, status=400)
        upload = form.cleaned_data["file"]
        try:
            document = check_document(parse_bytes(upload.read(MAX_UPLOAD_BYTES + 1)))
        except ExchangeError as exc:
            return _index(request, upload_form=form, problems=exc.problems, status=400)
        request.session[SESSION_KEY] = {"document": document, "filename": upload.name[:200]}
        return redirect("catalogue:exchange:map")


class _WithDocumentMixin(ItAdminRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        self.state = request.session.get(SESSION_KEY)
        if is_it_admin(request.user) and not self.state:
            messages.info(request, _("Please upload an exchange file first."))
            return redirect("catalogue:exchange:index")
        return super().dispatch(request, *args, **kwargs)


class MapView(_WithDocumentMixin, View):
    def form(self, data=None):
        initial = None
        if "mapping" in self.state:
            initial = {f"ph_{n}": v for n, v in self.state["mapping"].items()}
            initial["on_conflict"] = self.state["on_conflict"]
        return MappingForm(
            data,
            initial=initial,
            document=self.state["document"],
            directory_groups=services.directory_groups(),
        )

    def render(self, form, status=200):
        document = self.state["document"]
        context = {
            "form": form,
            "filename": self.state["filename"],
            "source": document.get("source", ""),
            "categories": document["categories"],
            "items": document["items"],
        }
        return render(self.request, "catalogue/exchange/map.html", context, status=status)

    def get(self, request):
        return self.render(self.form())

    def post(self, request):
        form = self.form(request.POST)
        if form.is_valid():
            try:
                services.check_mapping(self.state["document"], form.mapping())
            except ExchangeError as exc:
                form.add_problems(exc.problems)
        if not form.is_valid():
            return self.render(form, status=400)
        request.session[SESSION_KEY] = {
            **self.state,
            "mapping": form.mapping(),
            "on_conflict": form.cleaned_data["on_conflict"],
        }
        return redirect("catalogue:exchange:preview")


class PreviewView(_WithDocumentMixin, View):
    def run(self, *, dry_run):
        return services.catalogue_import(
            document=self.state["document"],
            mapping=self.state["mapping"],
            on_conflict=self.state["on_conflict"],
            dry_run=dry_run,
        )

    def dispatch(self, request, *args, **kwargs):
        state = request.session.get(SESSION_KEY) or {}
        if is_it_admin(request.user) and state and "mapping" not in state:
            return redirect("catalogue:exchange:map")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        try:
            report, problems = self.run(dry_run=True), []
        except ExchangeError as exc:
            report, problems = None, exc.problems
        context = {"report": report, "problems": problems, "filename": self.state["filename"]}
        return render(request, "catalogue/exchange/preview.html", context)

    def post(self, request):
        try:
            report = self.run(dry_run=False)
        except ExchangeError as exc:
            context = {"report": None, "problems": exc.problems, "filename": self.state["filename"]}
            return render(request, "catalogue/exchange/preview.html", context, status=400)
        del request.session[SESSION_KEY]
        logger.info(
            "catalogue import of %s by %s: %s",
            self.state["filename"],
            request.user.get_username(),
            report.summary(),
        )
        messages.success(request, _("Imported. %(summary)s") % {"summary": report.summary()})
        return redirect("catalogue:exchange:index")


class CancelView(ItAdminRequiredMixin, View):
    def post(self, request):
        request.session.pop(SESSION_KEY, None)
        messages.info(request, _("The import was cancelled; nothing was changed."))
        return redirect("catalogue:exchange:index")


@method_decorator(login_not_required, name="dispatch")
class SchemaView(View):
    """The published JSON Schema: public, so other portals and tools can validate files."""

    def get(self, request):
        return HttpResponse(schema_text(), content_type="application/schema+json")
