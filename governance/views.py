"""Segregation of duties: the holder report, each finding's "Warum?" page, and the
approved exceptions. Thin: reads through selectors, writes through ``sod_services``."""

import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from governance import selectors, sod_services, why
from governance.filtersets import ConflictFilterSet, ExceptionFilterSet
from governance.models import SodException, SodFinding
from governance.tables import ConflictTable, ExceptionTable, _sides
from itportal.csvexport import stream_csv
from itportal.exceptions import ActionConflict
from itportal.inputs import BoundedDateField
from itportal.views import ConditionsCountedMixin, FilteredTableView

CSV_COLUMNS = [
    "person",
    "personnel_number",
    "department",
    "rule",
    "rule_version",
    "requirement",
    "holds",
    "and_also",
    "since",
    "exception_until",
]


class GovernanceReaderMixin:
    """IT administration and data protection only."""

    def dispatch(self, request, *args, **kwargs):
        if not sod_services.may_handle_exceptions(request.user):
            raise PermissionDenied(_("Only IT administration and data protection see this report."))
        return super().dispatch(request, *args, **kwargs)


class ConflictReportView(GovernanceReaderMixin, ConditionsCountedMixin, FilteredTableView):
    table_class = ConflictTable
    filterset_class = ConflictFilterSet
    template_name = "governance/conflicts.html"
    title = gettext_lazy("Segregation of duties")
    intro = gettext_lazy(
        "People who hold both sides of a segregation-of-duties rule at the same time, also "
        "through nested directory groups. New orders and approvals that would break a rule "
        "are refused; this list shows what was granted before a rule existed or outside the "
        "portal's workflow. It is updated every hour and after every grant and rule change."
    )

    def get_queryset(self):
        # Conditions only: counted by them alone (ConditionsCountedMixin), and the page's
        # rows read with what they show (read_page_rows). With the rule's, the people's
        # and the exception's columns in the list's queryset, an empty report (the usual
        # case) compiled them for nothing, and the count cloned them.
        return selectors.unresolved_findings()

    def read_page_rows(self, rows):
        return selectors.finding_rows(rows)

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") != "csv":
            return super().get(request, *args, **kwargs)
        filterset = self.filterset_class(request.GET, queryset=selectors.open_findings())
        rows = filterset.qs if filterset.is_valid() else filterset.queryset.none()
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return stream_csv(
            (
                {
                    "person": row.holder.display_name,
                    "personnel_number": row.holder.personnel_number,
                    "department": row.holder.department.name if row.holder.department else "",
                    "rule": row.rule.name,
                    "rule_version": row.rule_version,
                    "requirement": row.rule.requirement,
                    "holds": _sides(row.evidence, "first"),
                    "and_also": _sides(row.evidence, "second"),
                    "since": row.overlap_from.isoformat() if row.overlap_from else "",
                    "exception_until": (
                        row.excepted_until.isoformat() if row.excepted_until else ""
                    ),
                }
                for row in rows.order_by("rule__name", "holder_id").iterator(chunk_size=2000)
            ),
            CSV_COLUMNS,
            f"funktionstrennung-{stamp}.csv",
        )


class ExceptionForm(forms.Form):
    justification = forms.CharField(
        label=gettext_lazy("Justification"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Why this person needs both. At most 2,000 characters."),
    )
    compensating_control = forms.CharField(
        label=gettext_lazy("Compensating control"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "What makes up for the missing separation, e.g. a monthly spot check by the "
            "head of department. At most 2,000 characters."
        ),
    )
    valid_until = BoundedDateField(
        label=gettext_lazy("Valid until"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("At most one year ahead; the exception is then re-certified."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("valid_until", timezone.localdate() + datetime.timedelta(days=90))


class FindingView(GovernanceReaderMixin, View):
    """ "Warum?" for one finding: the rule and the version it was found under, each holding
    with its order, approvals and group path; and the exceptions (ask for one here)."""

    template_name = "governance/finding.html"

    def get(self, request, pk):
        return self._render(request, pk, ExceptionForm())

    def post(self, request, pk):
        finding = get_object_or_404(selectors.open_findings(), pk=pk)
        form = ExceptionForm(request.POST)
        if form.is_valid():
            try:
                exception = sod_services.sod_exception_request(
                    rule_id=finding.rule_id,
                    holder=finding.holder,
                    user=request.user,
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("The exception was asked for; another person decides."))
                return redirect("governance:exception", pk=exception.pk)
        return self._render(request, pk, form, status=400)

    def _render(self, request, pk, form, status=200):
        finding = get_object_or_404(
            SodFinding.objects.select_related("rule", "holder__user", "holder__department"),
            pk=pk,
        )
        context = why.finding_explained(finding)
        context["form"] = form if finding.resolved_at is None else None
        return render(request, self.template_name, context, status=status)


class ExceptionListView(GovernanceReaderMixin, FilteredTableView):
    table_class = ExceptionTable
    filterset_class = ExceptionFilterSet
    title = gettext_lazy("Segregation-of-duties exceptions")
    intro = gettext_lazy(
        "Approved exceptions let one person hold both sides of a rule until they expire, "
        "with a justification and a compensating control. Nobody decides an exception that "
        "concerns themselves or that they asked for; at expiry it is asked for and decided "
        "again."
    )

    def get_queryset(self):
        return SodException.objects.select_related(
            "holder__user", "rule", "requested_by", "decided_by"
        )


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label=gettext_lazy("Comment"),
        max_length=500,
        required=False,
        help_text=gettext_lazy("Required when rejecting or revoking. At most 500 characters."),
    )


class ExceptionView(GovernanceReaderMixin, View):
    template_name = "governance/exception.html"

    def get(self, request, pk):
        return self._render(request, pk, DecisionForm())

    def post(self, request, pk):
        exception = get_object_or_404(SodException, pk=pk)
        form = DecisionForm(request.POST)
        action = request.POST.get("action")
        if form.is_valid() and action in {"approve", "reject", "revoke", "renew"}:
            comment = form.cleaned_data["comment"]
            try:
                if action == "revoke":
                    sod_services.sod_exception_revoke(
                        exception_id=pk, user=request.user, comment=comment
                    )
                    messages.success(request, _("The exception is revoked."))
                elif action == "renew":
                    renewal = sod_services.sod_exception_renew(exception_id=pk, user=request.user)
                    messages.success(
                        request, _("The renewal was asked for; another person decides.")
                    )
                    return redirect("governance:exception", pk=renewal.pk)
                else:
                    sod_services.sod_exception_decide(
                        exception_id=pk,
                        user=request.user,
                        approve=action == "approve",
                        comment=comment,
                    )
                    messages.success(request, _("The exception is decided."))
            except ValidationError as exc:
                for errors in exc.message_dict.values():
                    form.add_error("comment", errors)
                return self._render(request, pk, form, status=400)
            except ActionConflict as exc:
                messages.error(request, exc.message)
            return redirect("governance:exception", pk=exception.pk)
        if action not in {"approve", "reject", "revoke", "renew"}:
            form.add_error(None, _("Choose an action."))
        return self._render(request, pk, form, status=400)

    def _render(self, request, pk, form, status=200):
        exception = get_object_or_404(
            SodException.objects.select_related(
                "holder__user", "rule", "requested_by", "decided_by", "renews"
            ),
            pk=pk,
        )
        context = {
            "exception": exception,
            "form": form,
            "barred": sod_services.barred_from_deciding(exception, request.user),
            "rule_version": why.rule_version(exception.rule, exception.rule_version),
        }
        return render(request, self.template_name, context, status=status)
