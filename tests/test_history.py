"""The history generator writes data the real workflow could have written."""

import datetime
import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Q
from django.utils import timezone

from catalogue.choices import ApproverKind, FulfilmentKind
from devtools import history
from provisioning.choices import ActionKind, Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningAction, ProvisioningJob
from requests_app.choices import EventKind, RequestState
from requests_app.models import Approval, FulfilmentTask, Rating, RequestEvent, ServiceRequest
from tests.factories import ApprovalPolicyStepFactory, CatalogueItemFactory

S = RequestState


@pytest.fixture
def catalogue(org):
    items = [CatalogueItemFactory(service_owner=org.service_desk) for _ in range(8)]
    for item in items[:4]:
        ApprovalPolicyStepFactory(item=item, position=1, approver_kind=ApproverKind.LINE_MANAGER)
    for item in items[4:6]:
        item.fulfilment_kind = FulfilmentKind.AUTOMATED
        item.save()
    return items


def test_history_follows_the_workflow(catalogue):
    result = history.generate(count=2000, months=12, seed=7)
    requests = ServiceRequest.objects.all()
    assert result.requests == requests.count() == 2000

    now = timezone.now()
    first = timezone.localdate() - datetime.timedelta(days=366)
    assert not requests.filter(submitted_at__gt=now).exists()
    assert not requests.filter(submitted_at__date__lt=first).exists()
    # Timestamps never run backwards.
    assert not requests.filter(
        Q(approved_at__lt=F("submitted_at"))
        | Q(fulfilment_started_at__lt=F("approved_at"))
        | Q(closed_at__lt=F("submitted_at"))
        | Q(closed_at__lt=F("fulfilment_started_at"))
    ).exists()
    # Each state has exactly the timestamps it implies.
    closed = [S.FULFILLED, S.FAILED, S.REJECTED, S.CANCELLED]
    assert not requests.filter(state__in=closed, closed_at__isnull=True).exists()
    assert not requests.exclude(state__in=closed).filter(closed_at__isnull=False).exists()
    assert not requests.filter(state=S.FULFILLED, approved_at__isnull=True).exists()
    states = set(requests.values_list("state", flat=True))
    assert {S.FULFILLED, S.REJECTED, S.CANCELLED, S.FAILED} <= states
    # Rejections only where someone could reject: items with an approval policy.
    assert not requests.filter(state=S.REJECTED, item__approval_steps__isnull=True).exists()

    # One approval per request of an item with a policy; none for the others.
    assert result.approvals == Approval.objects.count()
    assert not Approval.objects.filter(request__item__approval_steps__isnull=True).exists()
    with_policy = requests.filter(item__approval_steps__isnull=False).count()
    assert Approval.objects.count() == with_policy

    # The audit trail: created and submitted always; the last record reaches the state.
    assert result.events == RequestEvent.objects.count()
    per_request = requests.annotate(
        n_create=Count("events", filter=Q(events__kind=EventKind.CREATE)),
        n_submit=Count("events", filter=Q(events__kind=EventKind.SUBMIT)),
    )
    assert not per_request.exclude(n_create=1, n_submit=1).exists()
    for request in requests.filter(pk__in=requests.values("pk")[:200]):
        trail = list(request.events.order_by("created_at", "id"))
        assert trail[-1].to_state == request.state
        for earlier, later in itertools.pairwise(trail):
            assert later.from_state == earlier.to_state
    automated = requests.filter(item__fulfilment_kind=FulfilmentKind.AUTOMATED)
    assert not RequestEvent.objects.filter(request__in=automated, kind=EventKind.TAKE).exists()

    # Every fulfilled request has its entitlement; some were revoked since, never before grant.
    assert result.entitlements == Entitlement.objects.count()
    assert Entitlement.objects.count() == requests.filter(state=S.FULFILLED).count()
    revoked = Entitlement.objects.filter(state=EntitlementState.REVOKED)
    assert 0 < revoked.count() < Entitlement.objects.count() / 4
    assert not revoked.filter(revoked_at__lt=F("granted_at")).exists()
    assert not Entitlement.objects.filter(
        state=EntitlementState.ACTIVE, revoked_at__isnull=False
    ).exists()

    # What the controlling pages read: the automation flag, step counts and ratings.
    fulfilled = requests.filter(state=S.FULFILLED)
    assert set(fulfilled.filter(fulfilled_automatically=True).values_list("pk", flat=True)) == {
        *fulfilled.filter(item__fulfilment_kind=FulfilmentKind.AUTOMATED).values_list(
            "pk", flat=True
        )
    }
    assert not requests.exclude(state=S.FULFILLED).filter(fulfilled_automatically=True).exists()
    assert set(requests.values_list("approval_steps", flat=True)) == {0, 1}
    assert not requests.filter(approval_steps=1, item__approval_steps__isnull=True).exists()
    ratings = Rating.objects.all()
    assert result.ratings == ratings.count()
    assert fulfilled.count() / 5 < ratings.count() < fulfilled.count() / 2
    assert not ratings.exclude(request__state=S.FULFILLED).exists()
    assert not ratings.exclude(rated_by=F("request__requester")).exists()
    assert not ratings.filter(rated_at__lt=F("request__closed_at")).exists()
    assert set(ratings.values_list("score", flat=True)) <= {1, 2, 3, 4, 5}
    assert RequestEvent.objects.filter(kind=EventKind.RATE).count() == ratings.count()


def test_popularity_and_growth(catalogue):
    history.generate(count=3000, months=12, seed=3)
    per_item = sorted(
        ServiceRequest.objects.values("item").annotate(n=Count("id")).values_list("n", flat=True)
    )
    # Some items are never ordered (candidates to retire); the top item leads clearly.
    assert len(per_item) < len(catalogue)
    assert per_item[-1] > 2 * per_item[len(per_item) // 2]
    # Demand grows: the last six months have more orders than the first six.
    middle = timezone.now() - datetime.timedelta(days=182)
    older = ServiceRequest.objects.filter(submitted_at__lt=middle).count()
    newer = ServiceRequest.objects.filter(submitted_at__gte=middle).count()
    assert newer > older


def test_same_seed_same_history(catalogue):
    history.generate(count=300, months=6, seed=11)
    first = list(ServiceRequest.objects.order_by("pk").values_list("item_id", "beneficiary_id"))
    history.generate(count=300, months=6, seed=11)
    second = list(ServiceRequest.objects.order_by("pk").values_list("item_id", "beneficiary_id"))[
        300:
    ]
    assert first == second


@pytest.mark.django_db(transaction=True)
def test_requests_lie_in_the_order_they_were_placed(catalogue):
    """As in a live table: ids follow the submission, and the rows lie in the order of their
    ids after the deadlines' UPDATE of every row (CLUSTER, outside a transaction)."""
    from django.db import connection

    history.generate(count=2000, months=6, seed=5)
    submitted = list(ServiceRequest.objects.order_by("pk").values_list("submitted_at", flat=True))
    assert len(submitted) == 2000 and submitted == sorted(submitted)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY ctid) AS before "
            "FROM requests_app_servicerequest) AS laid WHERE id < before"
        )
        assert cursor.fetchone() == (0,)


@pytest.mark.parametrize("hour", [1, 12, 18])
def test_every_request_asked_for_is_written_at_any_time_of_day(catalogue, hour):
    """Before the working day is over, today's working hours lie partly ahead: none of the
    requests may be drawn there (they were dropped, and fewer than ``count`` written)."""
    monday = datetime.datetime(2026, 12, 7, hour, tzinfo=timezone.get_current_timezone())
    result = history.generate(count=400, months=2, seed=3, now=monday)
    assert result.requests == ServiceRequest.objects.count() == 400
    assert not ServiceRequest.objects.filter(submitted_at__gt=monday).exists()


def test_command_refuses_bad_arguments_and_an_empty_catalogue(db):
    with pytest.raises(CommandError, match="--count"):
        call_command("seed_history", "--count", "0")
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("seed_history", "--count", "10")


def test_licence_pools_are_not_oversubscribed(catalogue):
    """A pooled item is ordered about as often as its pool allows, however large the history."""
    pooled = catalogue[0]
    pooled.licence_pool_size = 50
    pooled.save()
    history.generate(count=3000, months=12, seed=5)
    active = Entitlement.objects.filter(item=pooled, state=EntitlementState.ACTIVE).count()
    # 1.1 × 50 orders expected, of which about 78 % end as active entitlements: about 43.
    assert 25 < active < 70


def test_history_has_the_deadlines_sla_would_set_and_some_holds(catalogue, settings):
    """Every approved request gets the due dates requests_app/sla.py computes (response in
    business hours, resolution in working days of the Land moved by its holds); a few waited
    on hold, with timeline events, and open holds mark their requests."""
    from requests_app import sla
    from requests_app.models import RequestHold

    settings.PORTAL_HOLIDAY_SUBDIVISION = "NW"
    for number, item in enumerate(catalogue):
        item.sla_target_days, item.response_target_hours = 2 + number, 1 + number
        item.save()
    result = history.generate(count=3000, months=12, seed=5)
    holds = RequestHold.objects.all()
    assert result.holds == holds.count() > 0
    assert holds.filter(ended_at__isnull=False).exists()
    assert RequestEvent.objects.filter(kind=EventKind.HOLD).count() == holds.count()
    resumed = RequestEvent.objects.filter(kind=EventKind.RESUME).count()
    assert resumed == holds.filter(ended_at__isnull=False).count()
    assert not holds.filter(ended_at__lt=F("started_at")).exists()
    on_hold = set(ServiceRequest.objects.exclude(hold_reason="").values_list("pk", flat=True))
    assert on_hold == set(holds.filter(ended_at__isnull=True).values_list("request_id", flat=True))
    approved = ServiceRequest.objects.filter(approved_at__isnull=False).prefetch_related("holds")
    checked = 0
    for req in approved:
        paused = sla.paused_seconds(req.holds.all(), since=req.approved_at)
        assert req.sla_paused_seconds == paused, req.pk
        snapshot = req.item_snapshot
        assert req.fulfilment_due_on == sla.due_on(
            req.approved_at, snapshot["sla_target_days"], None, paused
        ), req.pk
        assert req.response_due_at == sla.response_due_at(
            req.approved_at, snapshot["response_target_hours"]
        ), req.pk
        checked += 1
    assert checked > 1000


def test_history_leaves_jobs_and_tasks_as_the_portal_does(catalogue, org):
    """Automated fulfilments leave a grant job per directory action, in the request's state;
    a revoked entitlement its reverse job (automated) or the task to remove it by hand."""
    # Twenty items, so that the popular ones are of both kinds.
    items = catalogue + [CatalogueItemFactory(service_owner=org.service_desk) for _ in range(12)]
    for item in items:
        item.fulfilment_kind = FulfilmentKind.AUTOMATED if item.pk % 2 else FulfilmentKind.MANUAL
        item.save()
    automated = [item for item in items if item.pk % 2]
    configured = automated[0]
    ProvisioningAction.objects.create(
        item=configured, position=1, kind=ActionKind.ADD_TO_GROUP, target="cn=vpn,ou=groups"
    )
    ProvisioningAction.objects.create(
        item=configured, position=2, kind=ActionKind.SET_ATTRIBUTES, attributes="title = x"
    )
    result = history.generate(count=3000, months=12, seed=5)
    jobs = ProvisioningJob.objects.all()
    assert result.jobs == jobs.count() > 0
    reached = ServiceRequest.objects.filter(
        item__in=automated,
        fulfilment_started_at__isnull=False,
        state__in=[S.FULFILLED, S.FAILED, S.IN_FULFILMENT],
    )
    # The configured actions for one item, a group named after the item for the others.
    assert jobs.filter(direction=Direction.GRANT).count() == (
        2 * reached.filter(item=configured).count() + reached.exclude(item=configured).count()
    )
    for state, job_state in {S.FULFILLED: JobState.SUCCEEDED, S.FAILED: JobState.FAILED}.items():
        grants = jobs.filter(direction=Direction.GRANT, request__state=state)
        assert grants.exists()
        assert not grants.exclude(state=job_state).exists()
    for item in automated[1:]:
        assert set(jobs.filter(request__item=item).values_list("target_dn", flat=True)) <= {
            f"cn={item.slug},ou=groups,dc=example,dc=org"
        }
    first = jobs.filter(request__item=configured, position=1)
    assert set(first.values_list("target_dn", flat=True)) == {"cn=vpn,ou=groups"}
    assert not jobs.exclude(user_uid=F("request__beneficiary__personnel_number")).exists()
    assert not jobs.filter(started_at__lt=F("created_at")).exists()
    # Revoked automated entitlements: the reverse of the membership, none of the attributes.
    revoked = Entitlement.objects.filter(state=EntitlementState.REVOKED)
    reverse = jobs.filter(direction=Direction.REVOKE)
    assert reverse.count() == revoked.filter(item__in=automated).count() > 0
    assert set(reverse.values_list("kind", flat=True)) == {ActionKind.REMOVE_FROM_GROUP}
    assert not reverse.exclude(entitlement__state=EntitlementState.REVOKED).exists()
    # Revoked manual entitlements: a task each, done unless revoked in the last two days.
    tasks = FulfilmentTask.objects.all()
    assert result.tasks == tasks.count() == revoked.exclude(item__in=automated).count() > 0
    assert not tasks.filter(state=FulfilmentTask.State.DONE, done_at__gt=timezone.now()).exists()
    assert not tasks.exclude(fulfilment_group=F("request__item__service_owner")).exists()
