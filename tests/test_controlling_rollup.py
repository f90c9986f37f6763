"""Controlling roll-ups: the figures read from the monthly roll-up equal the raw aggregate, to
the cent and to the count, before and after back-dated changes.

The oracle below recomputes every report in Python from the rows themselves (months in
Europe/Berlin), independently of the SQL. The data sit on month edges on purpose: fulfilled at
23:30 on the last day (UTC: still that day) and at 00:00:00 on the first (UTC: the day before),
across both daylight-saving changes, entitlements revoked at a month's first instant, one
revoked without a date (not counted), and requests in the open month.
"""

from __future__ import annotations

import datetime
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalogue.models import CostCentre
from metrics.controlling import rollup, selectors
from metrics.controlling.rollup import ALL, RELATIVE_ERROR, Scope
from metrics.models import MonthlyDurations, MonthlyFigures, RollupMonth
from metrics.tasks import refresh_controlling_rollups
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import RequestState
from requests_app.models import Rating, ServiceRequest
from tests.factories import (
    CatalogueItemFactory,
    CategoryFactory,
    DepartmentFactory,
    EmployeeFactory,
)

BERLIN = ZoneInfo("Europe/Berlin")
FIRST = datetime.date(2025, 1, 1)
D = Decimal


def at(year, month, day, hour=12, minute=0, second=0):
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def local_month(value: datetime.datetime) -> datetime.date:
    return value.astimezone(BERLIN).date().replace(day=1)


class World:
    """Three people in two departments, three cost centres, three items in two categories."""

    def __init__(self, org):
        self.org = org
        self.ks2 = CostCentre.objects.create(code="KS2000", name="Ordnungsamt")
        self.ks3 = CostCentre.objects.create(code="KS3000", name="Schulamt")
        self.fb20 = DepartmentFactory(code="FB20", cost_centre=self.ks2)
        self.carol = EmployeeFactory(department=self.fb20, user__username="carol")
        self.network = CategoryFactory(slug="netz", name="Netz")
        self.hardware = CategoryFactory(slug="hardware", name="Hardware")
        self.vpn = CatalogueItemFactory(name="VPN", category=self.network)
        self.mail = CatalogueItemFactory(name="Postfach", category=self.network)
        self.notebook = CatalogueItemFactory(name="Notebook", category=self.hardware)
        self.people = [org.alice, org.bob, self.carol]
        self.cost_centres = [org.cost_centre, self.ks2, self.ks3]
        self.items = [self.vpn, self.mail, self.notebook]
        self.now = timezone.now()
        self.open_start = rollup.month_bounds(rollup.open_month(self.now))[0]
        self._build()

    def request(self, n, *, submitted, closed=None, state=RequestState.FULFILLED, rng):
        person = self.people[n % 3]
        item = self.items[n % 3 if n % 7 else 1]
        approved = submitted + datetime.timedelta(hours=rng.randint(0, 90))
        if closed is not None and approved > closed:
            approved = submitted
        return ServiceRequest(
            requester=person.user,
            beneficiary=person,
            item=item,
            item_version=item.version,
            item_snapshot=item.snapshot(),
            answers={},
            cost_centre=self.cost_centres[(n // 3) % 3],
            price_once=D(rng.choice(["0.00", "9.99", "12.40", "899.99", "0.01"])),
            price_monthly=D(rng.choice(["0.00", "2.50", "3.10", "0.33"])),
            fulfilment_group=item.service_owner,
            state=state,
            created_at=submitted,
            submitted_at=submitted,
            approved_at=approved if state != RequestState.SUBMITTED else None,
            closed_at=closed,
            approval_steps=n % 2,
            fulfilled_automatically=n % 5 == 0,
        )

    def _build(self):
        rng = random.Random(7)
        edges = [
            at(2025, 3, 31, 23, 30),  # last evening of March: 21:30 UTC, still March
            at(2025, 4, 1, 0, 0, 0),  # first instant of April: 22:00 UTC on 31 March
            at(2025, 3, 30, 3, 30),  # the morning clocks went forward
            at(2025, 10, 26, 2, 30),  # the night clocks went back
            at(2025, 11, 1, 0, 0, 0),
            at(2025, 10, 31, 23, 59, 59),
            at(2025, 12, 31, 23, 30),
            at(2026, 1, 1, 0, 0, 0),
        ]
        rows = []
        for n in range(90):
            if n < len(edges):
                closed = edges[n]
                submitted = closed - datetime.timedelta(days=rng.randint(0, 20), minutes=n)
            else:
                submitted = at(2025, 1, 2) + datetime.timedelta(
                    minutes=rng.randint(0, 60 * 24 * 500)
                )
                closed = submitted + datetime.timedelta(minutes=rng.randint(1, 60 * 24 * 40))
            state = RequestState.FULFILLED
            if n % 11 == 0:
                state = RequestState.REJECTED
            if closed >= self.now:
                closed, state = None, RequestState.IN_FULFILMENT
            rows.append(self.request(n, submitted=submitted, closed=closed, state=state, rng=rng))
        # The open month: submitted and fulfilled in it, one still open.
        middle = self.open_start + (self.now - self.open_start) / 2
        rows.append(self.request(90, submitted=self.open_start, closed=middle, rng=rng))
        rows.append(self.request(91, submitted=middle, state=RequestState.SUBMITTED, rng=rng))
        self.requests = ServiceRequest.objects.bulk_create(rows)
        self.middle = middle
        fulfilled = [r for r in self.requests if r.state == RequestState.FULFILLED]
        entitlements = []
        for k, r in enumerate(fulfilled):
            revoked_at, state = None, EntitlementState.ACTIVE
            if k % 4 == 1:  # revoked at the first instant of a month
                revoked_at = rollup.month_bounds(rollup.add_months(local_month(r.closed_at), 2))[0]
            elif k % 4 == 2:
                revoked_at = r.closed_at + datetime.timedelta(days=rng.randint(1, 200))
            elif k % 9 == 3:  # revoked, no date: counted nowhere
                state = EntitlementState.REVOKED
            if revoked_at is not None:
                state = EntitlementState.REVOKED
                if revoked_at >= self.now:
                    revoked_at = middle  # revoked in the open month
            entitlements.append(
                Entitlement(
                    holder=r.beneficiary,
                    item=r.item,
                    request=r,
                    state=state,
                    granted_at=r.closed_at,
                    revoked_at=revoked_at,
                )
            )
        Entitlement.objects.bulk_create(entitlements)
        Rating.objects.bulk_create(
            [
                Rating(
                    request=r,
                    score=1 + k % 5,
                    comment="Schnell erledigt" if k % 4 else "",
                    rated_at=r.closed_at,
                    rated_by=r.requester,
                )
                for k, r in enumerate(fulfilled)
                if k % 3
            ]
        )


@pytest.fixture
def world(org):
    return World(org)


# --- the oracle: every report recomputed in Python from the rows ------------------------------


def in_scope(request, scope: Scope) -> bool:
    return (
        (scope.department_id is None or request.beneficiary.department_id == scope.department_id)
        and (scope.cost_centre_id is None or request.cost_centre_id == scope.cost_centre_id)
        and (scope.category_id is None or request.item.category_id == scope.category_id)
        and (scope.item_id is None or request.item_id == scope.item_id)
    )


def months_of_period(first, last, now):
    return [m for m in rollup.month_range(first, last) if rollup.month_bounds(m)[0] <= now]


def oracle(scope: Scope, first, last, now):
    requests = [
        r
        for r in ServiceRequest.objects.select_related("beneficiary", "item", "cost_centre")
        if in_scope(r, scope)
    ]
    months = months_of_period(first, last, now)
    costs = defaultdict(lambda: [0, D("0.00"), 0, D("0.00")])
    usage = defaultdict(lambda: [0, 0])
    lead = defaultdict(lambda: [0, 0, 0])
    ratings = defaultdict(lambda: [0, 0, [0] * 5, 0])
    durations = defaultdict(lambda: defaultdict(list))
    scores = {x.request_id: x.score for x in Rating.objects.all()}
    commented = set(Rating.objects.exclude(comment="").values_list("request_id", flat=True))
    for r in requests:
        if r.submitted_at and local_month(r.submitted_at) in months:
            usage[(local_month(r.submitted_at), r.item.name)][0] += 1
        if r.state != RequestState.FULFILLED:
            continue
        if local_month(r.closed_at) in months:
            key = (local_month(r.closed_at), r.cost_centre.code)
            costs[key][0] += 1
            costs[key][1] += r.price_once
            for name in (r.item.name, None):
                lead[name][0] += 1
                lead[name][1] += r.approval_steps > 0
                lead[name][2] += r.fulfilled_automatically
                if r.pk in scores:
                    ratings[name][0] += 1
                    ratings[name][1] += scores[r.pk]
                    ratings[name][2][scores[r.pk] - 1] += 1
                    ratings[name][3] += r.pk in commented
                if r.approval_steps > 0:
                    durations[name][rollup.APPROVAL].append(r.approved_at - r.submitted_at)
                durations[name][rollup.FULFILMENT].append(r.closed_at - r.approved_at)
                durations[name][rollup.TOTAL].append(r.closed_at - r.submitted_at)
    by_request = {r.pk: r for r in requests}
    for e in Entitlement.objects.all():
        r = by_request.get(e.request_id)
        if r is None or r.state != RequestState.FULFILLED:
            continue
        if e.revoked_at is None and e.state == EntitlementState.REVOKED:
            continue
        for month in months:
            starts, ends = rollup.month_bounds(month)
            granted_before = e.granted_at < min(ends, now)
            if granted_before and (e.revoked_at is None or e.revoked_at > starts):
                costs[(month, r.cost_centre.code)][2] += 1
                costs[(month, r.cost_centre.code)][3] += r.price_monthly
            if granted_before and (e.revoked_at is None or e.revoked_at >= ends):
                usage[(month, r.item.name)][1] += 1
    return costs, usage, lead, ratings, durations


def percentile_cont(values, fraction):
    values = sorted(values)
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = int(position)
    if low + 1 >= len(values):
        return values[low]
    return values[low] + (values[low + 1] - values[low]) * (position - low)


def assert_reports_equal_raw(scope: Scope, first=FIRST, last=None):
    """Every report (costs, usage, lead-time counts and percentiles, satisfaction) for the
    period equals the oracle: amounts to the cent, counts exactly."""
    now = timezone.now()
    last = last or rollup.open_month(now)
    costs, usage, lead, ratings, durations = oracle(scope, first, last, now)

    got_costs = {
        (row.month, row.cost_centre_code): [row.fulfilled, row.once, row.entitlements, row.monthly]
        for row in selectors.costs_per_cost_centre(scope, first=first, last=last)
    }
    assert got_costs == {k: v for k, v in costs.items() if v[0] or v[2]}
    assert all(amount.as_tuple().exponent == -2 for v in got_costs.values() for amount in v[1::2])

    got_usage = {
        (row.month, row.service): [row.orders, row.active]
        for row in selectors.usage_per_service(scope, first=first, last=last)
    }
    assert got_usage == {k: v for k, v in usage.items() if v[0] or v[1]}

    rows = selectors.lead_times_per_service(scope, first=first, last=last)
    assert {
        (row.service or None): [row.fulfilled, row.with_approval, row.automated] for row in rows
    } == dict(lead)
    for row in rows:
        name = row.service or None
        for measure, p50, p90 in (
            (rollup.APPROVAL, row.approval_p50, row.approval_p90),
            (rollup.FULFILMENT, row.fulfilment_p50, row.fulfilment_p90),
            (rollup.TOTAL, row.total_p50, row.total_p90),
        ):
            for got, fraction in ((p50, 0.5), (p90, 0.9)):
                exact = percentile_cont(durations[name][measure], fraction)
                if exact is None:
                    assert got is None
                else:
                    tolerance = abs(exact) * RELATIVE_ERROR + datetime.timedelta(microseconds=1)
                    assert abs(got - exact) <= tolerance, (name, measure, fraction)

    got_ratings = {
        (row.service or None): [row.rated, row.average, list(row.distribution), row.commented]
        for row in selectors.satisfaction_per_service(scope, first=first, last=last)
    }
    expected = {
        name: [
            rated,
            (D(total) / rated).quantize(D("0.01"), rounding=ROUND_HALF_UP) if rated else None,
            distribution,
            commented,
        ]
        for name, (rated, total, distribution, commented) in ratings.items()
    }
    expected.update({name: [0, None, [0] * 5, 0] for name in lead if name not in ratings})
    assert got_ratings == expected


def scopes(world):
    return [
        ALL,
        Scope(department_id=world.fb20.pk),
        Scope(cost_centre_id=world.ks2.pk),
        Scope(category_id=world.network.pk),
        Scope(department_id=world.org.department.pk, cost_centre_id=world.ks3.pk),
        Scope(item_id=world.vpn.pk),
    ]


def dirty_months():
    return sorted(RollupMonth.objects.filter(dirty=True).values_list("month", flat=True))


def clean_rollup(now=None):
    result = rollup.refresh(now=now)
    assert dirty_months() == []
    return result


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_live_figures_equal_raw_without_any_rollup(world):
    assert not RollupMonth.objects.filter(dirty=False).exists()  # inserting marked them
    for scope in scopes(world):
        assert_reports_equal_raw(scope)


@pytest.mark.django_db
def test_rolled_up_figures_equal_raw(world):
    now = timezone.now()
    result = clean_rollup(now)
    closed = rollup.month_range(FIRST, rollup.add_months(rollup.open_month(world.now), -1))
    assert result["computed"] == [f"{m:%Y-%m}" for m in closed]
    assert MonthlyFigures.objects.exists() and MonthlyDurations.objects.exists()
    plan = rollup.plan(FIRST, rollup.open_month(world.now))
    open_month = rollup.open_month(world.now)
    cut = rollup.open_month_cut(now)
    if cut is None:  # the month's first hour, or its first minutes after
        assert plan.rolled == closed and plan.live == [open_month] and plan.tail is None
    else:  # the open month up to an hour from the roll-up, the rest live
        assert plan.rolled == [*closed, open_month] and plan.live == []
        assert plan.tail == (open_month, cut) and result["open_month_through"] == cut.isoformat()
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    # A single month on both sides of the March/April edge, and a period of closed months.
    for month in (datetime.date(2025, 3, 1), datetime.date(2025, 4, 1)):
        assert_reports_equal_raw(ALL, first=month, last=month)
    assert_reports_equal_raw(ALL, first=datetime.date(2025, 10, 1), last=datetime.date(2026, 1, 1))


def summed(plan, scope: Scope, figures: frozenset[str], computed: frozenset[str] | None):
    """``figures`` summed per month and key from the figures SQL that computes ``computed``
    (None: all); keys whose sums are all zero left out."""
    sql, params = rollup.figures_sql(plan, scope, computed)
    names = sorted(figures)
    sums = ", ".join(f"SUM(f.{name})" for name in names)
    with connection.cursor() as cursor:
        query = f"SELECT f.month, f.item_id, f.department_id, f.cost_centre_id, {sums} FROM ({sql}) AS f GROUP BY 1, 2, 3, 4"  # noqa: S608, E501 - the roll-up's SQL and figure names
        cursor.execute(query, params)
        return {row[:4]: row[4:] for row in cursor.fetchall() if any(row[4:])}


@pytest.mark.django_db
def test_pages_figures_equal_the_full_computation(world):
    """Each page has only its figures computed live (selectors.*_FIGURES); they equal those
    of the full computation, with every month live and with the roll-up before the open
    month, in every scope."""
    pages = [
        selectors.COST_FIGURES,
        selectors.USAGE_FIGURES,
        selectors.DEMAND_FIGURES,
        selectors.LEAD_TIME_FIGURES,
        selectors.SATISFACTION_FIGURES,
    ]
    for rolled_up in (False, True):
        if rolled_up:
            clean_rollup()
        plan = rollup.plan(FIRST, rollup.open_month(world.now))
        assert bool(plan.rolled) is rolled_up and (plan.live or plan.tail)
        for scope in scopes(world):
            for figures in pages:
                full = summed(plan, scope, figures, None)
                assert summed(plan, scope, figures, figures) == full
                assert full or scope.item_id  # the data reach every page's figures
    with pytest.raises(ValueError):
        rollup.figures_sql(plan, ALL, frozenset())
    with pytest.raises(ValueError):
        rollup.figures_sql(plan, ALL, frozenset({"orders", "no such figure"}))


@pytest.mark.django_db
def test_kept_lead_time_histograms_follow_the_rollup(world):
    """The closed months' histograms are summed once per plan and kept; a month marked dirty
    or recomputed changes the plan's stamp, so the kept sum is not read for it again."""
    clean_rollup()
    period = {"first": FIRST, "last": rollup.open_month(world.now)}
    selectors._ROLLED_HISTOGRAMS.clear()
    first_view = selectors.lead_times_per_service(ALL, **period)
    kept = set(selectors._ROLLED_HISTOGRAMS)
    # The closed months, and apart from them the open month up to an hour.
    assert len(kept) == (1 if rollup.open_month_cut() is None else 2)
    with CaptureQueriesContext(connection) as ctx:
        assert selectors.lead_times_per_service(ALL, **period) == first_view
    assert not any("metrics_monthlydurations" in q["sql"] for q in ctx.captured_queries)
    # Every fulfilment of a closed month a day later: the month is dirty, then recomputed.
    month = datetime.date(2025, 6, 1)
    starts, ends = rollup.month_bounds(month)
    ServiceRequest.objects.filter(
        state=RequestState.FULFILLED, closed_at__gte=starts, closed_at__lt=ends
    ).update(closed_at=F("closed_at") + datetime.timedelta(days=1))
    assert month in dirty_months()
    assert_reports_equal_raw(ALL)
    dirty_key = set(selectors._ROLLED_HISTOGRAMS) - kept
    assert len(dirty_key) == 1
    clean_rollup()
    assert_reports_equal_raw(ALL)
    assert len(set(selectors._ROLLED_HISTOGRAMS) - kept - dirty_key) == 1


@pytest.mark.django_db
def test_kept_figures_follow_the_rollup(world):
    """The rolled months' figures are summed by what each page groups by once per plan and
    kept; a view then reads no roll-up row. A month marked dirty or recomputed changes the
    plan's stamp, and a service moved to another category (no roll-up dimension, marks
    nothing) is counted in its new category at once."""
    clean_rollup()
    rollup._KEPT_SUMS.clear()
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    kept = set(rollup._KEPT_SUMS)
    assert kept
    with CaptureQueriesContext(connection) as ctx:
        for scope in scopes(world):
            assert_reports_equal_raw(scope)
    assert not any("metrics_monthlyfigures" in q["sql"] for q in ctx.captured_queries)
    assert set(rollup._KEPT_SUMS) == kept
    world.vpn.category = world.hardware
    world.vpn.save()
    assert dirty_months() == []
    for scope in (Scope(category_id=world.network.pk), Scope(category_id=world.hardware.pk)):
        assert_reports_equal_raw(scope)
    assert set(rollup._KEPT_SUMS) == kept
    # A back-dated price: its month is read live until recomputed, then kept anew.
    old = ServiceRequest.objects.filter(
        state=RequestState.FULFILLED, closed_at__lt=at(2025, 9, 1)
    ).first()
    ServiceRequest.objects.filter(pk=old.pk).update(price_once=D("1234.56"))
    assert local_month(old.closed_at) in dirty_months()
    assert_reports_equal_raw(ALL)
    clean_rollup()
    assert_reports_equal_raw(ALL)
    assert_reports_equal_raw(Scope(category_id=world.hardware.pk))
    # Closed months only, nothing of them in scope: no row kept, nothing live.
    unordered = Scope(item_id=CatalogueItemFactory(name="Fax").pk)
    closed = {"first": FIRST, "last": rollup.add_months(rollup.open_month(world.now), -1)}
    assert not rollup.plan(**closed).live
    assert selectors.costs_per_cost_centre(unordered, **closed) == []
    assert selectors.lead_times_per_service(unordered, **closed) == []
    assert selectors.demand_history(unordered, **closed) == []
    with pytest.raises(ValueError):
        rollup.figures_sql(rollup.plan(FIRST, world.now.date()), ALL, by=("month", "score"))


@pytest.mark.django_db
def test_nothing_rolled_up_twice(world):
    clean_rollup()
    assert rollup.refresh()["computed"] == []


@pytest.mark.django_db
def test_late_rating_marks_its_month_and_is_counted(world):
    clean_rollup()
    unrated = next(
        r
        for r in ServiceRequest.objects.filter(state=RequestState.FULFILLED, rating__isnull=True)
        if r.closed_at < world.open_start
    )
    Rating.objects.create(request=unrated, score=5, rated_at=world.now, rated_by=unrated.requester)
    assert dirty_months() == [local_month(unrated.closed_at)]
    assert_reports_equal_raw(ALL)  # the dirty month is read live meanwhile
    clean_rollup()
    assert_reports_equal_raw(ALL)
    rating = Rating.objects.get(request=unrated)
    rating.comment = "Danke"
    rating.save()
    assert dirty_months() == [local_month(unrated.closed_at)]  # now with a comment
    assert_reports_equal_raw(ALL)
    clean_rollup()
    assert_reports_equal_raw(ALL)
    rating.comment = "Vielen Dank"
    rating.save()
    assert dirty_months() == []  # another comment instead changes no figure
    rating.delete()
    assert dirty_months() == [local_month(unrated.closed_at)]
    clean_rollup()
    assert_reports_equal_raw(ALL)


@pytest.mark.django_db
def test_backdated_revocation_and_grant(world):
    clean_rollup()
    entitlement = (
        Entitlement.objects.filter(revoked_at__isnull=True, state=EntitlementState.ACTIVE)
        .filter(granted_at__lt=at(2025, 5, 1))
        .first()
    )
    entitlement.state = EntitlementState.REVOKED
    entitlement.revoked_at = at(2025, 6, 1, 0, 0, 0)  # back-dated to June's first instant
    entitlement.save()
    assert dirty_months()[0] == datetime.date(2025, 6, 1)
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    clean_rollup()
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    Entitlement.objects.filter(pk=entitlement.pk).update(granted_at=at(2025, 2, 28, 23, 30))
    assert dirty_months()
    clean_rollup()
    assert_reports_equal_raw(ALL)


@pytest.mark.django_db
def test_backdated_request_changes_and_a_mover(world):
    clean_rollup()
    old = ServiceRequest.objects.filter(
        state=RequestState.FULFILLED, closed_at__lt=at(2025, 9, 1)
    ).first()
    ServiceRequest.objects.filter(pk=old.pk).update(price_once=D("1234.56"))
    assert local_month(old.closed_at) in dirty_months()
    clean_rollup()
    assert_reports_equal_raw(ALL)
    # Carol moves to Alice's department: her history counts there now.
    world.carol.department = world.org.department
    world.carol.save()
    assert len(dirty_months()) > 1
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    clean_rollup()
    for scope in scopes(world):
        assert_reports_equal_raw(scope)


@pytest.mark.django_db
def test_work_in_the_open_month_marks_nothing(world):
    clean_rollup()
    # Now, not the world's start: the triggers compare with the hour of their clock.
    now = timezone.now()
    new = world.request(200, submitted=now, closed=now, rng=random.Random(1))
    new.save()
    Entitlement.objects.create(holder=new.beneficiary, item=new.item, request=new)
    old = Entitlement.objects.filter(revoked_at__isnull=True, state=EntitlementState.ACTIVE)
    old.filter(pk=old.first().pk).update(state=EntitlementState.REVOKED, revoked_at=now)
    Rating.objects.create(request=new, score=2, rated_by=new.requester)
    assert dirty_months() == []
    assert_reports_equal_raw(ALL)


@pytest.mark.django_db
def test_a_month_changed_while_it_is_computed_stays_dirty(world, monkeypatch):
    month = datetime.date(2025, 3, 1)
    compute = rollup.live_durations_sql

    def change_meanwhile(*args, **kwargs):
        # What a trigger does when a change commits while the month is being computed.
        RollupMonth.objects.filter(month=month).update(version=F("version") + 1, dirty=True)
        return compute(*args, **kwargs)

    monkeypatch.setattr(rollup, "live_durations_sql", change_meanwhile)
    assert rollup.recompute_month(month) is False
    assert RollupMonth.objects.get(month=month).dirty
    monkeypatch.setattr(rollup, "live_durations_sql", compute)
    assert rollup.recompute_month(month) is True
    assert not RollupMonth.objects.get(month=month).dirty


@pytest.mark.django_db
def test_beat_task_refreshes(world, settings):
    settings.CONTROLLING_ROLLUP_BUDGET_SECONDS = 60
    result = refresh_controlling_rollups.apply().get()
    assert result["left"] == 0 and result["computed"]
    assert dirty_months() == []
    assert settings.CELERY_BEAT_SCHEDULE["controlling-rollups"]["task"] == (
        "metrics.tasks.refresh_controlling_rollups"
    )


@pytest.mark.django_db
def test_percentile_from_histogram_matches_percentile_cont():
    values = [60.0, 300.0, 14400.0, 86400.0, 172800.0, 345600.0, 864000.0]
    buckets: dict[int, int] = defaultdict(int)
    for value in values:
        with connection.cursor() as cursor:
            sql = f"SELECT {rollup.bucket_sql('v')} FROM (SELECT %s::float8 AS v) x"  # noqa: S608
            cursor.execute(sql, [value])
            buckets[cursor.fetchone()[0]] += 1
    histogram = sorted(buckets.items())
    for fraction in (0.5, 0.9):
        exact = percentile_cont(values, fraction)
        assert abs(rollup.percentile(histogram, fraction) - exact) <= exact * RELATIVE_ERROR
    assert rollup.percentile([], 0.5) is None
    assert rollup.bucket_seconds(0) == 0


# --- the open month rolled up to the start of an hour -----------------------------------------


def cut_offs_of_the_open_month(world, now=None):
    """Cut-offs the open month was rolled up to as ``now`` (default: the clock) went by: the
    starts of its days after the first, and the start of the latest hour (may be none)."""
    latest = rollup.open_month_cut(now)
    days, day = [], world.open_start
    while latest is not None:
        day = datetime.datetime.combine(
            day.astimezone(BERLIN).date() + datetime.timedelta(days=1), datetime.time(), BERLIN
        )
        if day > latest:
            break
        days.append(day)
    if latest is not None and latest not in days:
        days.append(latest)
    return [day.astimezone(datetime.UTC) for day in days]  # as the roll-up reports them


def at_cut_offs(world, days):
    """Requests fulfilled, entitlements granted and revoked, ratings given at the last instant
    before and the first instant of each cut-off of the open month."""
    rng = random.Random(3)
    micro = datetime.timedelta(microseconds=1)
    rows = []
    for k, day in enumerate(days):
        later = min(day + datetime.timedelta(hours=7), world.now - datetime.timedelta(minutes=1))
        for n, closed in enumerate((day - micro, day, later)):
            submitted = max(world.open_start, closed - datetime.timedelta(hours=30))
            rows.append(world.request(300 + 3 * k + n, submitted=submitted, closed=closed, rng=rng))
    rows = ServiceRequest.objects.bulk_create(rows)
    entitlements = []
    for k, r in enumerate(rows):
        revoked_at = None
        if k % 3 == 0:  # granted before a day, revoked at its first instant
            revoked_at = r.closed_at + micro
        elif k % 3 == 1 and k + 1 < len(rows):  # revoked at the next edge
            revoked_at = rows[k + 1].closed_at
        entitlements.append(
            Entitlement(
                holder=r.beneficiary,
                item=r.item,
                request=r,
                state=EntitlementState.REVOKED if revoked_at else EntitlementState.ACTIVE,
                granted_at=r.closed_at,
                revoked_at=revoked_at,
            )
        )
    Entitlement.objects.bulk_create(entitlements)
    Rating.objects.bulk_create(
        [Rating(request=r, score=1 + k % 5, rated_by=r.requester) for k, r in enumerate(rows)]
    )
    return rows


@pytest.mark.django_db
def test_open_month_rolled_up_to_each_cut_off_equals_raw(world):
    """The open month from its roll-up up to the start of an hour plus the rest live equals
    the raw aggregate, for every day of the month and the latest hour as the cut-off (an
    earlier one is what the pages read until the beat task moves it), at day and month edges."""
    now = timezone.now()  # the roll-up's clock: the cut-offs stay put if an hour ends meanwhile
    days = cut_offs_of_the_open_month(world, now)
    if not days:
        pytest.skip("the open month has no finished hour yet")
    at_cut_offs(world, days)
    clean_rollup(now)
    month = rollup.open_month(world.now)
    row = RollupMonth.objects.get(month=month)
    assert row.through == days[-1] and not row.dirty
    assert MonthlyFigures.objects.filter(month=month).exists()
    for day in reversed(days):
        assert rollup.recompute_month(month, through=day)
        plan = rollup.plan(FIRST, month)
        assert plan.tail == (month, day) and month in plan.rolled and month not in plan.live
        for scope in scopes(world):
            assert_reports_equal_raw(scope)
        assert_reports_equal_raw(ALL, first=month, last=month)
    # The month with the one before, from the roll-up and live: across the month edge.
    assert_reports_equal_raw(ALL, first=rollup.add_months(month, -1), last=month)
    moved = rollup.refresh(now=now)["open_month_through"]  # from the first cut-off to the last
    assert moved == (days[-1].isoformat() if len(days) > 1 else None)


@pytest.mark.django_db
def test_open_month_changes_before_this_hour_mark_it(world):
    now = timezone.now()
    days = cut_offs_of_the_open_month(world, now)
    if not days:
        pytest.skip("the open month has no finished hour yet")
    rows = at_cut_offs(world, days)
    clean_rollup(now)
    month = rollup.open_month(world.now)
    # A late rating of a fulfilment of the hour before: the open month is read live meanwhile.
    earlier = rows[-3]  # fulfilled at the last instant before the latest cut-off
    Rating.objects.filter(request=earlier).delete()
    assert dirty_months() == [month]
    assert rollup.plan(FIRST, month).tail is None
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    result = clean_rollup(now)
    assert result["open_month_through"] == days[-1].isoformat() and result["computed"] == []
    Rating.objects.create(request=earlier, score=4, rated_by=earlier.requester)
    assert dirty_months() == [month]
    clean_rollup(now)
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    # A revocation back-dated to the open month's first instant, of an entitlement granted
    # before: not charged in the open month at all, active at the end of the last one.
    old = Entitlement.objects.filter(
        state=EntitlementState.ACTIVE, granted_at__lt=world.open_start
    ).first()
    Entitlement.objects.filter(pk=old.pk).update(
        state=EntitlementState.REVOKED, revoked_at=world.open_start
    )
    assert dirty_months() == [month]
    assert_reports_equal_raw(ALL)
    clean_rollup(now)
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    # A correction of a price of a request fulfilled in the open month before this hour.
    ServiceRequest.objects.filter(pk=rows[0].pk).update(
        price_once=D("77.70"), price_monthly=D("1.11")
    )
    assert dirty_months() == [month]
    clean_rollup(now)
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    # This hour's work marks nothing: ordered, fulfilled, granted, rated and revoked now.
    new = world.request(400, submitted=timezone.now(), closed=timezone.now(), rng=random.Random(2))
    new.save()
    Entitlement.objects.create(holder=new.beneficiary, item=new.item, request=new)
    Rating.objects.create(request=new, score=3, rated_by=new.requester)
    earlier = Entitlement.objects.filter(request__in=rows, state=EntitlementState.ACTIVE)
    Entitlement.objects.filter(pk=earlier.first().pk).update(
        state=EntitlementState.REVOKED, revoked_at=timezone.now()
    )
    assert dirty_months() == []
    for scope in scopes(world):
        assert_reports_equal_raw(scope)


@pytest.mark.django_db
def test_a_month_rolled_up_to_an_hour_is_recomputed_once_closed(world):
    """What the beat task finds on the first of a month: last month's roll-up reaches only
    up to an hour of it. It is read live and recomputed whole."""
    month = rollup.add_months(rollup.open_month(world.now), -2)
    clean_rollup()
    starts, ends = rollup.month_bounds(month)
    assert rollup.recompute_month(month, through=starts + datetime.timedelta(days=12))
    plan = rollup.plan(FIRST, rollup.open_month(world.now))
    assert month in plan.live and month not in plan.rolled
    assert month in rollup.months_to_compute()
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    assert clean_rollup()["computed"] == [f"{month:%Y-%m}"]
    assert RollupMonth.objects.get(month=month).through is None
    for scope in scopes(world):
        assert_reports_equal_raw(scope)
    with pytest.raises(ValueError):
        rollup.recompute_month(month, through=ends + datetime.timedelta(days=1), now=starts)


def test_percentiles_of_a_histogram_are_percentile_cont_of_its_bucket_values():
    """One pass for several fractions (the lead-time page's p50 and p90) gives
    ``percentile_cont`` over the values the buckets read as, empty buckets included."""
    rng = random.Random(5)
    for _ in range(2000):
        buckets = sorted(rng.sample(range(-20500, 20600), rng.randint(0, 8)))
        histogram = [(b, rng.choice([0, 1, 2, 5, 100])) for b in buckets]
        values = [rollup.bucket_seconds(b) for b, n in histogram for _ in range(n)]
        fractions = (0.0, 0.5, 0.9, 1.0, rng.random())
        for fraction, got in zip(fractions, rollup.percentiles(histogram, fractions), strict=True):
            exact = percentile_cont(values, fraction)
            assert got == exact or abs(got - exact) <= 1e-9 * abs(exact), (histogram, fraction)


def test_the_open_month_waits_for_the_margin_after_an_hour_begins(monkeypatch):
    """In an hour's first OPEN_MONTH_MARGIN the open month is rolled up only to the start of
    the hour before (a transaction begun before may still commit changes of that hour)."""
    monkeypatch.setattr(rollup, "OPEN_MONTH_MARGIN", datetime.timedelta(minutes=10))
    tz = timezone.get_default_timezone()
    midnight = datetime.datetime(2026, 12, 6, tzinfo=tz)
    hour = datetime.timedelta(hours=1)
    assert rollup.open_month_cut(midnight + datetime.timedelta(minutes=9)) == midnight - hour
    assert rollup.open_month_cut(midnight + datetime.timedelta(minutes=10)) == midnight
    assert rollup.open_month_cut(midnight + 2 * hour + datetime.timedelta(minutes=59)) == (
        midnight + 2 * hour
    )
    # Hours as instants: the night the clocks go back has two hours 02:00-03:00 in Berlin.
    # (In UTC: an ambiguous local time compares unequal to any other zone's, PEP 495.)
    two_cest = datetime.datetime(2026, 10, 25, 0, tzinfo=datetime.UTC)
    half = datetime.timedelta(minutes=30)
    assert rollup.open_month_cut(two_cest + half) == two_cest
    assert rollup.open_month_cut(two_cest + hour + half) == two_cest + hour  # 02:00 CET
    # A month's first hour has nothing of the month to roll up.
    first = datetime.datetime(2026, 12, 1, tzinfo=tz)
    assert rollup.open_month_cut(first + datetime.timedelta(minutes=59)) is None
    assert rollup.open_month_cut(first + hour + datetime.timedelta(minutes=10)) == first + hour
