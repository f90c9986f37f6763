"""Provisioning pages: jobs for IT admins, entitlements for holders and managers. Thin."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from itportal.exceptions import ActionConflict
from itportal.memo import Memo
from itportal.roles import is_it_admin
from itportal.views import FilteredTableView
from provisioning import selectors, services
from provisioning.filtersets import EntitlementFilterSet, JobFilterSet
from provisioning.tables import EntitlementTable, JobTable
from requests_app.views import filters_key


class ItAdminRequiredMixin:
    def dispatch(self, request, *args, **kwargs):
        if not is_it_admin(request.user):
            raise PermissionDenied(_("Only IT administration sees provisioning jobs."))
        return super().dispatch(request, *args, **kwargs)


class OwnPartMixin:
    """A FilteredTableView whose list is its own only part (``page_parts``): its count's
    and ids' statements are compiled once per process, list (``list_key``), filters and
    order (BoundedPaginator's ``parts_key``). Compiling them through the ORM (the page's
    ids a subquery of the rows' statement) was a tenth of the jobs page's CPU and about a
    millisecond of the entitlements page's on every view, for the same SQL."""

    def list_key(self) -> tuple:
        raise NotImplementedError

    def get_table_pagination(self, table):
        pagination = super().get_table_pagination(table)
        if pagination is not False:
            pagination["parts_key"] = (*self.list_key(), *filters_key(self.filterset))
        return pagination

    def page_parts(self, queryset):
        # No rows for a form in error (an empty queryset).
        filterset = self.filterset
        if filterset.is_bound and not filterset.is_valid():
            return None
        return [queryset]


class JobListView(ItAdminRequiredMixin, OwnPartMixin, FilteredTableView):
    table_class = JobTable
    filterset_class = JobFilterSet
    title = gettext_lazy("Provisioning jobs")
    intro = gettext_lazy("Every automated directory change: state, attempts and last error.")

    def get_queryset(self):
        return selectors.jobs_visible_to(self.request.user)

    def read_page_rows(self, rows):
        return selectors.job_list_rows(rows)

    def list_key(self) -> tuple:
        return ("provisioning jobs",)


class JobDetailView(ItAdminRequiredMixin, View):
    def get(self, request, pk):
        job = get_object_or_404(selectors.jobs_visible_to(request.user), pk=pk)
        return render(request, "provisioning/job_detail.html", {"job": job})


class JobActionView(ItAdminRequiredMixin, View):
    def post(self, request, pk, action):
        job = get_object_or_404(selectors.jobs_visible_to(request.user), pk=pk)
        try:
            if action == "retry":
                services.job_retry(job_id=job.pk, user=request.user)
                messages.success(request, _("The job will run again."))
            elif action == "done":
                note = request.POST.get("note", "")[:2000].replace("\x00", "")
                services.job_mark_done(job_id=job.pk, user=request.user, note=note)
                messages.success(request, _("The job is marked as done."))
            else:
                raise PermissionDenied(_("Unknown action."))
        except ActionConflict as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("provisioning:job", pk=job.pk)


# The entitlements page's querysets by holders (or all, for IT admins): a few hundred.
_ENTITLEMENT_LISTS = Memo(1024, 4 << 20)


class EntitlementListView(OwnPartMixin, FilteredTableView):
    table_class = EntitlementTable
    filterset_class = EntitlementFilterSet
    title = gettext_lazy("Entitlements")
    intro = gettext_lazy(
        "Lasting access you hold, and what the people reporting to you hold. Devices and "
        "other one-off deliveries are listed under My requests."
    )

    def get_queryset(self):
        # Kept per holders (the SQL to build, no rows; each view gets a copy): filtering by
        # the holders' ids cost a quarter of a millisecond of every view.
        key = self.holders_key()
        kept = _ENTITLEMENT_LISTS.get(key)
        if kept is None:
            kept = selectors.entitlements_visible_to(self.request.user)
            _ENTITLEMENT_LISTS.put(key, kept, 1024 + 8 * len(key))  # about its bytes
        return kept.all()

    def holders_key(self) -> tuple:
        """Whose entitlements the list holds: all (IT admins), or the holders' ids."""
        user = self.request.user
        return ("all", None) if is_it_admin(user) else ("of", *selectors.entitlement_holders(user))

    def read_page_rows(self, rows):
        return selectors.entitlement_list_rows(rows)

    def list_key(self) -> tuple:
        return ("entitlements", self.holders_key())


class EntitlementRevokeView(View):
    """GET: a page that says what removing does and asks for a reason; POST: remove."""

    template_name = "provisioning/entitlement_revoke.html"

    def _entitlement(self, request, pk):
        return get_object_or_404(selectors.entitlements_visible_to(request.user), pk=pk)

    def get(self, request, pk):
        entitlement = self._entitlement(request, pk)
        if not services.may_revoke(entitlement, request.user):
            raise PermissionDenied(_("You may not revoke this entitlement."))
        context = {
            "entitlement": entitlement,
            "undone": selectors.revoke_preview(entitlement),
        }
        return render(request, self.template_name, context)

    def post(self, request, pk):
        entitlement = self._entitlement(request, pk)
        reason = request.POST.get("reason", "")[:2000].replace("\x00", "")
        try:
            services.entitlement_revoke(
                entitlement_id=entitlement.pk, user=request.user, reason=reason
            )
        except ActionConflict as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The entitlement is being removed."))
        return redirect("provisioning:entitlements")
