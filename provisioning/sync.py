"""Import people, departments and managers from the directory; joiners, movers, leavers.

Attribute names come from ``settings.DIRECTORY_ATTRIBUTES`` (defaults per dialect).
A full sync also treats people who vanished from the directory as leavers; an
incremental sync reads only entries changed since the last successful run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import ldap3
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from catalogue.models import Bundle, CostCentre, Department, Employee
from provisioning import mails, services
from provisioning import movers as movers_module
from provisioning.backends import get_backend
from provisioning.backends.active_directory import ACCOUNTDISABLE
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement, SyncRun
from requests_app import services as request_services
from requests_app.choices import RequestState
from requests_app.models import FulfilmentTask, ServiceRequest

DEFAULT_ATTRIBUTES = {
    "openldap": {
        "uid": "uid",
        "first_name": "givenName",
        "last_name": "sn",
        "mail": "mail",
        "department": "departmentNumber",
        "manager": "manager",
        "title": "title",
        "disabled": "pwdAccountLockedTime",
        "changed": "modifyTimestamp",
        # The portal's schema (devtools/schema/itportal.schema); a directory without it
        # simply returns no value (servers ignore unknown attributes asked for).
        "start_date": "itportalStartDate",
        # Written by the lastbind overlay (operational: read only when asked for by name).
        "last_logon": "authTimestamp",
        "filter": "(objectClass=inetOrgPerson)",
    },
    "ad": {
        "uid": "sAMAccountName",
        "first_name": "givenName",
        "last_name": "sn",
        "mail": "mail",
        "department": "department",
        "manager": "manager",
        "title": "title",
        "disabled": "userAccountControl",
        "changed": "whenChanged",
        "start_date": "",  # none by default: set e.g. "extensionAttribute1" (YYYY-MM-DD)
        # Replicated to every domain controller (lastLogon is not): late by up to ~14 days,
        # which is far below the months that make an account "unused".
        "last_logon": "lastLogonTimestamp",
        "filter": "(&(objectClass=user)(!(objectClass=computer)))",
    },
}
UNASSIGNED_COST_CENTRE = "UNBEKANNT"


def attribute_map(dialect: str) -> dict[str, str]:
    return {**DEFAULT_ATTRIBUTES[dialect], **getattr(settings, "DIRECTORY_ATTRIBUTES", {})}


def _first(attrs: dict, name: str) -> str:
    value = attrs.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def parse_start_date(value: str) -> date | None:
    """A start date as directories write it: generalized time (``20270104000000Z``) or an
    ISO date (``2027-01-04``); anything else is no date."""
    value = (value or "").strip()
    try:
        if len(value) >= 8 and value[:8].isdigit():
            return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


# Active Directory's FILETIME: 100-ns intervals since 1601-01-01 UTC; 0 means never.
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def parse_logon_time(value) -> datetime | None:
    """A last sign-in as the directory returns it: a datetime (ldap3 with schema), generalized
    time (``20261205101500Z``) or AD's FILETIME integer; never, or nonsense, is None."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        text = str(value or "").strip()
        if not text:
            return None
        try:
            if text.isdigit() and len(text) > 14:
                ticks = int(text)
                if ticks <= 0:
                    return None
                moment = _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
            else:
                moment = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            return None
    # ldap3 turns AD's "never" (0) into 1601-01-01; a date before any directory is none.
    if moment.year < 1980 or moment > timezone.now() + timedelta(days=1):
        return None
    return moment


@dataclass
class SyncReport:
    created: int = 0
    joiner_offers: int = 0  # managers offered the joiner bundle for a new colleague
    updated: int = 0
    unchanged: int = 0
    leavers: int = 0
    withdrawn: int = 0  # leavers' open requests cancelled
    tasks: int = 0  # leavers' devices to collect and manual access to remove, for the groups
    movers: int = 0
    revoked: int = 0
    lines: list[str] = field(default_factory=list)

    def as_counts(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


def _is_disabled(attrs: dict, amap: dict, dialect: str) -> bool:
    raw = attrs.get(amap["disabled"])
    if dialect == "ad":
        try:
            return bool(int(_first(attrs, amap["disabled"]) or 0) & ACCOUNTDISABLE)
        except ValueError:
            return False
    return bool(raw)


def _department(code: str, cache: dict[str, Department], report: SyncReport) -> Department:
    code = code or "UNBEKANNT"
    if code not in cache:
        department = Department.objects.filter(code=code).first()
        if department is None:
            cost_centre, _c = CostCentre.objects.get_or_create(
                code=UNASSIGNED_COST_CENTRE, defaults={"name": "Nicht zugeordnet"}
            )
            department = Department.objects.create(code=code, name=code, cost_centre=cost_centre)
            report.lines.append(f"new department {code}: please set its name and cost centre")
        cache[code] = department
    return cache[code]


def _leave(employee: Employee, report: SyncReport, why: str) -> None:
    if employee.is_active:
        employee.is_active = False
        employee.deactivated_by_directory = True
        employee.save(update_fields=["is_active", "deactivated_by_directory"])
        get_user_model().objects.filter(pk=employee.user_id).update(is_active=False)
        report.leavers += 1
        report.lines.append(f"leaver {employee.personnel_number}: {why}")
    tasks_before = FulfilmentTask.objects.filter(person=employee).count()
    for entitlement_id in Entitlement.objects.filter(
        holder=employee, state=EntitlementState.ACTIVE
    ).values_list("pk", flat=True):
        services.entitlement_revoke(entitlement_id=entitlement_id, user=None, reason=why)
        report.revoked += 1
    # Devices delivered to the leaver (one-off deliveries, no entitlement): the group that
    # delivered each one collects it.
    devices = ServiceRequest.objects.filter(
        beneficiary=employee,
        state=RequestState.FULFILLED,
        item__collect_on_leaving=True,
        entitlement__isnull=True,
    ).values_list("pk", flat=True)
    for request_id in devices:
        request_services.task_open(
            request_id=request_id, kind=FulfilmentTask.Kind.COLLECT, reason=why
        )
    report.tasks += FulfilmentTask.objects.filter(person=employee).count() - tasks_before
    # What the leaver ordered or had ordered for them and is not yet under way ends too,
    # with the reason in its timeline; the requester is told as on any cancellation.
    with translation.override(settings.LANGUAGE_CODE):
        note = _("Cancelled: the beneficiary has left (%(why)s).") % {"why": why}
    for request_id in ServiceRequest.objects.filter(
        beneficiary=employee, state__in=request_services.WITHDRAWABLE_STATES
    ).values_list("pk", flat=True):
        if request_services.request_withdraw_for_leaver(request_id=request_id, reason=note):
            report.withdrawn += 1


def _offer_joiner_bundles(joiners: list[Employee], report: SyncReport) -> None:
    """Offer each new colleague's line manager the joiner bundle, pre-filled, by mail."""
    slug = settings.PORTAL_JOINER_BUNDLE
    if not slug or not joiners or not Bundle.objects.active().filter(slug=slug).exists():
        return
    for employee in joiners:
        manager = employee.manager
        if manager is None or not (manager.is_active and manager.user.is_active):
            continue
        mails.queue_joiner_offer(employee, manager, slug)
        report.joiner_offers += 1


def sync_people(
    *, full: bool = True, progress: Callable[[int], None] | None = None, page_size: int = 500
) -> SyncRun:
    """Import or update everyone below the user base; returns the recorded run."""
    backend = get_backend()
    dialect = backend.dialect
    amap = attribute_map(dialect)
    run = SyncRun.objects.create(kind=SyncRun.Kind.FULL if full else SyncRun.Kind.INCREMENTAL)
    report = SyncReport()
    search_filter = amap["filter"]
    if not full:
        last = (
            SyncRun.objects.filter(
                succeeded=True, kind__in=[SyncRun.Kind.FULL, SyncRun.Kind.INCREMENTAL]
            )
            .exclude(pk=run.pk)
            .first()
        )
        if last is not None:
            stamp = last.started_at.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")
            search_filter = f"(&{search_filter}({amap['changed']}>={stamp}))"
    wanted = [
        amap[k]
        for k in (
            "uid",
            "first_name",
            "last_name",
            "mail",
            "department",
            "manager",
            "title",
            "disabled",
            "start_date",
            "last_logon",
        )
        if amap.get(k)
    ]

    def entries():
        def _paged(conn):
            return list(
                conn.extend.standard.paged_search(
                    backend.config.user_base,
                    search_filter,
                    search_scope=ldap3.SUBTREE,
                    attributes=wanted,
                    paged_size=page_size,
                    generator=False,
                )
            )

        return [e for e in backend.run(_paged) if e.get("type") == "searchResEntry"]

    found = entries()
    User = get_user_model()
    departments: dict[str, Department] = {}
    dn_to_uid: dict[str, str] = {}
    managers: dict[str, str] = {}
    joiners: list[str] = []
    movers: dict[str, tuple[str, Department | None]] = {}  # uid: (note, department left)
    seen_uids: set[str] = set()
    logons: list[Employee] = []
    with transaction.atomic():
        existing = {
            e.personnel_number: e for e in Employee.objects.select_related("user", "department")
        }
        for index, entry in enumerate(found, start=1):
            attrs = entry["attributes"]
            uid = _first(attrs, amap["uid"])
            if not uid or len(uid) > 64:
                report.lines.append(f"skipped entry without usable uid: {entry['dn']}")
                continue
            seen_uids.add(uid)
            dn_to_uid[entry["dn"].lower()] = uid
            if _first(attrs, amap["manager"]):
                managers[uid] = _first(attrs, amap["manager"]).lower()
            department = _department(_first(attrs, amap["department"]), departments, report)
            employee = existing.get(uid)
            first, last, mail = (
                _first(attrs, amap[k]) for k in ("first_name", "last_name", "mail")
            )
            start_date = (
                parse_start_date(_first(attrs, amap["start_date"]))
                if amap.get("start_date")
                else None
            )
            last_logon = (
                parse_logon_time(attrs.get(amap["last_logon"])) if amap.get("last_logon") else None
            )
            if employee is None:
                user, _c = User.objects.get_or_create(username=uid[:150])
                user.first_name, user.last_name, user.email = first[:150], last[:150], mail[:254]
                user.set_unusable_password()
                user.save()
                employee = Employee.objects.create(
                    user=user,
                    personnel_number=uid,
                    department=department,
                    job_title=_first(attrs, amap["title"])[:200],
                    directory_dn=entry["dn"],
                    start_date=start_date,
                    directory_last_logon=last_logon,
                )
                existing[uid] = employee
                report.created += 1
                joiners.append(uid)
            else:
                changed = False
                if employee.department_id != department.pk:
                    movers[uid] = (
                        f"moved from {employee.department.code} to {department.code}",
                        employee.department,
                    )
                    employee.department = department
                    changed = True
                for attr, value in (
                    ("job_title", _first(attrs, amap["title"])[:200]),
                    ("directory_dn", entry["dn"]),
                    *([("start_date", start_date)] if amap.get("start_date") else []),
                ):
                    if getattr(employee, attr) != value:
                        setattr(employee, attr, value)
                        changed = True
                user = employee.user
                if (user.first_name, user.last_name, user.email) != (
                    first[:150],
                    last[:150],
                    mail[:254],
                ):
                    user.first_name, user.last_name, user.email = (
                        first[:150],
                        last[:150],
                        mail[:254],
                    )
                    user.save(update_fields=["first_name", "last_name", "email"])
                    changed = True
                if changed:
                    employee.save()
                    report.updated += 1
                else:
                    report.unchanged += 1
                # A sign-in is not a change of the person (it would make every run report
                # everyone updated): saved in bulk below; times only move forward.
                if last_logon and (
                    employee.directory_last_logon is None
                    or last_logon > employee.directory_last_logon
                ):
                    employee.directory_last_logon = last_logon
                    logons.append(employee)
            if _is_disabled(attrs, amap, dialect):
                _leave(employee, report, "disabled in the directory")
            elif not employee.is_active and employee.deactivated_by_directory:
                # A deactivation made in the portal stays: only the sync's own is undone.
                employee.is_active = True
                employee.deactivated_by_directory = False
                employee.save(update_fields=["is_active", "deactivated_by_directory"])
                User.objects.filter(pk=employee.user_id).update(is_active=True)
            if progress:
                progress(index)
        Employee.objects.bulk_update(logons, ["directory_last_logon"], batch_size=1000)
        # Managers once everyone exists; a manager outside this run is looked up by DN.
        by_dn = {e.directory_dn.lower(): e for e in existing.values() if e.directory_dn}
        for uid, manager_dn in managers.items():
            employee = existing[uid]
            manager = existing.get(dn_to_uid.get(manager_dn, "")) or by_dn.get(manager_dn)
            if (
                manager is not None
                and manager.pk != employee.pk
                and employee.manager_id != manager.pk
            ):
                if employee.manager_id is not None and uid not in movers:
                    # A new line manager: they decide on the access now.
                    movers[uid] = (f"new line manager {manager.personnel_number}", None)
                employee.manager = manager
                employee.save(update_fields=["manager"])
        # Movers: the (new) line manager confirms their access within the review period.
        for uid, (note, left) in movers.items():
            employee = existing[uid]
            flagged = movers_module.flag_mover(employee, note=note, old_department=left)
            report.movers += 1
            report.lines.append(f"mover {uid}: {note}; {flagged} entitlements to review")
            if flagged and employee.is_active:
                movers_module.notify_manager(employee)
        _offer_joiner_bundles([existing[uid] for uid in joiners], report)
        if full:
            vanished = (
                Employee.objects.filter(is_active=True)
                .exclude(directory_dn="")
                .exclude(personnel_number__in=seen_uids)
            )
            for employee in vanished:
                _leave(employee, report, "no longer in the directory")
    run.counts = report.as_counts()
    run.report = "\n".join(report.lines)
    run.finished_at = timezone.now()
    run.succeeded = True
    run.save()
    if report.leavers or report.movers:
        mails.queue_run_report(run)
    return run
