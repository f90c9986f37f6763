"""The "Warum?" pages' reads: why a person holds something, why a rule was broken, who
decided and when, through which directory groups, and why a due date is what it is.

Reads only, in a fixed number of queries per page (no query per approval or per group).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from governance import sod
from governance.models import SodException, SodFinding, SodRuleVersion
from provisioning.models import Entitlement, ManualMembership
from requests_app.models import Approval, RequestEvent, ServiceRequest

MAX_EVIDENCE = 20  # a finding names a handful of holdings; never render thousands


@dataclass
class GroupStep:
    dn: str
    name: str


def path_steps(path) -> list[GroupStep]:
    return [GroupStep(dn, sod.group_label(dn)) for dn in path]


def rule_version(rule, version: int) -> SodRuleVersion | None:
    return SodRuleVersion.objects.filter(rule=rule, version=version).first()


def approvals_of(request_ids) -> dict[int, list[Approval]]:
    found: dict[int, list[Approval]] = {}
    for approval in (
        Approval.objects.filter(request__in=list(request_ids))
        .select_related("approver", "group", "decided_by", "on_behalf_of")
        .order_by("request_id", "position")
    ):
        found.setdefault(approval.request_id, []).append(approval)
    return found


def finding_explained(finding: SodFinding) -> dict:
    """The finding with each holding on both sides: its order and approvals (entitlement or
    open request), or the membership given by hand; the group path to the rule's group."""
    evidence = finding.evidence or {}
    rows = [
        (side, row)
        for side in ("first", "second")
        for row in (evidence.get(side) or [])[:MAX_EVIDENCE]
    ]
    entitlement_ids = [r["id"] for _s, r in rows if r["source"] == "entitlement"]
    request_ids = [r["id"] for _s, r in rows if r["source"] == "request"]
    manual_ids = [r["id"] for _s, r in rows if r["source"] == "manual"]
    entitlements = Entitlement.objects.select_related("request__requester", "item").in_bulk(
        entitlement_ids
    )
    requests = ServiceRequest.objects.select_related("requester", "item").in_bulk(request_ids)
    manual = ManualMembership.objects.in_bulk(manual_ids)
    all_request_ids = set(request_ids) | {e.request_id for e in entitlements.values()}
    approvals = approvals_of(all_request_ids)
    sides: dict[str, list[dict]] = {"first": [], "second": []}
    for side, row in rows:
        entitlement = entitlements.get(row["id"]) if row["source"] == "entitlement" else None
        service_request = (
            (entitlement.request if entitlement else requests.get(row["id"]))
            if row["source"] in ("entitlement", "request")
            else None
        )
        sides[side].append(
            {
                "row": row,
                "entitlement": entitlement,
                "req": service_request,
                "approvals": approvals.get(service_request.pk, []) if service_request else [],
                "manual": manual.get(row["id"]) if row["source"] == "manual" else None,
                "path": path_steps(row.get("group_path") or []),
                "from": _day(row.get("from")),
                "until": _day(row.get("until")),
            }
        )
    exceptions = list(
        SodException.objects.filter(rule=finding.rule_id, holder=finding.holder_id)
        .select_related("requested_by", "decided_by")
        .order_by("-requested_at")[:20]
    )
    return {
        "finding": finding,
        "version": rule_version(finding.rule, finding.rule_version),
        "current_version": finding.rule.version,
        "sides": sides,
        "exceptions": exceptions,
    }


def _day(value):
    return datetime.date.fromisoformat(value) if value else None


@dataclass
class DueDate:
    due_on: datetime.date | None
    start: datetime.date
    target_days: int
    subdivision: str
    weekend_days: int
    holidays: list[tuple[datetime.date, str]]
    # The clock starts at the approval (the wait for approval is not counted) and stands
    # still while the request is on hold: those periods, and their working time.
    approved_at: datetime.datetime | None = None
    holds: list = field(default_factory=list)
    paused_seconds: int = 0
    response_hours: int = 0
    response_due_at: datetime.datetime | None = None
    responded_at: datetime.datetime | None = None
    business_hours: tuple = ()

    @property
    def paused_hours(self) -> str:
        return f"{self.paused_seconds / 3600:.1f}".replace(".", ",")


def due_date_explained(service_request: ServiceRequest) -> DueDate | None:
    """The calendar behind a request's due dates: the resolution target in working days
    from the approval, the response target in business hours, the periods on hold that
    moved the due date, the Land whose public holidays were skipped, and which ones."""
    import holidays as holiday_calendars

    from itportal.workdays import business_hours
    from requests_app.models import RequestHold
    from requests_app.sla import paused_seconds

    if service_request.fulfilment_due_on is None and service_request.response_due_at is None:
        return None
    target = service_request.item_snapshot.get("sla_target_days") or 0
    start = timezone.localdate(service_request.approved_at or service_request.created_at)
    end = service_request.fulfilment_due_on or start
    subdivision = settings.PORTAL_HOLIDAY_SUBDIVISION
    years = list(range(start.year, end.year + 1)) if end >= start else [start.year]
    calendar = holiday_calendars.Germany(subdiv=subdivision or None, years=years)
    weekend, skipped = 0, []
    day = start + datetime.timedelta(days=1)
    while day <= end and len(skipped) < 60:
        if day.weekday() >= 5:
            weekend += 1
        elif day in calendar:
            skipped.append((day, calendar.get(day)))
        day += datetime.timedelta(days=1)
    holds = list(
        RequestHold.objects.filter(request=service_request)
        .select_related("started_by", "ended_by")
        .order_by("started_at", "id")[:100]
    )
    for hold in holds:
        hold.working_hours = (
            f"{paused_seconds([hold], since=service_request.approved_at) / 3600:.1f}".replace(
                ".", ","
            )
        )
    return DueDate(
        service_request.fulfilment_due_on,
        start,
        int(target),
        subdivision,
        weekend,
        skipped,
        approved_at=service_request.approved_at,
        holds=holds,
        paused_seconds=service_request.sla_paused_seconds,
        response_hours=int(service_request.item_snapshot.get("response_target_hours") or 0),
        response_due_at=service_request.response_due_at,
        responded_at=service_request.responded_at,
        business_hours=business_hours(),
    )


def review_tasks_of(entitlement: Entitlement) -> list:
    """The access reviews of the entitlement: per task the reviewer, why them (the stage's
    reviewer rule, a fallback or an escalation), the stage's due date and its calendar
    (working days of the Land from the stage's opening), and the decision."""
    from governance.models import CampaignStage, ReviewTask

    tasks = list(
        ReviewTask.objects.filter(review__entitlement=entitlement)
        .select_related("review__campaign", "reviewer", "decided_by", "escalated_from")
        .order_by("-review__campaign__started_at", "stage", "iteration", "id")[:30]
    )
    stages = {
        (stage.campaign_id, stage.number): stage
        for stage in CampaignStage.objects.filter(
            campaign__in={t.review.campaign_id for t in tasks}
        )
    }
    for task in tasks:
        task.stage_row = stages.get((task.review.campaign_id, task.stage))
    return tasks


def entitlement_explained(entitlement: Entitlement) -> dict:
    """Why the holder has it: the order, its approvals (who, when, for whom), the directory
    groups it adds the holder to and the groups those are nested in, its period, the open
    segregation-of-duties findings it is part of, and its access reviews."""
    service_request = entitlement.request
    groups = sod.item_groups([entitlement.item_id]).get(entitlement.item_id, ())
    parents = sod.group_parents() if groups else {}
    paths = []
    for group in groups:
        for _target, path in sorted(sod.group_paths(group, parents).items()):
            paths.append(path_steps(path))
    findings = [
        f
        for f in SodFinding.objects.filter(holder=entitlement.holder_id, resolved_at__isnull=True)
        .select_related("rule")
        .order_by("rule__name")[:50]
        if any(
            r.get("source") == "entitlement" and r.get("id") == entitlement.pk
            for side in ("first", "second")
            for r in (f.evidence or {}).get(side, [])
        )
    ]
    events = list(
        RequestEvent.objects.filter(request=service_request)
        .select_related("actor", "on_behalf_of")
        .order_by("created_at", "id")[:100]
    )
    reviews = review_tasks_of(entitlement)
    return {
        "entitlement": entitlement,
        "req": service_request,
        "approvals": approvals_of([service_request.pk]).get(service_request.pk, []),
        "events": events,
        "group_paths": paths,
        "window": sod.entitlement_window(entitlement),
        "findings": findings,
        "reviews": reviews,
        "subdivision": settings.PORTAL_HOLIDAY_SUBDIVISION,
        "due": due_date_explained(service_request),
    }


def request_explained(service_request: ServiceRequest) -> dict:
    """Who decides each step and why (the routing note, substitutes, escalations), who
    decided when, and the calendar behind the due date."""
    return {
        "req": service_request,
        "approvals": approvals_of([service_request.pk]).get(service_request.pk, []),
        "events": list(
            RequestEvent.objects.filter(request=service_request)
            .select_related("actor", "on_behalf_of")
            .order_by("created_at", "id")[:100]
        ),
        "due": due_date_explained(service_request),
        "entitlement": Entitlement.objects.filter(request=service_request).first(),
    }
