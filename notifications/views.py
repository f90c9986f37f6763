"""Pages of the mail outbox. Thin: reads through selectors, writes through services."""

from django.contrib.auth.decorators import login_not_required
from django.views.decorators.http import require_POST
from django.views.i18n import LANGUAGE_QUERY_PARAMETER
from django.views.i18n import set_language as django_set_language

from notifications import services


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
