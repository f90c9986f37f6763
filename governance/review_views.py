"""Recertification pages: the reviewer's decisions, the IT admins' campaigns. Thin: the
decisions go through governance.services, the rows come from governance.selectors."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View

from governance import selectors, services
from governance.forms import CampaignForm
from governance.models import Campaign, Review
from itportal.csvexport import stream_csv
from itportal.exceptions import ActionConflict
from itportal.inputs import BoundedPaginator
from itportal.views import ItAdminRequiredMixin

PER_PAGE = 50
DECISIONS = {Review.Decision.KEEP, Review.Decision.REMOVE}


def _page(request, queryset, name):
    paginator = BoundedPaginator(queryset, PER_PAGE)
    return paginator.get_page(request.GET.get(name))


class ReviewsView(View):
    """'Zugriffe prüfen': every undecided access the user decides, one form for the page."""

    template_name = "governance/reviews.html"

    def get(self, request):
        return self._render(request)

    def _render(self, request, errors=None, status=200):
        reviews = _page(request, selectors.reviews_for(request.user), "page")
        flagged = _page(request, selectors.flagged_for(request.user), "flagged_page")
        context = {"reviews": reviews, "flagged": flagged, "errors": errors or []}
        return render(request, self.template_name, context, status=status)

    def post(self, request):
        decided, errors = 0, []
        # Only rows the user may decide are looked at; forged ids are simply not found.
        review_ids = _posted_ids(request.POST, "decision-")
        for review in selectors.reviews_for(request.user).filter(pk__in=review_ids):
            decision = request.POST.get(f"decision-{review.pk}")
            if decision not in DECISIONS:
                continue
            try:
                services.review_decide(
                    review_id=review.pk,
                    user=request.user,
                    decision=decision,
                    comment=request.POST.get(f"comment-{review.pk}", ""),
                )
            except (ValidationError, ActionConflict, PermissionDenied) as exc:
                errors.append(_row_error(review.entitlement, exc))
            else:
                decided += 1
        flag_ids = _posted_ids(request.POST, "flag-")
        for entitlement in selectors.flagged_for(request.user).filter(pk__in=flag_ids):
            decision = request.POST.get(f"flag-{entitlement.pk}")
            if decision not in DECISIONS:
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


def _row_error(entitlement, exc) -> str:
    text = " ".join(getattr(exc, "messages", None) or [str(getattr(exc, "message", exc))])
    return f"{entitlement.holder.display_name}, {entitlement.item.name}: {text}"


class CampaignListView(ItAdminRequiredMixin, View):
    template_name = "governance/campaigns.html"
    denied_message = _("Only IT administration runs recertifications.")

    def get(self, request):
        return self._render(request, CampaignForm())

    def post(self, request):
        form = CampaignForm(request.POST)
        if form.is_valid():
            try:
                campaign = services.campaign_start(
                    name=form.cleaned_data["name"],
                    due_on=form.cleaned_data["due_on"],
                    user=request.user,
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


class CampaignDetailView(ItAdminRequiredMixin, View):
    template_name = "governance/campaign.html"
    denied_message = _("Only IT administration runs recertifications.")

    def get(self, request, pk):
        campaign = get_object_or_404(selectors.campaigns_with_counts(), pk=pk)
        if request.GET.get("format") == "csv":
            return _campaign_csv(campaign)
        context = {
            "campaign": campaign,
            "waiting": _page(request, selectors.pending_by_reviewer(campaign), "page"),
        }
        return render(request, self.template_name, context)

    def post(self, request, pk):
        try:
            services.campaign_close(campaign_id=pk, user=request.user)
        except Campaign.DoesNotExist:
            return redirect("reviews:campaigns")
        except ActionConflict as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The recertification is closed."))
        return redirect("reviews:campaign", pk=pk)


CSV_COLUMNS = [
    "person",
    "personnel_number",
    "department",
    "service",
    "reviewer",
    "decision",
    "decided_by",
    "decided_at",
    "comment",
]


def _campaign_csv(campaign):
    def rows():
        for review in selectors.campaign_rows(campaign).iterator(chunk_size=2000):
            holder = review.entitlement.holder
            yield {
                "person": holder.display_name,
                "personnel_number": holder.personnel_number,
                "department": holder.department.name if holder.department else "",
                "service": review.entitlement.item.name,
                "reviewer": _name(review.reviewer) or _("IT administration"),
                "decision": review.get_decision_display(),
                "decided_by": _name(review.decided_by),
                "decided_at": (
                    timezone.localtime(review.decided_at).isoformat(timespec="minutes")
                    if review.decided_at
                    else ""
                ),
                "comment": review.comment,
            }

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return stream_csv(rows(), CSV_COLUMNS, f"rezertifizierung-{campaign.pk}-{stamp}.csv")


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""
