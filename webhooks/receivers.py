"""Which happenings become webhook events. requests_app and provisioning never import us.

Both receivers run inside the transaction of what happened, so the outbox rows commit
(or roll back) with it.
"""

from requests_app.choices import EventKind, RequestState
from webhooks import payloads, services
from webhooks.choices import EventType

# Audit record kind → event type. "approve" counts only when it approved the whole request
# (the last step); reopening a failed request is not a new approval.
_REQUEST_EVENTS = {
    EventKind.SUBMIT: EventType.REQUEST_SUBMITTED,
    EventKind.APPROVE_WITHOUT_STEPS: EventType.REQUEST_APPROVED,
    EventKind.APPROVE: EventType.REQUEST_APPROVED,
    EventKind.REJECT: EventType.REQUEST_REJECTED,
    EventKind.COMPLETE: EventType.REQUEST_FULFILLED,
    EventKind.FAIL: EventType.REQUEST_FAILED,
}


def event_type_for(record) -> str | None:
    event_type = _REQUEST_EVENTS.get(record.kind)
    if record.kind == EventKind.APPROVE and record.to_state != RequestState.APPROVED:
        return None  # one step of several
    return event_type


def on_request_event(sender, instance, created, **kwargs) -> None:
    """post_save of RequestEvent: every transition writes exactly one, never changed later."""
    if not created:
        return
    event_type = event_type_for(instance)
    if event_type is None:
        return
    services.event_publish(
        event_type=event_type,
        occurred_at=instance.created_at,
        build_data=lambda: payloads.request_data(
            instance.request, from_state=instance.from_state, to_state=instance.to_state
        ),
    )


def on_entitlement_revoked(sender, entitlement_id: int, **kwargs) -> None:
    from provisioning.models import Entitlement

    def build():
        entitlement = Entitlement.objects.select_related("holder__user", "item").get(
            pk=entitlement_id
        )
        return payloads.entitlement_data(entitlement)

    services.event_publish(event_type=EventType.ENTITLEMENT_REVOKED, build_data=build)
