"""What the portal holds about a person (DSGVO Art. 15), and the audit trail for auditors.

Reads only. Every kind of personal data the portal stores appears here; docs/datenschutz.md
lists the same kinds with their purpose and retention.
"""

from __future__ import annotations

from datetime import date, datetime, time

from axes.models import AccessLog
from django.db.models import Q, QuerySet
from django.utils import timezone

from api.models import ApiToken
from catalogue.models import Employee
from provisioning.models import Entitlement
from requests_app.models import Approval, Rating, RequestEvent, ServiceRequest, Substitution


def find_person(query: str) -> Employee | None:
    """The employee by personnel number or user name, in any case."""
    query = (query or "").replace("\x00", "").strip()[:150]
    if not query:
        return None
    people = Employee.objects.select_related("user", "department", "cost_centre", "manager__user")
    return (
        people.filter(personnel_number__iexact=query).first()
        or people.filter(user__username__iexact=query).first()
    )


def _request_row(r: ServiceRequest) -> dict:
    return {
        "id": r.pk,
        "item": r.item_snapshot.get("name") or str(r.item),
        "state": r.state,
        "requester": r.requester.get_username(),
        "beneficiary": r.beneficiary.personnel_number,
        "cost_centre": r.cost_centre.code,
        "created_at": r.created_at,
        "closed_at": r.closed_at,
        "answers": r.answers,
        "justification": r.justification,
        "price_once": r.price_once,
        "price_monthly": r.price_monthly,
    }


def personal_data(employee: Employee) -> dict:
    """Everything the portal holds about ``employee``, as plain data (JSON-ready with
    DjangoJSONEncoder)."""
    user = employee.user
    requests = (
        ServiceRequest.objects.filter(Q(requester=user) | Q(beneficiary=employee))
        .select_related("requester", "beneficiary", "cost_centre", "item")
        .order_by("created_at", "pk")
    )
    return {
        "generated_at": timezone.now(),
        "person": {
            "personnel_number": employee.personnel_number,
            "user_name": user.get_username(),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "department": str(employee.department),
            "cost_centre": str(employee.effective_cost_centre),
            "line_manager": employee.manager.display_name if employee.manager else None,
            "job_title": employee.job_title,
            "directory_entry": employee.directory_dn,
            "active": employee.is_active and user.is_active,
            "roles": sorted(user.groups.values_list("name", flat=True)),
            "last_login": user.last_login,
            "date_joined": user.date_joined,
        },
        "requests": [_request_row(r) for r in requests],
        "decisions": [
            {
                "request": a.request_id,
                "step": a.label,
                "status": a.status,
                "decided_at": a.decided_at,
                "comment": a.comment,
            }
            for a in Approval.objects.filter(decided_by=user).order_by("decided_at", "pk")
        ],
        "entitlements": [
            {
                "item": str(e.item),
                "state": e.state,
                "granted_at": e.granted_at,
                "request": e.request_id,
            }
            for e in Entitlement.objects.filter(holder=employee).select_related("item")
        ],
        "ratings": [
            {
                "request": r.request_id,
                "score": r.score,
                "comment": r.comment,
                "rated_at": r.rated_at,
            }
            for r in Rating.objects.filter(rated_by=user).order_by("rated_at")
        ],
        "substitutions": [
            {
                "principal": s.principal.get_username(),
                "substitute": s.substitute.get_username(),
                "starts_on": s.starts_on,
                "ends_on": s.ends_on,
            }
            for s in Substitution.objects.filter(Q(principal=user) | Q(substitute=user))
            .select_related("principal", "substitute")
            .order_by("starts_on")
        ],
        "audit_records": [_event_row(e) for e in audit_records(person=employee)],
        "api_tokens": [
            {
                "name": t.name,
                "begins_with": t.prefix,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
            }
            for t in ApiToken.objects.filter(user=user).order_by("created_at")
        ],
        "logins": [
            {
                "at": log.attempt_time,
                "logout_at": log.logout_time,
                "address": log.ip_address,
                "browser": log.user_agent,
            }
            for log in AccessLog.objects.filter(username__iexact=user.get_username()).order_by(
                "attempt_time"
            )
        ],
    }


def audit_records(
    *,
    start: date | None = None,
    end: date | None = None,
    request_id: int | None = None,
    person: Employee | None = None,
) -> QuerySet[RequestEvent]:
    """The audit trail, filtered: by period (both days included), request, or person (as
    actor, requester or beneficiary)."""
    events = RequestEvent.objects.select_related("request__item", "actor", "on_behalf_of").order_by(
        "created_at", "id"
    )
    tz = timezone.get_current_timezone()
    if start:
        events = events.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=tz))
    if end:
        events = events.filter(created_at__lte=datetime.combine(end, time.max, tzinfo=tz))
    if request_id:
        events = events.filter(request_id=request_id)
    if person is not None:
        events = events.filter(
            Q(actor=person.user_id)
            | Q(on_behalf_of=person.user_id)
            | Q(request__requester=person.user_id)
            | Q(request__beneficiary=person)
        )
    return events


def _event_row(event: RequestEvent) -> dict:
    return {
        "time": event.created_at,
        "request": event.request_id,
        "item": str(event.request.item),
        "actor": event.actor.get_username() if event.actor_id else "",
        "on_behalf_of": event.on_behalf_of.get_username() if event.on_behalf_of_id else "",
        "action": event.kind,
        "from": event.from_state,
        "to": event.to_state,
        "comment": event.comment,
    }


AUDIT_COLUMNS = (
    "time",
    "request",
    "item",
    "actor",
    "on_behalf_of",
    "action",
    "from",
    "to",
    "comment",
)


def audit_rows(events: QuerySet[RequestEvent]):
    for event in events.iterator(chunk_size=2000):
        yield _event_row(event)
