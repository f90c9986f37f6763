"""SLA compliance from the monthly roll-up: the figures equal the raw aggregate, to the count,
before and after back-dated changes of a fulfilled request's deadlines and first response.

The data are the roll-up tests' world (requests fulfilled on Berlin month edges and across
both daylight-saving changes, one in the open month) with deadlines on the edges: fulfilled
at 00:00:00 on the first of a month (22:00 UTC the day before) with the previous day due is
late, at 23:30 on the due day in time; answered exactly at the response deadline is in time.
The oracle recomputes the page in Python from the rows.
"""

from __future__ import annotations

import datetime
from collections import defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics.controlling import rollup
from metrics.controlling.rollup import ALL, Scope
from metrics.controlling.sla import sla_compliance
from metrics.models import MonthlySla, RollupMonth
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.test_controlling_rollup import (
    BERLIN,
    FIRST,
    World,
    at,
    clean_rollup,
    dirty_months,
    in_scope,
    local_month,
    months_of_period,
    scopes,
)


def _deadlines(world):
    """Deadlines on every fulfilled request but a few: due the local day of fulfilment, the
    day before or after; a response target met, missed, met to the second or never answered."""
    rows = list(ServiceRequest.objects.filter(state=RequestState.FULFILLED).order_by("pk"))
    for n, r in enumerate(rows):
        local = r.closed_at.astimezone(BERLIN).date()
        r.fulfilment_due_on = None if n % 6 == 5 else local + datetime.timedelta(days=n % 3 - 1)
        r.response_due_at = None if n % 8 == 7 else r.approved_at + datetime.timedelta(hours=4)
        if r.response_due_at is None or n % 4 == 3:
            r.responded_at = None  # never answered: missed
        else:
            r.responded_at = r.response_due_at + datetime.timedelta(seconds=n % 4 - 1)
    # The edges: the first instant of April is 31 March in UTC, but late for a March deadline.
    for r in rows:
        if r.closed_at == at(2025, 4, 1, 0, 0, 0):
            r.fulfilment_due_on = datetime.date(2025, 3, 31)
        if r.closed_at == at(2025, 3, 31, 23, 30):
            r.fulfilment_due_on = datetime.date(2025, 3, 31)
    ServiceRequest.objects.bulk_update(
        rows, ["fulfilment_due_on", "response_due_at", "responded_at"]
    )


@pytest.fixture
def world(org):
    world = World(org)
    _deadlines(world)
    return world


def oracle(scope: Scope, first, last, now) -> list[tuple]:
    months = months_of_period(first, last, now)
    sums = defaultdict(lambda: [0, 0, 0, 0])
    requests = ServiceRequest.objects.filter(state=RequestState.FULFILLED).select_related(
        "beneficiary", "item"
    )
    for r in requests:
        month = local_month(r.closed_at)
        if month not in months or not in_scope(r, scope):
            continue
        if r.fulfilment_due_on is None and r.response_due_at is None:
            continue
        row = sums[(month, r.item.name)]
        if r.fulfilment_due_on is not None:
            row[0] += 1
            row[1] += r.closed_at.astimezone(BERLIN).date() <= r.fulfilment_due_on
        if r.response_due_at is not None:
            row[2] += 1
            row[3] += r.responded_at is not None and r.responded_at <= r.response_due_at
    rows = [(month, name, *figures) for (month, name), figures in sorted(sums.items())]
    if rows:
        rows.append((None, "", *(sum(row[k] for row in rows) for k in range(2, 6))))
    return rows


def assert_sla_equals_raw(scope: Scope = ALL, first=FIRST, last=None):
    now = datetime.datetime.now(datetime.UTC)
    last = last or rollup.open_month(now)
    got = [
        (row.month, row.service, row.fulfilled, row.met, row.responded, row.response_met)
        for row in sla_compliance(scope, first=first, last=last)
    ]
    assert got == oracle(scope, first, last, now)


@pytest.mark.django_db
def test_live_sla_equals_raw_without_any_rollup(world):
    assert not RollupMonth.objects.filter(dirty=False).exists()
    for scope in scopes(world):
        assert_sla_equals_raw(scope)
    rows = sla_compliance(ALL, first=FIRST, last=rollup.open_month(world.now))
    total = rows[-1]
    # The data reach every count: met and late, answered in time, late and never.
    assert 0 < total.met < total.fulfilled and 0 < total.response_met < total.responded
    assert rows[-2].month == rollup.open_month(world.now)  # the open month is counted


@pytest.mark.django_db
def test_rolled_up_sla_equals_raw(world):
    clean_rollup()
    assert MonthlySla.objects.exists()
    plan = rollup.plan(FIRST, rollup.open_month(world.now))
    # The open month live, or (main's open-month roll-up) up to today rolled and today live.
    assert plan.rolled and (plan.live == [rollup.open_month(world.now)] or plan.tail)
    for scope in scopes(world):
        assert_sla_equals_raw(scope)
    # Each side of the March/April edge alone, and a period of closed months.
    for month in (datetime.date(2025, 3, 1), datetime.date(2025, 4, 1)):
        assert_sla_equals_raw(ALL, first=month, last=month)
    march = sla_compliance(ALL, first=datetime.date(2025, 3, 1), last=datetime.date(2025, 3, 1))
    april = sla_compliance(ALL, first=datetime.date(2025, 4, 1), last=datetime.date(2025, 4, 1))
    assert march[-1].met == march[-1].fulfilled - march[-1].missed and april[-1].missed >= 1
    assert_sla_equals_raw(ALL, first=datetime.date(2025, 10, 1), last=datetime.date(2026, 1, 1))


@pytest.mark.django_db
def test_closed_months_are_read_from_the_rollup(world):
    """The plan and the sums; the closed months' requests are not read, and their roll-up
    rows are summed by month and service once per process (kept under the months' stamps:
    a month marked or recomputed is summed anew, see the test below)."""
    clean_rollup()
    last_closed = rollup.add_months(rollup.open_month(world.now), -1)
    with CaptureQueriesContext(connection) as ctx:
        rows = sla_compliance(ALL, first=FIRST, last=last_closed)
    assert rows and len(ctx.captured_queries) == 3
    assert not any(ServiceRequest._meta.db_table in q["sql"] for q in ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        assert sla_compliance(ALL, first=FIRST, last=last_closed) == rows
    assert len(ctx.captured_queries) == 2
    assert not any(MonthlySla._meta.db_table in q["sql"] for q in ctx.captured_queries)


@pytest.mark.django_db
def test_backdated_deadline_and_response_mark_the_month(world):
    """A hold ended later moves a fulfilled request's deadline; a first response corrected
    later: the month of fulfilment is dirty, read live meanwhile, then rolled up again."""
    clean_rollup()
    assert_sla_equals_raw(ALL)  # the rolled months' sums kept, then not read once marked
    old = (
        ServiceRequest.objects.filter(
            state=RequestState.FULFILLED,
            closed_at__lt=at(2025, 9, 1),
            fulfilment_due_on__isnull=False,
        )
        .order_by("pk")
        .first()
    )
    month = local_month(old.closed_at)
    late = old.closed_at.astimezone(BERLIN).date() > old.fulfilment_due_on
    ServiceRequest.objects.filter(pk=old.pk).update(
        fulfilment_due_on=old.fulfilment_due_on + datetime.timedelta(days=5 if late else -5),
        sla_paused_seconds=3600,
    )
    assert dirty_months() == [month]
    for scope in scopes(world):
        assert_sla_equals_raw(scope)
    clean_rollup()
    for scope in scopes(world):
        assert_sla_equals_raw(scope)

    answered = (
        ServiceRequest.objects.filter(
            state=RequestState.FULFILLED,
            closed_at__lt=at(2025, 9, 1),
            response_due_at__isnull=False,
            responded_at__isnull=True,
        )
        .order_by("pk")
        .first()
    )
    ServiceRequest.objects.filter(pk=answered.pk).update(responded_at=answered.response_due_at)
    assert dirty_months() == [local_month(answered.closed_at)]
    assert_sla_equals_raw(ALL)
    clean_rollup()
    assert_sla_equals_raw(ALL)
    # A request fulfilled later than recorded, into the next month: both months change.
    moved = ServiceRequest.objects.get(pk=answered.pk)
    ServiceRequest.objects.filter(pk=moved.pk).update(
        closed_at=rollup.month_bounds(local_month(moved.closed_at))[1]
    )
    assert len(dirty_months()) == 2
    clean_rollup()
    for scope in scopes(world):
        assert_sla_equals_raw(scope)


@pytest.mark.django_db
def test_changes_outside_the_figures_mark_nothing(world):
    clean_rollup()
    closed = ServiceRequest.objects.filter(
        state=RequestState.FULFILLED, closed_at__lt=at(2025, 9, 1)
    )
    closed.update(sla_warned_at=world.now, hold_reason="")
    # An open request's deadline: no closed month holds it.
    ServiceRequest.objects.filter(state=RequestState.IN_FULFILMENT).update(
        fulfilment_due_on=datetime.date(2030, 1, 1)
    )
    assert dirty_months() == []
    assert_sla_equals_raw(ALL)


@pytest.mark.django_db
def test_months_rolled_up_before_the_sla_rows_are_filled(world):
    """Migration metrics.0004 fills the months rolled up before the SLA rows existed."""
    clean_rollup()
    MonthlySla.objects.all().delete()
    filled = rollup.fill_sla_rows()
    assert filled == RollupMonth.objects.filter(dirty=False).count()
    rollup.fill_sla_rows()  # again: months with rows are left alone
    for scope in scopes(world):
        assert_sla_equals_raw(scope)


@pytest.mark.django_db
def test_the_page_rows_are_kept_for_what_they_are_computed_from(world):
    """The rows are kept per process (the same objects while the rolled sums, the services
    and the live rows stay the same, so their table is found by identity); a renamed service,
    a live change and a recomputed month each give new rows, equal to the raw aggregate."""
    clean_rollup()
    last = rollup.open_month(world.now)
    rows = sla_compliance(ALL, first=FIRST, last=last)
    again = sla_compliance(ALL, first=FIRST, last=last)
    assert again == rows and all(a is b for a, b in zip(again, rows, strict=True))
    world.vpn.name = "Zugang (VPN)"
    world.vpn.save()
    renamed = sla_compliance(ALL, first=FIRST, last=last)
    assert {row.service for row in renamed} - {row.service for row in rows} == {"Zugang (VPN)"}
    for scope in scopes(world):
        assert_sla_equals_raw(scope)
    # A request of the open month (read live) answered: the month's row changes at once.
    live = (
        ServiceRequest.objects.filter(
            state=RequestState.FULFILLED,
            closed_at__gte=rollup.month_bounds(last)[0],
            response_due_at__isnull=False,
            responded_at__isnull=True,
        )
        .order_by("pk")
        .first()
    )
    if live is not None:
        ServiceRequest.objects.filter(pk=live.pk).update(responded_at=live.response_due_at)
        assert sla_compliance(ALL, first=FIRST, last=last)[-1].response_met == (
            renamed[-1].response_met + 1
        )
    assert_sla_equals_raw(ALL)


@pytest.mark.django_db
def test_services_of_one_name_are_one_row_in_the_name_order(world):
    """As GROUP BY and ORDER BY the service's name did: two services of the same name are
    summed into one row, and the rows follow the database's order of the names."""
    clean_rollup()
    world.mail.name = world.vpn.name
    world.mail.save()
    assert_sla_equals_raw(ALL)
    rows = sla_compliance(ALL, first=FIRST, last=rollup.open_month(world.now))
    per_month = defaultdict(list)
    for row in rows[:-1]:
        per_month[row.month].append(row.service)
    assert all(len(set(names)) == len(names) for names in per_month.values())
    assert all(names == sorted(names) for names in per_month.values())
