"""Concurrent orders never fail: state machines read their state safely in threads.

django-fsm's refresh of a protected state switched the protection off on the field,
shared by all threads; two refreshes at once made one fail with "Direct state
modification is not allowed" (9 of about 2,480 parallel API orders). The first test
forces that interleaving with a query hook; the second places orders and decides them
through the API from several threads at once, on the real database with real commits.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from requests_app import services
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.api_support import token_client

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 60
ORDERS_PER_PERSON = 12


def _in_thread(target, errors: list) -> threading.Thread:
    def run():
        try:
            target()
        except BaseException as exc:  # the test reports every exception
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _pause_selects(arrived: threading.Event, go_on: threading.Event):
    """A query hook: at each SELECT, say so and wait until told to go on."""

    def hook(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT"):
            arrived.set()
            assert go_on.wait(TIMEOUT)
        return execute(sql, params, many, context)

    return hook


def test_refreshes_in_two_threads_at_once_both_succeed(org, manual_item, place_order):
    """A's refresh starts, B's starts while A's runs, A's ends before B has its row."""
    first = place_order(manual_item, org.alice.user)
    second = place_order(manual_item, org.bob.user)
    a_reading, b_reading, a_done = threading.Event(), threading.Event(), threading.Event()

    def refresh_a():
        try:
            with connection.execute_wrapper(_pause_selects(a_reading, b_reading)):
                first.refresh_from_db()
        finally:
            a_done.set()

    def refresh_b():
        assert a_reading.wait(TIMEOUT)
        with connection.execute_wrapper(_pause_selects(b_reading, a_done)):
            second.refresh_from_db()

    errors: list[BaseException] = []
    threads = [_in_thread(refresh_a, errors), _in_thread(refresh_b, errors)]
    for thread in threads:
        thread.join(TIMEOUT)
    assert errors == []  # django-fsm's own refresh: B fails, "Direct state modification ..."
    assert (first.state, second.state) == (RequestState.AWAITING_APPROVAL,) * 2
    # The protection itself still holds.
    with pytest.raises(AttributeError):
        first.state = RequestState.APPROVED


@pytest.mark.django_db
def test_refresh_reloads_what_is_asked_and_keeps_the_guard(org, manual_item, place_order):
    service_request = place_order(manual_item, org.alice.user)
    stale = ServiceRequest.objects.get(pk=service_request.pk)
    services.request_approve(request_id=service_request.pk, user=org.manager.user)
    # Part of the row: the state comes along (django-fsm reads it for its guard).
    stale.refresh_from_db(fields=["approval_steps"])
    assert stale.state == RequestState.APPROVED
    stale.refresh_from_db()
    assert stale.state == RequestState.APPROVED
    stale.save()  # the concurrency guard compares with the refreshed state: no conflict
    deferred = ServiceRequest.objects.only("pk").get(pk=service_request.pk)
    assert deferred.state == RequestState.APPROVED  # a deferred state loads on first use


def test_parallel_api_orders_and_decisions_never_fail(org, manual_item):
    """Two people order at once while two clients of their manager (a double click in two
    tabs) decide every waiting order: even ids approved, odd ones rejected."""
    body = {"item": manual_item.slug, "item_version": manual_item.version, "answers": {}}
    statuses: Counter = Counter()
    lock = threading.Lock()
    ordered: list[int] = []
    done_ordering = threading.Event()

    def record(response):
        with lock:
            statuses[response.status_code] += 1

    def order(person):
        client = token_client(person.user)
        for _ in range(ORDERS_PER_PERSON):
            response = client.post("/api/v1/requests/", body, format="json")
            record(response)
            if response.status_code == 201:
                with lock:
                    ordered.append(response.json()["id"])

    def decide():
        client = token_client(org.manager.user)
        while True:
            finished = done_ordering.is_set()
            page = client.get("/api/v1/approvals/?page_size=100")
            record(page)
            waiting = [row["id"] for row in page.json()["results"]]
            for request_id in waiting:
                action = "approve" if request_id % 2 == 0 else "reject"
                response = client.post(
                    f"/api/v1/requests/{request_id}/{action}/",
                    {"comment": "parallel"},
                    format="json",
                )
                record(response)
            if finished and not waiting:
                return

    errors: list[BaseException] = []
    orderers = [_in_thread(lambda p=p: order(p), errors) for p in (org.alice, org.bob)]
    deciders = [_in_thread(decide, errors) for _ in range(2)]
    for thread in orderers:
        thread.join(TIMEOUT)
    done_ordering.set()
    for thread in deciders:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in orderers + deciders), "a client hung"
    assert errors == []
    assert not [code for code in statuses if code >= 500], statuses
    assert set(statuses) <= {200, 201, 409}, statuses  # 409: the other tab decided first
    assert statuses[201] == len(ordered) == 2 * ORDERS_PER_PERSON
    states = dict(ServiceRequest.objects.values_list("pk", "state"))
    assert sorted(states) == sorted(ordered)
    for request_id, state in states.items():
        want = RequestState.APPROVED if request_id % 2 == 0 else RequestState.REJECTED
        assert state == want, (request_id, state)
    assert statuses[200] >= len(ordered)  # every order decided once (plus the list pages)


def test_the_state_fields_found_once_per_model_are_django_fsms():
    """ConcurrentStateMixin.state_fields, kept per model class, names the fields
    django-fsm's own property filters from all of a model's fields for every instance."""
    from django.apps import apps
    from django_fsm import ConcurrentTransitionMixin

    from itportal.fsm import ConcurrentStateMixin

    models = [m for m in apps.get_models() if issubclass(m, ConcurrentStateMixin)]
    assert ServiceRequest in models and len(models) >= 4
    for model in models:
        instance = model()
        theirs = list(ConcurrentTransitionMixin.state_fields.fget(instance))
        assert list(instance.state_fields) == theirs and theirs
        assert instance.state_fields is model().state_fields  # found once


def test_a_refresh_reads_the_state_with_the_other_fields_in_one_statement(
    org, manual_item, place_order, django_assert_num_queries
):
    """The state and the other fields come from one statement, so from one commit: read
    in two, a mail given back between them showed "waiting to retry" without its error
    (tests/test_mail_consumer_restart.py failed so once). Asked-for fields bring the
    state along in the same statement."""
    from notifications.models import OutgoingMail

    request = place_order(manual_item, org.alice.user)
    mail = OutgoingMail.objects.create(kind="k", recipient=org.bob.user, to="bob@example.org")
    for instance in (request, mail):
        with django_assert_num_queries(1) as captured:
            instance.refresh_from_db()
        assert '"state"' in captured.captured_queries[0]["sql"]
    OutgoingMail.objects.filter(pk=mail.pk).update(last_error="refused", state="retrying")
    with django_assert_num_queries(1):
        mail.refresh_from_db(fields=["last_error"])
    assert (mail.state, mail.last_error) == ("retrying", "refused")
    assert "_itportal_reloading_states" not in mail.__dict__
    with django_assert_num_queries(0):
        assert mail.get_deferred_fields() == set()
