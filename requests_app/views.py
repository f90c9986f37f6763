"""Request pages: lists, detail with timeline, actions, substitutes.

Thin: selectors read, services write.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.generic import FormView

from catalogue.forms import PersonField
from itportal.exceptions import ActionConflict
from itportal.inputs import BoundedDateField
from itportal.memo import Memo, instance_key
from itportal.views import FilteredTableView
from requests_app import permissions, progress, selectors, services
from requests_app.choices import OPEN_STATES, HoldReason, RequestState
from requests_app.filtersets import RequestFilterSet
from requests_app.models import (
    RATING_COMMENT_MAX_LENGTH,
    RATING_WINDOW_DAYS,
    FulfilmentTask,
    Rating,
    RequestHold,
    Substitution,
)
from requests_app.tables import ApprovalTable, MyRequestTable, QueueTable


class Tab:
    """One tab above a list: a name for the URL, a label, and what it keeps of the rows."""

    def __init__(self, key, label, keep):
        self.key = key
        self.label = label
        self.keep = keep  # (queryset, user) -> queryset


class TabbedListMixin:
    """Tabs (``?tab=``) that split a list before its filters apply; the first is the default."""

    tabs: list[Tab] = []

    def current_tab(self) -> Tab:
        key = self.request.GET.get("tab", "")
        if not key and (self.request.GET.getlist("state") or self.request.GET.get("q")):
            # Asking for states or searching (a bookmark, a link) looks at all requests.
            key = "all"
        return next((t for t in self.tabs if t.key == key), self.tabs[0])

    def get_queryset(self):
        return self.current_tab().keep(super().get_queryset(), self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        current = self.current_tab()
        context["tabs"] = [
            {"key": t.key, "label": t.label, "current": t is current} for t in self.tabs
        ]
        context["current_tab"] = current.key
        return context


class RowsTableMixin:
    """The page's rows read as values (``selectors.page_rows``) of the columns the table
    shows; the count and the sorting work on the model rows' query, without their joins."""

    def read_page_rows(self, queryset):
        return selectors.page_rows(queryset, self.table_class.row_columns)


def filters_key(filterset) -> tuple:
    """What a list's filters make of its rows, for a key its compiled statements are kept
    under: whether the form is bound, the filters as asked and the time zone their dates
    are compared in."""
    data = filterset.data if filterset.is_bound else {}
    asked = tuple(
        (name, tuple(data.getlist(name)) if hasattr(data, "getlist") else repr(data.get(name)))
        for name in filterset.filters
    )
    return (filterset.is_bound, asked, timezone.get_current_timezone_name())


# "My requests"' querysets by user and tab (MyRequestsView.get_queryset).
_MY_LISTS = Memo(1024, 4 << 20)


class MyRequestsView(RowsTableMixin, TabbedListMixin, FilteredTableView):
    table_class = MyRequestTable
    filterset_class = RequestFilterSet
    title = gettext_lazy("My requests")
    intro = gettext_lazy("Requests you placed and requests placed for you.")
    tabs = [
        Tab("open", gettext_lazy("Open"), lambda qs, user: qs.filter(state__in=OPEN_STATES)),
        Tab("closed", gettext_lazy("Closed"), lambda qs, user: qs.exclude(state__in=OPEN_STATES)),
        Tab("all", gettext_lazy("All"), lambda qs, user: qs),
    ]

    def get_queryset(self):
        # Kept per user and tab (the SQL to build, no rows; each view gets a copy): building
        # the OR, its subquery and the tab's filter cost 0.5 ms of every view's CPU.
        user, tab = self.request.user, self.current_tab()
        kept = _MY_LISTS.get((user.pk, tab.key))
        if kept is None:
            kept = tab.keep(selectors.requests_of_rows(user), user)
            _MY_LISTS.put((user.pk, tab.key), kept, 4096)  # about its query's bytes
        return kept.all()

    def get_table_pagination(self, table):
        pagination = super().get_table_pagination(table)
        if pagination is not False:
            # The "next page" link says where this page ended (keyset): deep pages are read
            # from there along the parts' indexes. The page numbers stay as they are.
            pagination["after"] = self.request.GET.get("after", "")
            pagination["parts_key"] = self.parts_key()
            # Where few of the person's requests are listed, the page's ids are read with
            # the count (BoundedPaginator's ``ids_with_count``): the open ones (their
            # partial indexes), or a search's matches, for which reading the ids apart
            # read all of the person's 10,000 index entries again (2 ms at 1M).
            searched = bool(self.request.GET.get("q", "").strip())
            pagination["ids_with_count"] = searched or self.current_tab().key == "open"
        return pagination

    def parts_key(self) -> tuple:
        """What the page's parts are made of (page_parts): whose list, the tab, the filters
        as asked and the time zone their dates are compared in. The pager keeps the parts'
        compiled union under it (BoundedPaginator's ``parts_key``)."""
        return ("mine", self.request.user.pk, self.current_tab().key, *filters_key(self.filterset))

    def page_parts(self, queryset):
        # Each part with the tab and the filters of the list, as FilterSet.qs applies them:
        # none without a query string (an unbound form), no rows for a form in error.
        filterset = self.filterset
        if filterset.is_bound and not filterset.is_valid():
            return None
        tab = self.current_tab()
        parts = [
            tab.keep(part, self.request.user)
            for part in selectors.requests_of_parts(self.request.user)
        ]
        return [filterset.filter_queryset(part) for part in parts] if filterset.is_bound else parts


class ApprovalsView(RowsTableMixin, FilteredTableView):
    template_name = "requests/approvals.html"
    table_class = ApprovalTable
    filterset_class = RequestFilterSet
    title = gettext_lazy("Approvals for me")
    intro = gettext_lazy(
        "Requests waiting for your decision, including those of approvers you substitute."
    )

    def get_queryset(self):
        # The user's pending decisions, read once: the table's count and rows and the joint
        # orders above it (unfiltered) take the requests from them.
        self.pending = selectors.pending_decisions_of(self.request.user)
        return selectors.requests_to_decide_rows(self.request.user, self.pending)

    def get_table_pagination(self, table):
        pagination = super().get_table_pagination(table)
        # Unfiltered, the list's rows are the pending decisions (one per request, each
        # awaiting approval): their number is its count, without a query.
        filtered = any(name in self.request.GET for name in self.filterset.filters)
        if pagination is not False and not filtered:
            pagination["counted"] = len(self.pending)
        return pagination

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["groups"] = selectors.approval_groups(self.request.user, self.pending)
        return context


def _number(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 18 else None


class DecideTogetherView(View):
    """POST: approve or reject the chosen requests of a joint order at once, all or none;
    403 for a request the user may not decide, a message when one was decided meanwhile."""

    def post(self, request):
        decision = request.POST.get("decision")
        comment = request.POST.get("comment", "")
        if decision not in DECISIONS or len(comment) > 4000 or "\x00" in comment:
            messages.error(request, _("Please choose a decision and keep the comment short."))
            return redirect("requests:approvals")
        steps = []
        for value in request.POST.getlist("request")[: services.DECIDE_TOGETHER_MAX + 1]:
            request_id = _number(value)
            if request_id is None:
                messages.error(request, _("The form was posted with invalid requests."))
                return redirect("requests:approvals")
            steps.append((request_id, _number(request.POST.get(f"approval_{request_id}", ""))))
        try:
            decided = services.requests_decide_together(
                user=request.user,
                steps=steps,
                approve=decision == "approve",
                comment=comment,
            )
        except ActionConflict as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            count = len(decided)
            if decision == "approve":
                done = ngettext(
                    "You approved %(count)s request.", "You approved %(count)s requests.", count
                )
            else:
                done = ngettext(
                    "You rejected %(count)s request.", "You rejected %(count)s requests.", count
                )
            messages.success(request, done % {"count": count})
        return redirect("requests:approvals")


class QueueView(RowsTableMixin, TabbedListMixin, FilteredTableView):
    table_class = QueueTable
    filterset_class = RequestFilterSet
    title = gettext_lazy("Fulfilment queue")
    intro = gettext_lazy("Approved requests that your groups fulfil by hand.")
    tabs = [
        Tab("all", gettext_lazy("All"), lambda qs, user: qs),
        Tab(
            "waiting",
            gettext_lazy("Not yet taken"),
            lambda qs, user: qs.filter(state=RequestState.APPROVED),
        ),
        Tab("mine", gettext_lazy("Assigned to me"), lambda qs, user: qs.filter(assignee=user)),
        Tab("on_hold", gettext_lazy("On hold"), lambda qs, user: qs.exclude(hold_reason="")),
    ]

    template_name = "requests/queue.html"

    def get_queryset(self):
        return self.current_tab().keep(
            selectors.fulfilment_queue_rows(self.request.user), self.request.user
        )

    def get_filterset_kwargs(self, filterset_class):
        # A query string of none of the filters' fields (a sort, a page, a tab: the queue's
        # usual links) filters nothing, as no query string does: the filter set is unbound
        # then, so neither validating it nor its kept markup builds its form
        # (portal_forms._unbound_key), 0.3 ms of the queue sorted by service.
        kwargs = super().get_filterset_kwargs(filterset_class)
        data = kwargs.get("data")
        if data is not None and not any(
            key.startswith(name) for key in data for name in filterset_class.base_filters
        ):
            kwargs["data"] = None
        return kwargs

    def get_table_pagination(self, table):
        pagination = super().get_table_pagination(table)
        if pagination is not False:
            # The list is its own only part (``page_parts``), compiled once per process
            # and list: compiling its count through the ORM on every view was 0.4 ms of
            # the page's CPU, for the same statement. The count and the page's ids stay
            # two statements: counted together, the ids were sorted from all the counted
            # rows (1.2 ms at 1M), where apart they are the first 25 entries of an index.
            pagination["parts_key"] = (
                "queue",
                self.request.user.pk,
                selectors.fulfilment_groups(self.request.user),
                self.current_tab().key,
                *filters_key(self.filterset),
            )
        return pagination

    def page_parts(self, queryset):
        # No rows for a form in error (an empty queryset), nor for a user in no group.
        filterset = self.filterset
        if filterset.is_bound and not filterset.is_valid():
            return None
        if selectors.fulfilment_groups(self.request.user) == ():
            return None
        return [queryset]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # As read: the section's markup is kept by these values ({% task_section %}).
        context["task_values"] = selectors.open_task_values(self.request.user, TASKS_SHOWN + 1)
        return context


TASKS_SHOWN = 50  # oldest first; the rest follow as these are done


class TaskDoneView(View):
    """Mark a task of the queue done (POST only), with an optional note."""

    def post(self, request, pk):
        try:
            task = services.task_complete(
                task_id=pk, user=request.user, note=request.POST.get("note", "")
            )
        except FulfilmentTask.DoesNotExist as exc:
            raise Http404 from exc
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(reverse("requests:queue") + "#tasks")
        except ActionConflict as exc:
            messages.info(request, str(exc))
            return redirect(reverse("requests:queue") + "#tasks")
        messages.success(
            request,
            _("Task done: %(item)s of %(name)s.")
            % {"item": task.request.item_name, "name": task.person.display_name},
        )
        return redirect(reverse("requests:queue") + "#tasks")


DECISIONS = {"approve", "reject"}


class ActionSpec:
    def __init__(
        self,
        name,
        label,
        service,
        *,
        done,
        text=None,
        text_label="",
        required=False,
        style="",
        confirm="",
    ):
        self.name = name
        self.label = label
        self.done = done
        self.service = service
        self.text = text  # keyword the service takes the free text as
        self.text_label = text_label
        self.required = required
        self.style = style
        # Asked on a page of its own before acting (the request page links there).
        self.confirm = confirm


ACTIONS = {
    a.name: a
    for a in [
        ActionSpec("approve", gettext_lazy("Approve"), services.request_approve,
                   done=gettext_lazy("You approved the request."),
                   text="comment", text_label=gettext_lazy("Comment (optional)"), style="primary"),
        ActionSpec("reject", gettext_lazy("Reject"), services.request_reject,
                   done=gettext_lazy("You rejected the request."),
                   text="comment", text_label=gettext_lazy("Reason for rejection"),
                   required=True, style="danger"),
        ActionSpec("take", gettext_lazy("Take into fulfilment"), services.request_take,
                   done=gettext_lazy("The request is now in your fulfilment."), style="primary"),
        ActionSpec("complete", gettext_lazy("Mark as fulfilled"), services.request_complete,
                   done=gettext_lazy("The request is fulfilled."),
                   text="note", text_label=gettext_lazy("Fulfilment note"), style="primary"),
        ActionSpec("fail", gettext_lazy("Mark as failed"), services.request_fail,
                   done=gettext_lazy("The request is marked as failed."),
                   text="reason", text_label=gettext_lazy("Reason"), required=True,
                   style="danger"),
        ActionSpec("reopen", gettext_lazy("Reopen"), services.request_reopen,
                   done=gettext_lazy("The request is back in the fulfilment queue."),
                   text="comment", text_label=gettext_lazy("Comment (optional)")),
        ActionSpec("cancel", gettext_lazy("Cancel request"), services.request_cancel,
                   done=gettext_lazy("The request is cancelled."),
                   text="comment", text_label=gettext_lazy("Comment (optional)"),
                   style="danger",
                   confirm=gettext_lazy("The request is withdrawn: pending approvals end and "
                                        "nothing is delivered. This cannot be undone; to have "
                                        "the service, order it again.")),
    ]
}  # fmt: skip


def available_actions(service_request, user) -> list[ActionSpec]:
    """Exactly the actions this user may take now, from the FSM's own permission rules."""
    names = {t.name for t in service_request.get_available_user_state_transitions(user)}
    return [spec for name, spec in ACTIONS.items() if name in names]


RATING_CHOICES = [
    (1, gettext_lazy("1 – very dissatisfied")),
    (2, gettext_lazy("2 – dissatisfied")),
    (3, gettext_lazy("3 – neither satisfied nor dissatisfied")),
    (4, gettext_lazy("4 – satisfied")),
    (5, gettext_lazy("5 – very satisfied")),
]


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        label=gettext_lazy("How satisfied are you with the fulfilment of this request?"),
        choices=RATING_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=gettext_lazy("Comment (optional)"),
        required=False,
        max_length=RATING_COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["comment"].help_text = _(
            "IT controlling reads the comments without your name. You can change your "
            "rating until %(days)s days after fulfilment."
        ) % {"days": RATING_WINDOW_DAYS}


def _rating_of(service_request):
    try:
        return service_request.rating
    except Rating.DoesNotExist:
        return None


def render_detail(request, service_request, *, rating_form=None, status=200):
    """The request page; ``rating_form`` to show a bound form with its errors.

    Its own markup (templates/requests/detail_content.html) is kept per process
    ({% request_content %}) under ``content_key``: the rows it shows as read (the request
    with its people and item, its steps, its events, the hold) and what the viewer may do
    there. The events are made into objects, and the progress line and the answers
    worked out, only when the markup is rendered (``content_values``)."""
    user = request.user
    approvals = list(selectors.request_approvals(service_request))
    current = next((a for a in approvals if a.status == "pending"), None)
    principal = None
    if current is not None:
        principal = permissions.deciding_principal(service_request, user, approval=current)
    is_requester = service_request.requester_id == user.pk
    # Ordering again: for the requester or beneficiary of a closed request, or of one that
    # cannot go on, through the order form filled in as this request was (?wie=<number>).
    reorder_url = None
    if (
        service_request.state not in OPEN_STATES
        and (is_requester or service_request.beneficiary.user_id == user.pk)
        and service_request.item.is_active
    ):
        reorder_url = "{}?wie={}".format(
            reverse("ordering:order", kwargs={"slug": service_request.item.slug}),
            service_request.pk,
        )
    rating = _rating_of(service_request) if is_requester else None
    offered_form = rating_form is None and services.may_rate(service_request, user)
    actions = available_actions(service_request, user)
    acting_for = principal if principal and principal.pk != user.pk else None
    sla = _sla_context(service_request, user)
    events = selectors.request_timeline_rows(service_request)

    def content_values() -> dict:
        answers = service_request.answers
        values = {}
        if offered_form:  # unbound: rendered once, kept with the rest
            initial = {"score": rating.score, "comment": rating.comment} if rating else None
            values["rating_form"] = RatingForm(initial=initial)
        return {
            **values,
            "timeline": selectors.timeline_of_rows(service_request, events),
            "answers": [
                {
                    "label": f["label"],
                    "value": answers.get(f["key"]),
                    "type": f.get("field_type", ""),
                }
                for f in service_request.item_snapshot.get("fields", [])
            ],
            "progress_steps": progress.steps(service_request, current),
            "now_with": progress.now_with(service_request, current),
            "tone": progress.tone(service_request.state),
        }

    key = None
    if rating_form is None:  # a form with its errors is rendered as it is
        key = _content_key(user, (service_request, *approvals), events, actions, acting_for, sla)
    return render(
        request,
        "requests/detail.html",
        {
            "req": service_request,
            "approvals": approvals,
            "actions": actions,
            "acting_for": acting_for,
            "current_approval": current,
            "rating": rating,
            "rating_form": rating_form,
            "reorder_url": reorder_url,
            "content_key": key and (*key, reorder_url, offered_form),
            "content_values": content_values,
            **sla,
        },
        status=status,
    )


def _content_key(user, rows, events, actions, acting_for, sla) -> tuple | None:
    """What the request page's own markup shows of the request's ``rows`` (with the
    related rows read with them), its ``events`` (rows as read), the hold and the viewer's
    actions, as plain values; None if one is not plain, or for whoever decides the current
    step (the approver's figures, assist/, are read apart)."""
    names = tuple(action.name for action in actions)
    if "approve" in names:
        return None
    seen = set()
    keys = tuple(instance_key(row, seen) for row in rows)
    hold = instance_key(sla["hold"], seen)
    principal = instance_key(acting_for, seen)
    if None in keys or (hold is None) != (sla["hold"] is None):
        return None
    if (principal is None) != (acting_for is None):
        return None
    return (
        user.pk, keys, hold, principal, tuple(events), names,
        sla["may_hold"], sla["may_resume"], sla["may_comment"], sla["replies_end_hold"],
    )  # fmt: skip


def _sla_context(service_request, user) -> dict:
    """The hold (its note, since when), and which of comment / hold / resume the user may."""
    fulfiller = service_request.state in (
        RequestState.APPROVED,
        RequestState.IN_FULFILMENT,
    ) and permissions.can_fulfil(service_request, user)
    hold = None
    if service_request.hold_reason:
        hold = (
            RequestHold.objects.filter(request=service_request, ended_at__isnull=True)
            .select_related("started_by")
            .first()
        )
    may_comment = service_request.state in (
        RequestState.SUBMITTED,
        RequestState.AWAITING_APPROVAL,
        RequestState.APPROVED,
        RequestState.IN_FULFILMENT,
    ) and (fulfiller or services.is_requesting_side(service_request, user))
    return {
        "hold": hold,
        "may_hold": fulfiller
        and service_request.state == RequestState.IN_FULFILMENT
        and not service_request.hold_reason,
        "may_resume": fulfiller and bool(service_request.hold_reason),
        "may_comment": may_comment,
        "hold_reasons": HoldReason.choices,
        "replies_end_hold": service_request.hold_reason == HoldReason.REQUESTER
        and services.is_requesting_side(service_request, user),
    }


def _visible_request(request, pk):
    # The rating comes in the same query: the page shows it to the requester.
    service_request = selectors.request_visible_to(
        request.user, pk, "rating", "fulfilment_group", "assignee"
    )
    if service_request is None:
        raise Http404
    return service_request


class RequestDetailView(View):
    def get(self, request, pk):
        return render_detail(request, _visible_request(request, pk))


class RequestRateView(View):
    """POST the requester's rating: 404 if not visible, 403 if not the requester,
    400 with the form's errors for bad input."""

    def post(self, request, pk):
        service_request = _visible_request(request, pk)
        if service_request.requester_id != request.user.pk:
            raise PermissionDenied(_("Only the person who placed the request can rate it."))
        form = RatingForm(request.POST)
        if not form.is_valid():
            return render_detail(request, service_request, rating_form=form, status=400)
        try:
            services.request_rate(
                request_id=service_request.pk,
                user=request.user,
                score=form.cleaned_data["score"],
                comment=form.cleaned_data["comment"],
            )
        except ActionConflict as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            for field, errors in getattr(exc, "error_dict", {None: exc.error_list}).items():
                form.add_error(field if field in form.fields else None, errors)
            return render_detail(request, service_request, rating_form=form, status=400)
        else:
            messages.success(request, _("Thank you for your rating."))
        return redirect(service_request)


def _act_with_messages(request, action, done: str) -> None:
    """Run a service call; a conflict or invalid input becomes the user's error message."""
    try:
        action()
    except ActionConflict as exc:
        messages.error(request, exc.message)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)


def _posted_text(request, name: str = "text") -> str | None:
    text = request.POST.get(name, "")
    if len(text) > services.COMMENT_MAX_LENGTH or "\x00" in text:
        messages.error(request, _("The text is too long or contains invalid characters."))
        return None
    return text


class _RequestTextPostView(View):
    """POST a text to a service about a visible request (404 if not visible, 403 if not
    allowed, a message for bad input or a conflict)."""

    done = ""

    def call(self, request, service_request, text):
        raise NotImplementedError

    def post(self, request, pk):
        service_request = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
        text = _posted_text(request)
        if text is not None:
            _act_with_messages(
                request, lambda: self.call(request, service_request, text), self.done
            )
        return redirect(service_request)


class RequestCommentView(_RequestTextPostView):
    """A comment (requester, beneficiary, fulfillers)."""

    done = gettext_lazy("Your comment is in the timeline.")

    def call(self, request, service_request, text):
        services.request_comment(request_id=service_request.pk, user=request.user, comment=text)


class RequestHoldView(_RequestTextPostView):
    """A fulfiller puts the request on hold (waiting for the requester or a supplier)."""

    done = gettext_lazy("The request is on hold; its SLA clock is paused.")

    def call(self, request, service_request, text):
        services.request_hold(
            request_id=service_request.pk,
            user=request.user,
            reason=request.POST.get("reason", "")[:20],
            note=text,
            expected_state=request.POST.get("state") or None,
        )


class RequestResumeView(_RequestTextPostView):
    """A fulfiller ends the hold; the due date moves by the paused working time."""

    done = gettext_lazy("The request is resumed; its SLA clock runs again.")

    def call(self, request, service_request, text):
        services.request_resume(request_id=service_request.pk, user=request.user, comment=text)


class RequestActionView(View):
    """POST one action; 404 if the request is not visible, 403 if not allowed.

    GET shows the confirmation page of an action that asks first (cancel)."""

    def get(self, request, pk, action):
        service_request = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
        spec = ACTIONS.get(action)
        if spec is None:
            raise Http404
        if not spec.confirm:
            return HttpResponseNotAllowed(["POST"])  # acts only on a POST
        if spec not in available_actions(service_request, request.user):
            messages.error(request, _("This action is not possible (any more)."))
            return redirect(service_request)
        return render(
            request, "requests/confirm_action.html", {"req": service_request, "action": spec}
        )

    def post(self, request, pk, action):
        service_request = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
        spec = ACTIONS.get(action)
        if spec is None:
            raise PermissionDenied(_("Unknown action."))
        # The state (and step) the user saw: if someone acted first, this is a conflict.
        kwargs = {
            "request_id": service_request.pk,
            "user": request.user,
            "expected_state": request.POST.get("state") or None,
        }
        if spec.name in DECISIONS:
            step = request.POST.get("approval", "")
            kwargs["expected_approval"] = int(step) if step.isdecimal() and len(step) < 18 else None
        if spec.text:
            text = _posted_text(request)
            if text is None:
                return redirect(service_request)
            kwargs[spec.text] = text
        _act_with_messages(request, lambda: spec.service(**kwargs), spec.done)
        return redirect(service_request)


class SubstitutionForm(forms.Form):
    substitute = PersonField(
        label=gettext_lazy("Substitute"),
        help_text=gettext_lazy("Type a name and pick the person, or enter a personnel number."),
    )
    starts_on = BoundedDateField(
        label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = BoundedDateField(
        label=gettext_lazy("Until"), widget=forms.DateInput(attrs={"type": "date"})
    )


class SubstitutionsView(FormView):
    template_name = "requests/substitutions.html"
    form_class = SubstitutionForm
    success_url = reverse_lazy("requests:substitutions")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["given"] = Substitution.objects.filter(principal=user).select_related("substitute")
        context["taken"] = Substitution.objects.filter(substitute=user).select_related("principal")
        return context

    def form_valid(self, form):
        try:
            services.substitution_create(
                principal=self.request.user,
                substitute=form.cleaned_data["substitute"].user,
                starts_on=form.cleaned_data["starts_on"],
                ends_on=form.cleaned_data["ends_on"],
            )
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                form.add_error(field, errors)
            return self.form_invalid(form)
        messages.success(self.request, _("Substitute saved."))
        return super().form_valid(form)


class SubstitutionDeleteView(View):
    def post(self, request, pk):
        services.substitution_delete(substitution_id=pk, user=request.user)
        messages.success(request, _("Substitute removed."))
        return redirect("requests:substitutions")
