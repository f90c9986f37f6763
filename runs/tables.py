import django_tables2 as tables
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from itportal.tables import DateTimeColumn
from runs.models import Run


class RunTable(tables.Table):
    name = tables.Column(verbose_name=_("Run"))
    state = tables.Column(verbose_name=_("State"))
    progress = tables.Column(verbose_name=_("Progress"), accessor="done", orderable=False)
    started_at = DateTimeColumn(verbose_name=_("Started"), format="SHORT_DATETIME_FORMAT")
    duration = tables.Column(verbose_name=_("Duration"), accessor="started_at", orderable=False)
    outcome = tables.Column(verbose_name=_("Outcome"), orderable=False)
    host = tables.Column(verbose_name=_("Host"))

    class Meta:
        model = Run
        fields = ("name", "state", "progress", "started_at", "duration", "outcome", "host")
        order_by = ("-started_at",)
        empty_text = _("No long runs yet.")

    def render_state(self, record):
        return record.get_state_display()

    def render_progress(self, record):
        return render_to_string("runs/progress.html", {"run": record})

    def render_duration(self, record):
        seconds = int(record.duration.total_seconds())
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
