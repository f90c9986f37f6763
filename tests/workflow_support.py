"""Helpers shared by the workflow, approval, reminder and concurrency tests."""

from __future__ import annotations

from django.db.models import Max

from catalogue.choices import FulfilmentKind
from requests_app.models import RequestEvent
from tests.factories import ApprovalPolicyStepFactory, CatalogueItemFactory


def make_item(service_owner, *steps: dict, kind=FulfilmentKind.MANUAL, **fields):
    """An item of ``service_owner`` whose approval policy is ``steps``, in this order."""
    item = CatalogueItemFactory(service_owner=service_owner, fulfilment_kind=kind, **fields)
    for position, step in enumerate(steps, start=1):
        ApprovalPolicyStepFactory(item=item, position=position, **step)
    return item


class EventProbe:
    """Remembers the newest audit record of a request; ``new()`` returns the ones after it."""

    def __init__(self, service_request):
        self.request_id = service_request.pk
        self.last_id = (
            RequestEvent.objects.filter(request_id=self.request_id).aggregate(m=Max("id"))["m"] or 0
        )

    def new(self) -> list[RequestEvent]:
        return list(
            RequestEvent.objects.filter(request_id=self.request_id, id__gt=self.last_id).order_by(
                "id"
            )
        )

    def assert_none(self) -> None:
        assert self.new() == []

    def assert_one(
        self, kind, *, actor, from_state, to_state, comment="", on_behalf_of=None
    ) -> RequestEvent:
        events = self.new()
        assert len(events) == 1, [str(e) for e in events]
        event = events[0]
        assert event.kind == kind
        assert event.actor_id == (actor.pk if actor is not None else None)
        assert event.from_state == from_state
        assert event.to_state == to_state
        assert event.comment == comment
        assert event.on_behalf_of_id == (on_behalf_of.pk if on_behalf_of is not None else None)
        assert event.created_at is not None
        return event


def addresses(outbox) -> list[str]:
    """Sorted recipient addresses of all messages in the outbox."""
    return sorted(address for message in outbox for address in message.to)


def mail_of(*employees_or_users) -> list[str]:
    result = []
    for person in employees_or_users:
        user = getattr(person, "user", person)
        result.append(user.email)
    return sorted(result)


def awaiting_ids(user) -> set[int]:
    """Ids of the requests awaiting ``user``'s decision, read both ways: the ORM's
    ``requests_awaiting_decision_by`` (header counts, start page) and the one statement of
    the approvals page and API list (``pending_decisions_of``). They must agree."""
    from requests_app import selectors

    listed = {r.pk for r in selectors.requests_awaiting_decision_by(user)}
    pending = selectors.pending_decisions_of(user)
    assert {p.request_id for p in pending} == listed
    assert len(pending) == len(listed)  # one step per request
    return listed
