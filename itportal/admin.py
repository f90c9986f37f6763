"""Shared bases for the Django admin."""

from django.contrib.admin.views.main import ChangeList
from django.forms.formsets import TOTAL_FORM_COUNT
from django.forms.models import BaseInlineFormSet, _get_foreign_key
from django.urls import reverse

from itportal.inputs import BoundedPaginator


class BoundedInlineFormSet(BaseInlineFormSet):
    """Builds no form at all for a claimed form count above ``absolute_max``.

    Django would still build ``absolute_max`` forms (and render them again) for such a
    claim before refusing it; the claim is forged, so the refusal ("Please submit at
    most … forms", from full_clean) is all the answer needs.
    """

    def total_form_count(self):
        if self.is_bound and self.management_form.cleaned_data[TOTAL_FORM_COUNT] > (
            self.absolute_max
        ):
            return 0
        return super().total_form_count()


class BoundedInlineMixin:
    """An inline whose formset never builds more forms than it can hold.

    Django builds as many forms as a POST's ``TOTAL_FORMS`` claims, up to ``max_num`` +
    1,000: one forged number cost 22 CPU-seconds on the item page. Here the bound is
    ``max_num`` or the rows that exist, whichever is larger; a larger claim is a form
    error ("Please submit at most … forms").
    """

    max_num = 100
    formset = BoundedInlineFormSet

    def get_formset(self, request, obj=None, **kwargs):
        limit = self.get_max_num(request, obj, **kwargs) or 0
        if obj is not None and obj.pk is not None:
            fk = _get_foreign_key(self.parent_model, self.model, fk_name=self.fk_name)
            limit = max(limit, self.get_queryset(request).filter(**{fk.name: obj}).count())
        kwargs.setdefault("absolute_max", max(limit, 1))
        return super().get_formset(request, obj, **kwargs)


def bound_all_inlines(site) -> None:
    """Give every registered inline, third-party ones included (e.g. django-otp's), the
    bound above; our own inherit BoundedInlineMixin with a max_num of their choosing."""
    for model_admin in site._registry.values():
        model_admin.inlines = [
            inline
            if issubclass(inline, BoundedInlineMixin)
            else type(
                inline.__name__,
                (BoundedInlineMixin, inline),
                {"max_num": inline.max_num or BoundedInlineMixin.max_num},
            )
            for inline in model_admin.inlines
        ]


class LargeTableAdminMixin:
    """A changelist over a table of a million rows: counted up to COUNT_LIMIT (the
    pagination says "more than …" beyond), and not counted a second time unfiltered.

    Without an exact count, "select all N across pages" would name a wrong N: the
    selection counter is off, an action applies to the rows ticked on the page."""

    paginator = BoundedPaginator
    show_full_result_count = False
    actions_selection_counter = False
    # The portal's page size, not the admin's 100: each row renders a checkbox and every
    # cell through the admin's generic display code, so 100 rows took 50-80 ms of CPU, four
    # times the rest of the page; deep pages also skip a quarter of the rows.
    list_per_page = 25
    # The columns the changelist's cells show (``only()``; the related rows' through
    # list_select_related), so its rows skip the wide ones: a request's item snapshot, the
    # whole request behind an audit record. Empty: every column.
    list_only: tuple[str, ...] = ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.list_only and _is_changelist(request, self.model):
            queryset = queryset.only(*self.list_only)
        return queryset

    def get_changelist(self, request, **kwargs):
        return FastLinksChangeList


def user_name_columns(prefix: str) -> tuple[str, ...]:
    """The user columns a person's name is shown from (Employee.display_name), for
    ``list_only`` under ``prefix`` (``"holder__user__"``)."""
    return tuple(f"{prefix}{name}" for name in ("first_name", "last_name", "username"))


def _is_changelist(request, model) -> bool:
    match = getattr(request, "resolver_match", None)
    opts = model._meta
    return match is not None and match.url_name == f"{opts.app_label}_{opts.model_name}_changelist"


class FastLinksChangeList(ChangeList):
    """A changelist whose rows' links to their change pages are one URL reversed per page,
    the row's key put in: reverse() per row was a tenth of a changelist's CPU."""

    def url_for_result(self, result):
        pk = getattr(result, self.pk_attname)
        if type(pk) is not int:  # keys that quote() or the URL would escape: as Django does
            return super().url_for_result(result)
        template = getattr(self, "_change_url_template", None)
        if template is None:
            opts = self.opts
            template = self._change_url_template = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=(_PK_MARK,),
                current_app=self.model_admin.admin_site.name,
            )
        return template.replace(_PK_MARK, str(pk), 1)


_PK_MARK = "0pk0"  # a key no integer renders as, in the one place of the change URL
