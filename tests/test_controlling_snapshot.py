"""A roll-up committed while a controlling page reads (``rollup.snapshot``).

A page reads its plan (which months come from the roll-up, up to where the open month is
rolled up) and then its figures. Here another connection moves the open month's cut-off on
and commits exactly between the two, as the beat task does at the start of an hour: read
under READ COMMITTED the time between the cut-offs is counted twice (the new roll-up
plus the live rows from the old cut-off); the pages and exports read both in one snapshot,
so their figures still equal the raw aggregate. Real transactions: the other connection
has to commit.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from metrics.controlling import rollup, selectors
from metrics.controlling.rollup import ALL
from tests.factories import UserFactory
from tests.test_controlling_rollup import (
    FIRST,
    World,
    at_cut_offs,
    clean_rollup,
    cut_offs_of_the_open_month,
    oracle,
)


@pytest.fixture
def world(org):
    return World(org)


@pytest.fixture
def open_month_cut_yesterday(world):
    """The open month rolled up to its last cut-off but one; (month, that one, the last)."""
    now = timezone.now()
    days = cut_offs_of_the_open_month(world, now)
    if len(days) < 2:
        pytest.skip("the open month has fewer than two cut-offs")
    at_cut_offs(world, days)
    clean_rollup(now)
    month = rollup.open_month(world.now)
    assert rollup.recompute_month(month, through=days[-2])
    assert rollup.plan(FIRST, month).tail == (month, days[-2])
    return month, days[-2], days[-1]


def move_cut_off_after_the_plan(monkeypatch, month, through):
    """After the first plan is read, another connection rolls the open month up to
    ``through`` and commits, before anything else is read."""
    original = rollup.plan
    moved = []

    def plan(*args, **kwargs):
        result = original(*args, **kwargs)
        if not moved:
            errors = []

            def other_connection():
                try:
                    moved.append(rollup.recompute_month(month, through=through))
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    connection.close()

            thread = threading.Thread(target=other_connection)
            thread.start()
            thread.join()
            if errors:
                raise errors[0]
        return result

    monkeypatch.setattr(rollup, "plan", plan)
    return moved


def expected_costs(month):
    costs = oracle(ALL, FIRST, month, timezone.now())[0]
    return {key: value for key, value in costs.items() if value[0] or value[2]}


def as_costs(rows):
    return {
        (row.month, row.cost_centre_code): [row.fulfilled, row.once, row.entitlements, row.monthly]
        for row in rows
    }


@pytest.mark.django_db(transaction=True)
def test_a_rollup_committed_between_plan_and_figures_is_half_seen_outside_a_snapshot(
    open_month_cut_yesterday, monkeypatch
):
    """Why the snapshot: without it the time between the cut-offs is counted twice."""
    month, _yesterday, today = open_month_cut_yesterday
    expected = expected_costs(month)
    moved = move_cut_off_after_the_plan(monkeypatch, month, today)
    got = as_costs(selectors.costs_per_cost_centre(ALL, first=FIRST, last=month))
    assert moved == [True]

    def fulfilled(costs):
        return sum(value[0] for (m, _code), value in costs.items() if m == month)

    assert fulfilled(got) > fulfilled(expected)  # the time between the cut-offs twice


@pytest.mark.django_db(transaction=True)
def test_in_a_snapshot_the_figures_equal_the_raw_aggregate(open_month_cut_yesterday, monkeypatch):
    month, _yesterday, today = open_month_cut_yesterday
    expected = expected_costs(month)
    moved = move_cut_off_after_the_plan(monkeypatch, month, today)
    with rollup.snapshot():
        got = as_costs(selectors.costs_per_cost_centre(ALL, first=FIRST, last=month))
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone()[0] == "repeatable read"
            cursor.execute("SHOW transaction_read_only")
            assert cursor.fetchone()[0] == "on"
            cursor.execute("SHOW max_parallel_workers_per_gather")
            assert cursor.fetchone()[0] == "0"
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] != "0"  # for the transaction only
    assert moved == [True] and got == expected
    # The next read sees the moved cut-off, and the same figures.
    assert rollup.plan(FIRST, month).tail == (month, today)
    assert as_costs(selectors.costs_per_cost_centre(ALL, first=FIRST, last=month)) == expected


def params(month):
    return {"period_from": f"{FIRST:%Y-%m}", "period_to": f"{month:%Y-%m}"}


@pytest.mark.django_db(transaction=True)
def test_the_costs_page_reads_in_one_snapshot(open_month_cut_yesterday, monkeypatch, client, org):
    month, _yesterday, today = open_month_cut_yesterday
    client.force_login(UserFactory(username="controller", groups=[org.controlling]))
    expected = expected_costs(month)
    client.get(reverse("controlling:costs"), params(month))  # the process's first page
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("controlling:costs"), params(month))
    moved = move_cut_off_after_the_plan(monkeypatch, month, today)
    with CaptureQueriesContext(connection) as during:
        response = client.get(reverse("controlling:costs"), params(month))
    assert response.status_code == 200 and moved == [True]
    assert as_costs(response.context["view"].rows()) == expected
    assert any("REPEATABLE READ, READ ONLY" in q["sql"] for q in during.captured_queries)
    assert len(during.captured_queries) == len(before.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_the_costs_export_reads_in_one_snapshot(open_month_cut_yesterday, monkeypatch, client, org):
    month, yesterday, today = open_month_cut_yesterday
    client.force_login(UserFactory(username="controller", groups=[org.controlling]))
    url = reverse("controlling:costs_export", args=["csv"])
    assert rollup.recompute_month(month, through=today)
    settled = b"".join(client.get(url, params(month)).streaming_content)
    assert rollup.recompute_month(month, through=yesterday)
    moved = move_cut_off_after_the_plan(monkeypatch, month, today)
    raced = b"".join(client.get(url, params(month)).streaming_content)
    assert moved == [True] and raced == settled
