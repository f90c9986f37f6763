"""Pages of the mail outbox. Thin: reads through selectors, writes through services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.decorators.http import require_POST
from django.views.i18n import LANGUAGE_QUERY_PARAMETER
from django.views.i18n import set_language as django_set_language

from itportal.inputs import BoundedPaginator
from itportal.views import FilteredTableView, ItAdminRequiredMixin, RowActionView
from notifications import selectors, services
from notifications.filtersets import MailFilterSet
from notifications.tables import MailTable

DENIED = gettext_lazy("Only IT administration sees the outgoing mail.")


@login_not_required
@require_POST
def set_language(request):
    """Django's language switch; a logged-in person's choice is kept for their mails too."""
    response = django_set_language(request)
    if request.user.is_authenticated:
        services.language_remember(
            user=request.user, language=request.POST.get(LANGUAGE_QUERY_PARAMETER, "")
        )
    return response


class OutboxView(ItAdminRequiredMixin, FilteredTableView):
    """ "Postausgang": mails waiting, being retried, failed or interrupted."""

    denied_message = DENIED
    table_class = MailTable
    filterset_class = MailFilterSet
    title = gettext_lazy("Outgoing mail")
    intro = gettext_lazy(
        "Notifications not sent yet. Mails that failed or whose sending was interrupted "
        "(they may have arrived) are sent again only when you say so."
    )
    selector = staticmethod(selectors.mails_visible_to)


class MailRetryView(ItAdminRequiredMixin, RowActionView):
    denied_message = DENIED
    selector = staticmethod(selectors.mails_visible_to)

    def act(self, mail) -> str:
        services.mail_retry(mail_id=mail.pk)
        return _("The mail to %(to)s will be sent again.") % {"to": mail.to}

    def success_url(self, mail) -> str:
        return reverse("notifications:outbox")


class InboxView(View):
    """ "Benachrichtigungen": what happened to the person's requests and what waits for them."""

    def get(self, request):
        paginator = BoundedPaginator(selectors.notifications_of(request.user), 30)
        page = paginator.get_page(request.GET.get("page"))
        return render(request, "notifications/inbox.html", {"page": page})


class InboxOpenView(View):
    """Follow one notification's link and mark it read (POST: a link preview must not)."""

    def post(self, request, pk):
        notification = get_object_or_404(selectors.notifications_of(request.user), pk=pk)
        services.notifications_mark_read(user=request.user, notification_id=notification.pk)
        target = notification.url
        if not url_has_allowed_host_and_scheme(target, allowed_hosts=None) or not target:
            target = reverse("inbox:list")
        return redirect(target)


class InboxReadAllView(View):
    def post(self, request):
        count = services.notifications_mark_read(user=request.user)
        messages.success(
            request,
            ngettext(
                "%(count)s notification marked as read.",
                "%(count)s notifications marked as read.",
                count,
            )
            % {"count": count},
        )
        return redirect("inbox:list")
