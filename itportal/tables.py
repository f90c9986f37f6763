"""Shared table columns."""

from django.utils.formats import date_format
from django.utils.timezone import localtime


class OutboxColumns:
    """How the bookkeeping of an outbox row (itportal.models.OutboxRow) is shown in a
    django-tables2 table; ``open_states`` are the states in which a next attempt is due."""

    open_states: tuple = ()

    def render_state(self, record):
        return record.get_state_display()

    def render_last_error(self, value):
        return value if len(value) <= 120 else value[:119] + "…"

    def render_next_attempt_at(self, record, value):
        if record.state not in self.open_states:
            return "—"
        return date_format(localtime(value), "SHORT_DATETIME_FORMAT")
