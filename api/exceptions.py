"""The API's error bodies (docs/api.md, "Errors").

DRF's shapes: ``{"detail": "..."}`` for 401/403/404/405/409/429, and for 400 an object
naming each field with a list of problems (``non_field_errors`` for the whole body).
The services' own errors are mapped here, so every interface presents them alike.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from itportal.exceptions import ActionConflict


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The action conflicts with the object's current state.")
    default_code = "conflict"


def validation_detail(exc: DjangoValidationError):
    """A Django ValidationError as DRF's field → messages mapping."""
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): messages
            for field, messages in exc.message_dict.items()
        }
    return {"non_field_errors": exc.messages}


def exception_handler(exc, context):
    if isinstance(exc, ActionConflict):
        exc = Conflict(str(exc.message))
    elif isinstance(exc, ProtectedError):
        exc = Conflict(_("This object is still in use and cannot be deleted."))
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_detail(exc))
    return drf_exception_handler(exc, context)
