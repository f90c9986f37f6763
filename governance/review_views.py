"""Recertification pages: the reviewers' decisions, the campaigns, the auditors' report.
Thin: the decisions go through governance.services, the rows come from governance.selectors."""

import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View

from governance import selectors, services
from governance.choices import TaskDecision
from governance.forms import CampaignForm, RerunForm
from governance.models import Review
from itportal.csvexport import stream_csv
from itportal.exceptions import ActionConflict
from itportal.inputs import BoundedPaginator
from itportal.roles import is_data_protection_officer

PER_PAGE = 50
DECISIONS = {TaskDecision.ACCEPT, TaskDecision.REVOKE, TaskDecision.REDUCE}
FLAG_DECISIONS = {Review.Decision.KEEP, Review.Decision.REMOVE}


def _page(request, queryset, name, counted=None):
    """A page of ``queryset``, or of the rows ``queryset()`` gives where their number
    ``counted`` is known and not nought."""
    if counted is not None:
        paginator = BoundedPaginator(queryset() if counted else [], PER_PAGE, counted=counted)
    else:
        paginator = BoundedPaginator(queryset, PER_PAGE)
    if not paginator.count:
        # Nothing to show (between campaigns, the usual case): the empty page without
        # building the rows' query, whose select_related compiled for nothing was a third
        # of the page's CPU (bench/bench_cpu.py at 1M).
        return Page([], 1, paginator)
    return paginator.get_page(request.GET.get(name))


class ReviewsView(View):
    """'Zugriffe prüfen': every open review task the user decides, one form for the page."""

    template_name = "governance/reviews.html"

    def get(self, request):
        return self._render(request)

    def _render(self, request, errors=None, status=200):
        user = request.user
        # Both lists counted in one statement; their rows' querysets built only if any.
        tasks_count, flagged_count = selectors.review_counts(user, BoundedPaginator.count_limit)
        tasks = _page(request, lambda: selectors.tasks_for(user), "page", tasks_count)
        flagged = _page(request, lambda: selectors.flagged_for(user), "flagged_page", flagged_count)
        context = {
            "tasks": tasks,
            "flagged": flagged,
            "errors": errors or [],
            "tomorrow": timezone.localdate() + datetime.timedelta(days=1),
        }
        return render(request, self.template_name, context, status=status)

    def post(self, request):
        decided, errors = 0, []
        # Only rows the user may decide are looked at; forged ids are simply not found.
        task_ids = _posted_ids(request.POST, "decision-")
        for task in selectors.tasks_for(request.user).filter(pk__in=task_ids):
            decision = request.POST.get(f"decision-{task.pk}")
            if decision not in DECISIONS:
                continue
            try:
                services.review_task_decide(
                    task_id=task.pk,
                    user=request.user,
                    decision=decision,
                    comment=request.POST.get(f"comment-{task.pk}", ""),
                    reduce_until=_posted_date(request.POST.get(f"until-{task.pk}")),
                )
            except (ValidationError, ActionConflict, PermissionDenied) as exc:
                errors.append(_row_error(task.review.entitlement, exc))
            else:
                decided += 1
        flag_ids = _posted_ids(request.POST, "flag-")
        for entitlement in selectors.flagged_for(request.user).filter(pk__in=flag_ids):
            decision = request.POST.get(f"flag-{entitlement.pk}")
            if decision not in FLAG_DECISIONS:
                continue
            try:
                services.flagged_decide(
                    entitlement_id=entitlement.pk, user=request.user, decision=decision
                )
            except (ValidationError, ActionConflict, PermissionDenied) as exc:
                errors.append(_row_error(entitlement, exc))
            else:
                decided += 1
        if errors:
            return self._render(request, errors=errors, status=400)
        if decided:
            messages.success(
                request,
                ngettext("%(count)d decision saved.", "%(count)d decisions saved.", decided)
                % {"count": decided},
            )
        else:
            messages.info(request, _("No decision chosen: nothing was changed."))
        return redirect("reviews:pending")


def _posted_ids(post, prefix: str) -> list[int]:
    ids = []
    for key in post:
        tail = key[len(prefix) :] if key.startswith(prefix) else ""
        if tail.isdecimal() and len(tail) < 12:
            ids.append(int(tail))
    return ids[:1000]


def _posted_date(value) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def _posted_int(value) -> int:
    value = (value or "").strip()
    return int(value) if value.isdecimal() and len(value) < 6 else -1


def _row_error(entitlement, exc) -> str:
    text = " ".join(getattr(exc, "messages", None) or [str(getattr(exc, "message", exc))])
    return f"{entitlement.holder.display_name}, {entitlement.item.name}: {text}"


class CampaignRunnerMixin:
    """IT administration or IT controlling."""

    denied_message = gettext_lazy("Only IT administration or IT controlling run recertifications.")

    def dispatch(self, request, *args, **kwargs):
        if not services.may_run_campaigns(request.user):
            raise PermissionDenied(self.denied_message)
        return super().dispatch(request, *args, **kwargs)


class CampaignListView(CampaignRunnerMixin, View):
    template_name = "governance/campaigns.html"

    def get(self, request):
        return self._render(request, CampaignForm())

    def post(self, request):
        form = CampaignForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                campaign = services.campaign_start(
                    name=data["name"],
                    user=request.user,
                    scope=data["scope"],
                    item=data["scope_item"],
                    department=data["scope_department"],
                    risk_limit=data["risk_limit"],
                    undecided_default=data["undecided_default"],
                    stages=form.stages(),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("The recertification has started."))
                return redirect("reviews:campaign", pk=campaign.pk)
        return self._render(request, form, status=400)

    def _render(self, request, form, status=200):
        campaigns = _page(request, selectors.campaigns_with_counts(), "page")
        return render(
            request, self.template_name, {"form": form, "campaigns": campaigns}, status=status
        )


class CampaignDetailView(CampaignRunnerMixin, View):
    template_name = "governance/campaign.html"

    def get(self, request, pk):
        campaign = get_object_or_404(selectors.campaigns_with_counts(), pk=pk)
        if request.GET.get("format") == "csv":
            return _report_csv(campaign)
        return self._render(request, campaign, RerunForm())

    def _render(self, request, campaign, rerun_form, status=200):
        context = {
            "campaign": campaign,
            "stages": selectors.campaign_stages(campaign),
            "waiting": _page(request, selectors.pending_by_reviewer(campaign), "page"),
            "rerun_form": rerun_form,
        }
        return render(request, self.template_name, context, status=status)

    def post(self, request, pk):
        campaign = get_object_or_404(selectors.campaigns_with_counts(), pk=pk)
        action = request.POST.get("action")
        try:
            if action == "rerun":
                form = RerunForm(request.POST)
                if not form.is_valid():
                    return self._render(request, campaign, form, status=400)
                count = services.campaign_rerun(
                    campaign_id=pk,
                    user=request.user,
                    working_days=form.cleaned_data["working_days"],
                )
                messages.success(
                    request,
                    ngettext(
                        "%(count)d undecided access was put to its reviewer again.",
                        "%(count)d undecided accesses were put to their reviewers again.",
                        count,
                    )
                    % {"count": count},
                )
            elif action == "close":
                services.campaign_stage_close_request(
                    campaign_id=pk, user=request.user, stage=_posted_int(request.POST.get("stage"))
                )
                messages.success(
                    request,
                    _(
                        "The stage is being closed; its decisions are locked. Reload the page "
                        "to see when it is done."
                    ),
                )
            else:
                messages.error(request, _("Nothing was changed."))
        except ActionConflict as exc:
            messages.error(request, exc.message)
        return redirect("reviews:campaign", pk=pk)


class CampaignReportView(View):
    """The auditors' report: who decided what, when, in which stage; page and CSV."""

    template_name = "governance/campaign_report.html"

    def get(self, request, pk):
        user = request.user
        if not (services.may_run_campaigns(user) or is_data_protection_officer(user)):
            raise PermissionDenied(
                _("Only IT administration, IT controlling and data protection see this report.")
            )
        campaign = get_object_or_404(selectors.campaigns_with_counts(), pk=pk)
        if request.GET.get("format") == "csv":
            return _report_csv(campaign)
        context = {
            "campaign": campaign,
            "requirements": selectors.bsi_requirements(campaign),
            "rows": _page(request, selectors.campaign_report_rows(campaign), "page"),
        }
        return render(request, self.template_name, context)


CSV_COLUMNS = [
    "campaign",
    "bsi",
    "person",
    "personnel_number",
    "department",
    "service",
    "stage",
    "round",
    "reviewer",
    "why_reviewer",
    "escalated_from",
    "decision",
    "keep_until",
    "reason",
    "decided_by",
    "decided_at",
    "outcome",
    "outcome_at",
]


def _report_csv(campaign):
    bsi = " ".join(r.code for r in selectors.bsi_requirements(campaign))

    def rows():
        for task in selectors.campaign_report_rows(campaign).iterator(chunk_size=2000):
            review = task.review
            holder = review.entitlement.holder
            yield {
                "campaign": campaign.name,
                "bsi": bsi,
                "person": holder.display_name,
                "personnel_number": holder.personnel_number,
                "department": holder.department.name if holder.department else "",
                "service": review.entitlement.item.name,
                "stage": task.stage,
                "round": task.iteration,
                "reviewer": _name(task.reviewer) or _("IT administration"),
                "why_reviewer": task.get_route_display(),
                "escalated_from": _name(task.escalated_from),
                "decision": task.get_decision_display(),
                "keep_until": task.reduce_until.isoformat() if task.reduce_until else "",
                "reason": task.comment,
                "decided_by": _name(task.decided_by),
                "decided_at": _stamp(task.decided_at),
                "outcome": review.get_decision_display(),
                "outcome_at": _stamp(review.decided_at),
            }

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return stream_csv(rows(), CSV_COLUMNS, f"rezertifizierung-{campaign.pk}-{stamp}.csv")


def _stamp(value) -> str:
    return timezone.localtime(value).isoformat(timespec="minutes") if value else ""


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""
