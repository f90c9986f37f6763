"""Errors services raise for the interfaces (pages, API, tasks) to present."""

from django.utils.translation import gettext_lazy as _


class ActionConflict(Exception):
    """The object changed under the user: their action no longer applies."""

    default_message = _(
        "This request was changed by someone else in the meantime. "
        "Please look at its current state."
    )

    def __init__(self, message=None):
        self.message = message or self.default_message
        super().__init__(str(self.message))
