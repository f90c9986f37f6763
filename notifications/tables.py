import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from itportal.tables import DateTimeColumn, OutboxColumns
from notifications import registry
from notifications.choices import OPEN_MAIL_STATES
from notifications.models import OutgoingMail

ACTIONS = "notifications/mail_actions.html"  # send a failed or interrupted mail again


class MailTable(OutboxColumns, tables.Table):
    open_states = OPEN_MAIL_STATES
    created_at = DateTimeColumn(verbose_name=_("Created"), format="SHORT_DATETIME_FORMAT")
    kind = tables.Column(verbose_name=_("Kind"))
    to = tables.Column(verbose_name=_("Recipient"), attrs={"td": {"class": "url"}})
    subject = tables.Column(verbose_name=_("Subject"), default="—")
    state = tables.Column(verbose_name=_("State"))
    attempts = tables.Column(verbose_name=_("Attempts"))
    last_error = tables.Column(verbose_name=_("Last error"), default="")
    next_attempt_at = tables.Column(verbose_name=_("Next attempt"))
    actions = tables.TemplateColumn(
        template_name=ACTIONS, verbose_name=_("Actions"), orderable=False
    )

    class Meta:
        model = OutgoingMail
        fields = (
            "created_at", "kind", "to", "subject", "state", "attempts", "last_error",
            "next_attempt_at",
        )  # fmt: skip
        order_by = ("-created_at",)
        empty_text = _("No mails waiting or failed.")

    def render_kind(self, value):
        kind = registry.get(value)
        return kind.label if kind is not None else value
