import logging
import os

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

_FIELDS_DIR = os.path.join("django", "db", "models", "fields")


def _message_page(request, heading, message, status):
    context = {"heading": heading, "message": message}
    return render(request, "portal/message_page.html", context, status=status)


def permission_denied(request, exception=None):
    """403 page that shows why, when the code said why."""
    message = str(exception) if exception and str(exception) else _("You may not do this.")
    return _message_page(request, _("Not allowed"), message, 403)


def bad_request_page(request, message: str):
    """400 with a message: JSON for the API, the portal's page otherwise."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=400)
    return _message_page(request, _("Bad request"), message, 400)


def _raised_by_field_conversion(exception: BaseException) -> bool:
    """A model field refused a raw value (``Field 'id' expected a number but got 'abc'``)."""
    if not isinstance(exception, ValueError | TypeError):
        return False
    tb = exception.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    code = tb.tb_frame.f_code
    return _FIELDS_DIR in code.co_filename and code.co_name in (
        "get_prep_value",
        "to_python",
        "get_db_prep_value",
    )


class BadInputMiddleware:
    """Raw input that a view handed on unchecked is the client's error: 400, not 500.

    Covers what the views cannot see coming, chiefly the Django admin (a non-numeric
    ``_selected_action`` or object id reaches the ORM, which refuses it) and a service's
    ValidationError that a view did not catch. The view's transaction has already rolled
    back when this runs, so nothing was saved. Logged, so the view can be fixed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ValidationError):
            message = " ".join(exception.messages)
        elif _raised_by_field_conversion(exception):
            message = _(
                "The request contains a value of the wrong kind (for example letters where "
                "a number belongs). Nothing was changed."
            )
        else:
            return None
        logger.warning("Bad input on %s %s: %r", request.method, request.path, exception)
        return bad_request_page(request, message)
