import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from itportal.tables import DateTimeColumn, OutboxColumns
from webhooks.choices import OPEN_DELIVERY_STATES
from webhooks.models import WebhookDelivery, WebhookEndpoint


class EndpointTable(tables.Table):
    # Long URLs wrap anywhere, so the table fits and no column hides behind the scroll edge.
    url = tables.Column(
        verbose_name=_("URL"),
        linkify=("webhooks:detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "url"}},
    )
    description = tables.Column(verbose_name=_("Description"))
    events = tables.Column(verbose_name=_("Events"), empty_values=(), orderable=False)
    is_active = tables.BooleanColumn(verbose_name=_("Active"), yesno=(_("yes"), _("no")))
    open_deliveries = tables.Column(verbose_name=_("Open deliveries"))
    failed_deliveries = tables.Column(verbose_name=_("Failed deliveries"))
    created_at = DateTimeColumn(verbose_name=_("Created"), format="SHORT_DATE_FORMAT")

    class Meta:
        model = WebhookEndpoint
        fields = (
            "url", "description", "events", "is_active", "open_deliveries", "failed_deliveries",
            "created_at",
        )  # fmt: skip
        order_by = ("url",)
        empty_text = _("No webhook endpoints registered yet.")

    def render_events(self, record):
        # subscriptions are prefetched: one query for the whole page
        return ", ".join(str(s.get_event_type_display()) for s in record.subscriptions.all())


class DeliveryTable(OutboxColumns, tables.Table):
    open_states = OPEN_DELIVERY_STATES
    created_at = DateTimeColumn(
        verbose_name=_("Created"),
        format="SHORT_DATETIME_FORMAT",
        linkify=("webhooks:delivery", {"pk": tables.A("pk")}),
    )
    event_type = tables.Column(verbose_name=_("Event"), accessor="event__event_type")
    state = tables.Column(verbose_name=_("State"))
    attempts = tables.Column(verbose_name=_("Attempts"))
    last_status_code = tables.Column(verbose_name=_("Response code"), default="—")
    last_error = tables.Column(verbose_name=_("Last error"), default="")
    next_attempt_at = tables.Column(verbose_name=_("Next attempt"))

    class Meta:
        model = WebhookDelivery
        fields = (
            "created_at", "event_type", "state", "attempts", "last_status_code", "last_error",
            "next_attempt_at",
        )  # fmt: skip
        order_by = ("-created_at",)
        empty_text = _("No deliveries yet.")

    def render_event_type(self, record):
        return record.event.get_event_type_display()
