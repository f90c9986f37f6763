"""Retention (DSGVO Art. 5(1)(e) storage limitation, Art. 17 erasure): one policy per kind of
personal data, each with its period in settings; the run anonymises or deletes what is past it.

What controlling counts stays: requests and entitlements are never deleted, and their prices,
dates, states, service, cost centre and department stay. What goes: free texts (answers,
justification, notes, comments, job logs), and the link to the real people, who are replaced
by the anonymous person of the same department (a placeholder, privacy.Placeholder) or, in
the audit trail, by a stable pseudonym per person.

Every kind works in batches of RETENTION_BATCH_SIZE rows by primary key, one transaction a
batch, and selects only rows that still hold the data: a second run finds nothing (no-op),
and a run stopped half-way resumes where it stopped. docs/datenschutz.md has the table.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat, Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_static.models import StaticDevice

from accounts.models import EncryptedTOTPDevice
from api.models import ApiToken
from catalogue.models import Department, Employee
from notifications.choices import MailState
from notifications.models import LanguagePreference, OutgoingMail
from privacy.models import Placeholder
from provisioning.choices import EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app.choices import OPEN_STATES, RequestState
from requests_app.models import (
    Approval,
    CartLine,
    Rating,
    RequestEvent,
    ServiceRequest,
    Submission,
    Substitution,
)
from webhooks import services as webhook_services

User = get_user_model()

# Django treats a password starting with "!" as unusable: nobody logs in as these accounts.
UNUSABLE_PASSWORD = "!"  # noqa: S105

CLOSED_STATES = (
    RequestState.FULFILLED,
    RequestState.REJECTED,
    RequestState.CANCELLED,
    RequestState.FAILED,
)


@dataclass(frozen=True)
class Policy:
    """One kind of personal data: which setting holds its period, what happens after it."""

    kind: str
    label: str
    setting: str
    action: str
    candidates: Callable[[datetime], models.QuerySet]
    apply: Callable[[list, Context], int]

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=getattr(settings, self.setting))


class Context:
    """Per run: the time, and the placeholders made or found so far (a few queries each)."""

    def __init__(self, now: datetime):
        self.now = now
        self._anonymous: dict[int | None, User] = {}
        self._pseudonyms: dict[int, int] = {}

    def anonymous_employee(self, department_id: int) -> Employee:
        """The anonymous person of a department: an inactive employee record in it."""
        user = self.anonymous_user(department_id)
        return user.employee

    def anonymous_user(self, department_id: int | None = None) -> User:
        """The anonymous user of a department, or the one of nobody's department (for
        approvers, fulfillers and other people whose department the figures do not use)."""
        if department_id in self._anonymous:
            return self._anonymous[department_id]
        key = f"anonymous:{department_id or ''}"
        placeholder = Placeholder.objects.select_related("user").filter(key=key).first()
        if placeholder is None:
            suffix = f"-{department_id}" if department_id else ""
            user = User.objects.create(
                username=f"anonym{suffix}",
                first_name=_("Anonymised"),
                last_name=str(Department.objects.get(pk=department_id).code)
                if department_id
                else "",
                is_active=False,
                password=UNUSABLE_PASSWORD,
            )
            if department_id:
                Employee.objects.create(
                    user=user,
                    personnel_number=f"anonym{suffix}",
                    department_id=department_id,
                    is_active=False,
                    anonymised_at=self.now,
                )
            placeholder = Placeholder.objects.create(key=key, user=user)
        self._anonymous[department_id] = placeholder.user
        return placeholder.user

    def pseudonym(self, user_id: int) -> int:
        """The user id of the stable pseudonym of ``user_id`` in the audit trail: the same
        person gets the same pseudonym in every run; only the key holder could recompute it."""
        if user_id not in self._pseudonyms:
            key = settings.RETENTION_PSEUDONYM_KEY.encode()
            digest = hmac.new(key, f"user:{user_id}".encode(), hashlib.sha256).hexdigest()[:20]
            placeholder = Placeholder.objects.filter(key=f"pseudonym:{digest}").first()
            if placeholder is None:
                user = User.objects.create(
                    username=f"pseudonym-{digest[:12]}",
                    first_name=_("Pseudonym"),
                    last_name=digest[:8],
                    is_active=False,
                    password=UNUSABLE_PASSWORD,
                )
                placeholder = Placeholder.objects.create(key=f"pseudonym:{digest}", user=user)
            self._pseudonyms[user_id] = placeholder.user_id
        return self._pseudonyms[user_id]


def _not_placeholder(field: str) -> Q:
    """``field`` (a user) is set and is a real person, not a placeholder."""
    return Q(**{f"{field}__isnull": False}) & ~Q(
        Exists(Placeholder.objects.filter(user_id=OuterRef(field)))
    )


def _pseudonymise_events(events, ctx: Context) -> int:
    """Audit records: the people become their pseudonyms, comments go (the one change the
    append-only trail allows, requests_app.models.RequestEventQuerySet.pseudonymise)."""
    user_ids = set()
    for actor, on_behalf_of in events.values_list("actor_id", "on_behalf_of_id"):
        user_ids.update(uid for uid in (actor, on_behalf_of) if uid)
    placeholders = set(
        Placeholder.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True)
    )
    people = {uid: ctx.pseudonym(uid) for uid in sorted(user_ids - placeholders)}
    return events.pseudonymise(people=people)


# --- closed requests, their approvals, rating, entitlement, jobs and audit records -----------


def _held_entitlements():
    """Entitlements still held or being revoked."""
    return Entitlement.objects.exclude(state=EntitlementState.REVOKED)


def requests_past(cutoff: datetime):
    # A request behind an entitlement still held (or being revoked) stays as it is: it is
    # the reason the person holds the access, and recertification reads it.
    return ServiceRequest.objects.filter(
        anonymised_at__isnull=True, closed_at__lt=cutoff, state__in=CLOSED_STATES
    ).exclude(Exists(_held_entitlements().filter(request=OuterRef("pk"))))


def requests_anonymise(ids: list, ctx: Context) -> int:
    by_department = defaultdict(list)
    for pk, department_id in ServiceRequest.objects.filter(pk__in=ids).values_list(
        "pk", "beneficiary__department_id"
    ):
        by_department[department_id].append(pk)
    nobody = ctx.anonymous_user()
    _pseudonymise_events(RequestEvent.objects.filter(request_id__in=ids), ctx)
    for department_id, pks in by_department.items():
        # The beneficiary's department decides the figures per department: the anonymous
        # person of the same department takes the beneficiary's and the requester's place.
        person = ctx.anonymous_employee(department_id)
        ServiceRequest.objects.filter(pk__in=pks).update(
            requester=person.user,
            beneficiary=person,
            answers={},
            justification="",
            resolution_note="",
            assignee=None,
            anonymised_at=ctx.now,
        )
        Rating.objects.filter(request_id__in=pks).update(rated_by=person.user, comment="")
        Entitlement.objects.filter(request_id__in=pks).update(
            holder=person, revoke_reason="", review_note=""
        )
    Entitlement.objects.filter(request_id__in=ids, revoked_by__isnull=False).update(
        revoked_by=nobody
    )
    approvals = Approval.objects.filter(request_id__in=ids)
    approvals.update(comment="", routing_note="")
    for field in ("approver", "decided_by", "on_behalf_of"):
        approvals.filter(**{f"{field}__isnull": False}).update(**{field: nobody})
    Approval.escalated_from.through.objects.filter(approval__request_id__in=ids).delete()
    # A joint order (cart) names who placed it: that link goes with its requests.
    Submission.objects.filter(requests__pk__in=ids).update(requester=nobody)
    jobs = ProvisioningJob.objects.filter(request_id__in=ids)
    jobs.update(user_uid="", attributes={}, log="", last_error="")
    jobs.filter(finished_by__isnull=False).update(finished_by=nobody)
    return len(ids)


# --- the other kinds ----------------------------------------------------------------------


def rating_comments_past(cutoff: datetime):
    return Rating.objects.filter(rated_at__lt=cutoff).exclude(comment="")


def rating_comments_remove(ids: list, ctx: Context) -> int:
    return Rating.objects.filter(pk__in=ids).update(comment="")


def job_logs_past(cutoff: datetime):
    return ProvisioningJob.objects.filter(
        state__in=[JobState.SUCCEEDED, JobState.FAILED], finished_at__lt=cutoff
    ).exclude(log="", last_error="")


def job_logs_remove(ids: list, ctx: Context) -> int:
    return ProvisioningJob.objects.filter(pk__in=ids).update(log="", last_error="")


def audit_records_past(cutoff: datetime):
    # The trail of a request still under way, or behind an access still held, keeps its
    # people: decisions and recertification read it. It follows once the request is done.
    return (
        RequestEvent.objects.filter(created_at__lt=cutoff)
        .filter(_not_placeholder("actor") | _not_placeholder("on_behalf_of") | ~Q(comment=""))
        .exclude(request__state__in=OPEN_STATES)
        .exclude(Exists(_held_entitlements().filter(request=OuterRef("request_id"))))
    )


def audit_records_pseudonymise(ids: list, ctx: Context) -> int:
    return _pseudonymise_events(RequestEvent.objects.filter(pk__in=ids), ctx)


def inactive_people_past(cutoff: datetime):
    """People switched off in the portal or by the directory, not seen since the cutoff,
    with nothing under way: no open request for them and no access they still hold."""
    return (
        Employee.objects.filter(is_active=False, anonymised_at__isnull=True)
        .alias(seen=Coalesce("user__last_login", "user__date_joined"))
        .filter(seen__lt=cutoff)
        .exclude(Exists(Placeholder.objects.filter(user_id=OuterRef("user_id"))))
        .exclude(
            Exists(
                ServiceRequest.objects.filter(
                    Q(beneficiary=OuterRef("pk")) | Q(requester=OuterRef("user_id")),
                    state__in=OPEN_STATES,
                )
            )
        )
        .exclude(Exists(_held_entitlements().filter(holder=OuterRef("pk"))))
    )


def inactive_people_anonymise(ids: list, ctx: Context) -> int:
    """In place: the records keep pointing at the same (now nameless) person, so every
    figure and every count of people stays; department and cost centre stay too."""
    people = Employee.objects.filter(pk__in=ids)
    user_ids = list(people.values_list("user_id", flat=True))
    names = list(User.objects.filter(pk__in=user_ids).values_list("username", flat=True))
    lowered = [name.lower() for name in names]
    for model in (AccessLog, AccessAttempt, AccessFailureLog):
        model.objects.alias(name=Lower("username")).filter(name__in=lowered).delete()
    ApiToken.objects.filter(user_id__in=user_ids).delete()
    EncryptedTOTPDevice.objects.filter(user_id__in=user_ids).delete()
    StaticDevice.objects.filter(user_id__in=user_ids).delete()
    LanguagePreference.objects.filter(user_id__in=user_ids).delete()
    CartLine.objects.filter(Q(owner_id__in=user_ids) | Q(beneficiary_id__in=ids)).delete()
    Substitution.objects.filter(
        Q(principal_id__in=user_ids) | Q(substitute_id__in=user_ids)
    ).delete()
    User.groups.through.objects.filter(user_id__in=user_ids).delete()
    User.user_permissions.through.objects.filter(user_id__in=user_ids).delete()
    Employee.chargeable_cost_centres.through.objects.filter(employee_id__in=ids).delete()
    User.objects.filter(pk__in=user_ids).update(
        username=Concat(Value("anonym-p"), Cast("id", models.CharField())),
        first_name=_("Anonymised"),
        last_name="",
        email="",
        password=UNUSABLE_PASSWORD,
        is_active=False,
        is_staff=False,
        is_superuser=False,
    )
    people.update(
        personnel_number=Concat(Value("anonym-p"), Cast("id", models.CharField())),
        job_title="",
        directory_dn="",
        manager=None,
        anonymised_at=ctx.now,
    )
    return len(ids)


def login_records_past(cutoff: datetime):
    """Three tables of django-axes (logins, failures, lock-out counters); see _batches."""
    return [
        model.objects.filter(attempt_time__lt=cutoff)
        for model in (AccessLog, AccessFailureLog, AccessAttempt)
    ]


def mails_past(cutoff: datetime):
    # Failed or uncertain mails stay until an IT admin dealt with them (notifications).
    return OutgoingMail.objects.filter(state=MailState.SENT, sent_at__lt=cutoff)


def webhook_events_past(cutoff: datetime):
    return webhook_services.settled_events_before(cutoff)


def _delete(model):
    def delete(ids: list, ctx: Context) -> int:
        model.objects.filter(pk__in=ids).delete()
        return len(ids)

    return delete


def webhook_events_delete(ids: list, ctx: Context) -> int:
    return webhook_services.events_delete(ids)


POLICIES = (
    Policy(
        "requests",
        gettext_lazy("Closed requests: answers, justification, notes, the people"),
        "RETENTION_REQUESTS_DAYS",
        gettext_lazy("anonymised"),
        requests_past,
        requests_anonymise,
    ),
    Policy(
        "rating_comments",
        gettext_lazy("Rating comments"),
        "RETENTION_RATING_COMMENTS_DAYS",
        gettext_lazy("removed"),
        rating_comments_past,
        rating_comments_remove,
    ),
    Policy(
        "job_logs",
        gettext_lazy("Provisioning job logs and errors"),
        "RETENTION_JOB_LOGS_DAYS",
        gettext_lazy("removed"),
        job_logs_past,
        job_logs_remove,
    ),
    Policy(
        "audit_records",
        gettext_lazy("Audit trail: who did it, comments"),
        "RETENTION_AUDIT_PSEUDONYMISE_DAYS",
        gettext_lazy("pseudonymised"),
        audit_records_past,
        audit_records_pseudonymise,
    ),
    Policy(
        "inactive_people",
        gettext_lazy("Inactive people: names, identifiers, tokens, devices"),
        "RETENTION_INACTIVE_PEOPLE_DAYS",
        gettext_lazy("anonymised"),
        inactive_people_past,
        inactive_people_anonymise,
    ),
    Policy(
        "login_records",
        gettext_lazy("Login records and failed logins"),
        "RETENTION_LOGIN_RECORDS_DAYS",
        gettext_lazy("deleted"),
        login_records_past,
        None,  # one delete per table, see _batches_of
    ),
    Policy(
        "mails",
        gettext_lazy("Sent mails"),
        "MAIL_RETENTION_DAYS",
        gettext_lazy("deleted"),
        mails_past,
        _delete(OutgoingMail),
    ),
    Policy(
        "webhook_events",
        gettext_lazy("Webhook events, deliveries and attempts"),
        "WEBHOOKS_RETENTION_DAYS",
        gettext_lazy("deleted"),
        webhook_events_past,
        webhook_events_delete,
    ),
)


def _querysets(policy: Policy, now: datetime) -> list[models.QuerySet]:
    found = policy.candidates(policy.cutoff(now))
    return found if isinstance(found, list) else [found]


def _batches(queryset: models.QuerySet, size: int) -> Iterator[list]:
    """Primary keys in ascending chunks; never the whole table in memory."""
    last = None
    while True:
        chunk = queryset if last is None else queryset.filter(pk__gt=last)
        ids = list(chunk.order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def retention_due(*, now: datetime | None = None) -> dict[str, int]:
    """How many rows of each kind the run would change now (the dry run). Changes nothing."""
    now = now or timezone.now()
    return {p.kind: sum(qs.count() for qs in _querysets(p, now)) for p in POLICIES}


def retention_apply(*, now: datetime | None = None, progress=None) -> dict[str, int]:
    """Anonymise, pseudonymise or delete what is past its period, kind by kind, a batch a
    transaction. ``progress`` (runs.progress.Progress) counts the rows as they go."""
    ctx = Context(now or timezone.now())
    size = settings.RETENTION_BATCH_SIZE
    done: dict[str, int] = {}
    for policy in POLICIES:
        done[policy.kind] = 0
        for queryset in _querysets(policy, ctx.now):
            apply = policy.apply or _delete(queryset.model)
            for ids in _batches(queryset, size):
                with transaction.atomic():
                    changed = apply(ids, ctx)
                done[policy.kind] += changed
                if progress is not None:
                    progress.advance(changed)
    return done


def summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in counts.items())
