"""Model rows read by statements compiled once (itportal/statements.py) are the ORM's rows:
the request page's request with its joins, its approval steps and its events; so are the
objects QuickModelIterable makes for the admin's changelists."""

import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_fsm import ConcurrentTransition

from itportal.statements import MARK, CompiledRows
from requests_app import selectors, services
from requests_app.choices import RequestState as S
from requests_app.models import Approval, Rating, RequestEvent, ServiceRequest

pytestmark = pytest.mark.django_db

RELATED = ("rating", "fulfilment_group", "assignee")


def fields_of(instance, seen=()) -> dict:
    """The instance's column values and, recursively, those of the related rows it holds
    (a row met on the way again, as the rating's request, by its model and key)."""
    values = {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }
    seen = (*seen, id(instance))
    for name, related in instance._state.fields_cache.items():
        if related is None or id(related) in seen:
            values[name] = related and (type(related), related.pk)
        else:
            values[name] = fields_of(related, seen)
    return values


@pytest.fixture
def decided(org, manual_item, place_order):
    """A fulfilled, rated request with a decided step and several events; one still open."""
    done = place_order(manual_item, org.alice.user)
    services.request_approve(request_id=done.pk, user=org.manager.user, comment="ok")
    services.request_take(request_id=done.pk, user=org.fulfiller.user)
    services.request_complete(request_id=done.pk, user=org.fulfiller.user, note="done")
    Rating.objects.create(request=done, score=4, comment="fine", rated_by=org.alice.user)
    return done, place_order(manual_item, org.alice.user)


def test_a_request_by_id_is_the_orms_row_with_its_joins(org, decided):
    for service_request in decided:
        expected = selectors._base().select_related(*RELATED).get(pk=service_request.pk)
        read = selectors.request_visible_to(org.alice.user, service_request.pk, *RELATED)
        assert type(read) is ServiceRequest
        assert fields_of(read) == fields_of(expected)
        assert read._state.adding is False and read._state.db == "default"
        # The state machine's concurrency guard knows the state read.
        initial = "_ConcurrentTransitionMixin__initial_states"
        assert getattr(read, initial) == getattr(expected, initial) == {"state": read.state}
    with CaptureQueriesContext(connection) as queries:
        shown = [
            read.beneficiary.user.get_full_name(),
            read.item.category.name,
            read.cost_centre.code,
            read.fulfilment_group.name,
        ]
        assert all(shown) and read.assignee is None
    assert not queries.captured_queries


def test_unknown_and_out_of_range_ids_are_not_found(org, decided):
    assert selectors.request_visible_to(org.alice.user, 10**6) is None
    assert selectors.request_visible_to(org.alice.user, 10**30) is None
    assert selectors.request_visible_to(org.bob.user, decided[0].pk) is None


def test_the_steps_and_events_are_the_orms_with_the_request_known(decided):
    for service_request in decided:
        approvals = selectors.request_approvals(service_request)
        expected = service_request.approvals.select_related(
            "approver", "group", "decided_by", "on_behalf_of"
        ).order_by("position")
        assert [fields_of(a) for a in approvals] == [fields_of(a) for a in expected]
        events = selectors.request_timeline(service_request)
        expected = service_request.events.select_related("actor", "on_behalf_of").order_by(
            "created_at", "id"
        )
        assert [fields_of(e) for e in events] == [fields_of(e) for e in expected]
        assert len(events) >= 1
        with CaptureQueriesContext(connection) as queries:
            assert all(e.request is service_request for e in events)
            assert all(a.request is service_request for a in approvals)
        assert not queries.captured_queries
    assert len(selectors.request_approvals(decided[0])) == 1
    assert {type(a) for a in approvals} <= {Approval}
    assert {type(e) for e in events} == {RequestEvent}


def test_the_events_read_as_rows_make_the_same_objects(decided):
    """The request page keys its markup on the events' rows as read and makes the events
    from them only to render it: the same objects as one read."""
    for service_request in decided:
        rows = selectors.request_timeline_rows(service_request)
        assert rows and all(type(row) is tuple for row in rows)
        hash(tuple(rows))  # plain values: a key
        made = selectors.timeline_of_rows(service_request, rows)
        read = selectors.request_timeline(service_request)
        assert [fields_of(e) for e in made] == [fields_of(e) for e in read]
        assert all(e.request is service_request for e in made)


def test_an_instance_key_tells_apart_what_renders_differently(org, decided):
    """instance_key: the columns and loaded related rows of an object as plain values;
    a change of any of them (a related person's name too) gives another key."""
    from decimal import Decimal

    from itportal.memo import instance_key

    def key(pk):
        row = selectors.request_visible_to(org.alice.user, pk, *RELATED)
        return instance_key(row, set())

    done = decided[0]
    first = key(done.pk)
    hash(first)
    assert first == key(done.pk)  # read again: the same
    assert ("seen" in repr(first)) is True  # the rating's request comes once
    org.alice.user.first_name = "Other"
    org.alice.user.save(update_fields=["first_name"])
    assert key(done.pk) != first
    renamed = key(done.pk)
    ServiceRequest.objects.filter(pk=done.pk).update(price_once=Decimal("5"))
    five = key(done.pk)
    assert five != renamed
    row = selectors.request_visible_to(org.alice.user, done.pk, *RELATED)
    assert instance_key(row, set()) == five
    row.price_once = Decimal("5")  # equal to the column's 5.00, but written otherwise
    assert instance_key(row, set()) != five
    row.price_once = object()  # not a plain value: no key
    assert instance_key(row, set()) is None
    # A password hash is never part of a key kept in memory (nor does a new one change it).
    assert org.alice.user.password not in repr(five)
    org.alice.user.set_password("another secret 1")
    org.alice.user.save(update_fields=["password"])
    assert key(done.pk) == five


def test_each_read_runs_the_one_statement_compiled_first():
    built = []

    def build(number):
        built.append(number)
        return RequestEvent.objects.filter(request_id=number).order_by("id")

    rows = CompiledRows(RequestEvent, build)
    with CaptureQueriesContext(connection) as queries:
        assert rows(1) == [] and rows(2) == []
    assert built == [MARK]
    assert len(queries.captured_queries) == 2


def test_a_statement_without_the_number_once_is_refused():
    twice = CompiledRows(
        RequestEvent,
        lambda number: RequestEvent.objects.filter(request_id=number, actor_id=number),
    )
    with pytest.raises(ValueError):
        twice(1)
    none = CompiledRows(RequestEvent, lambda number: RequestEvent.objects.all())
    with pytest.raises(ValueError):
        none(1)


def _quick(queryset):
    from itportal.statements import QuickModelIterable

    queryset = queryset._chain()
    queryset._iterable_class = QuickModelIterable
    return list(queryset)


def test_quick_objects_are_the_orms(decided):
    """QuickModelIterable's objects (the admin's changelist rows) are the ORM's: columns
    read narrow or whole, select_related rows (a missing one None), state, the deferred
    columns read when asked for, and saving them works as with the ORM's."""
    from provisioning.models import Entitlement

    done, _open = decided
    querysets = [
        ServiceRequest.objects.select_related("item", "beneficiary__user", "requester")
        .only("id", "state", "item__name", "beneficiary__user__username", "requester__username")
        .order_by("id"),
        RequestEvent.objects.select_related("actor", "request").order_by("id"),
        RequestEvent.objects.select_related("actor")
        .only("id", "kind", "actor__username")
        .order_by("-id"),
        Approval.objects.select_related("approver", "decided_by").order_by("id"),
        Entitlement.objects.select_related("holder__user", "item").order_by("id"),
    ]
    for queryset in querysets:
        expected, quick = list(queryset), _quick(queryset)
        assert len(quick) == len(expected) >= 1
        assert [type(o) for o in quick] == [type(o) for o in expected]
        assert [fields_of(o) for o in quick] == [fields_of(o) for o in expected]
        for ours, theirs in zip(quick, expected, strict=True):
            assert ours.get_deferred_fields() == theirs.get_deferred_fields()
            assert (ours._state.adding, ours._state.db) == (False, "default")
            assert list(vars(ours)) == list(vars(theirs))
            assert getattr(ours, INITIAL, None) == getattr(theirs, INITIAL, None)
    assert any(a.decided_by is None for a in _quick(querysets[3]))  # a step still open
    # A deferred column is read when asked for, as the ORM's object reads it.
    request, email = _quick(querysets[0])[0], done.beneficiary.user.email
    with CaptureQueriesContext(connection) as queries:
        assert request.beneficiary.user.email == email
    assert len(queries.captured_queries) == 1
    entitlement = _quick(Entitlement.objects.order_by("id"))[0]
    entitlement.expires_on = datetime.date(2030, 1, 31)
    entitlement.save(update_fields=["expires_on"])
    assert Entitlement.objects.get(pk=entitlement.pk).expires_on == datetime.date(2030, 1, 31)


INITIAL = "_ConcurrentTransitionMixin__initial_states"


def test_quick_requests_are_made_without_init_with_their_states_as_loaded(decided):
    """A request (its state machine's __init__ records the states it was loaded with) is
    made without __init__ where its state is read, the states recorded as __init__ does:
    a transition's save is still guarded by them. Without its state (deferred) it is made
    by from_db, which reads it, as the ORM's does."""
    from itportal import statements

    assert statements._plain(ServiceRequest) == ("state",)
    queryset = ServiceRequest.objects.only("id", "state").order_by("id")
    done, open_ = _quick(queryset)
    assert vars(done)[INITIAL] == {"state": done.state} and vars(open_)[INITIAL]
    assert list(vars(done)) == list(vars(queryset.first()))
    # Another process moved the open request on: saving this copy's change is refused.
    ServiceRequest.objects.filter(pk=open_.pk).update(state=S.CANCELLED)
    open_.cancel()
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        open_.save()
    with CaptureQueriesContext(connection) as queries:
        without_state = _quick(ServiceRequest.objects.only("id").order_by("id"))
    assert [vars(r)[INITIAL] for r in without_state] == [
        {"state": done.state},
        {"state": S.CANCELLED},
    ]
    assert len(queries.captured_queries) == 3  # the rows, and each one's state (from_db)


def test_quick_objects_of_a_watched_model_are_made_by_init(decided):
    """A model with a post_init receiver (or its own __init__, as the request's state
    machine) is made through from_db, so the receiver runs as for the ORM's."""
    from django.db.models.signals import post_init

    from catalogue.models import Employee

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Employee)
    try:
        rows = _quick(ServiceRequest.objects.select_related("beneficiary").order_by("id"))
    finally:
        post_init.disconnect(receiver, sender=Employee)
    assert [row.beneficiary for row in rows] == seen and seen
    initial = "_ConcurrentTransitionMixin__initial_states"
    assert all(getattr(row, initial) == {"state": row.state} for row in rows)


def test_kept_rows_are_the_orms_read_anew(org, decided):
    """KeptRows (a filter form's options): the objects of a queryset compiled once are the
    ORM's (whole or narrow rows, select_related rows), read anew on every call; none, and
    no query, where no row can match; anything but plain model rows is refused."""
    from django.db.models import Count

    from catalogue.models import Category, CostCentre
    from itportal.statements import KeptRows

    querysets = [
        Category.objects.all(),
        CostCentre.objects.order_by("-code"),
        RequestEvent.objects.select_related("actor", "request").order_by("id"),
        ServiceRequest.objects.only("id", "state", "approved_at").order_by("-id"),
    ]
    for queryset in querysets:
        kept = KeptRows(queryset)
        for _ in range(2):
            expected, read = list(queryset.all()), kept()
            assert len(read) == len(expected) >= 1
            assert [type(o) for o in read] == [type(o) for o in expected]
            assert [fields_of(o) for o in read] == [fields_of(o) for o in expected]
            for ours, theirs in zip(read, expected, strict=True):
                assert ours.get_deferred_fields() == theirs.get_deferred_fields()
                assert (ours._state.adding, ours._state.db) == (False, "default")
    kept = KeptRows(CostCentre.objects.order_by("code"))
    assert str(org.cost_centre) in [str(c) for c in kept()]
    CostCentre.objects.filter(pk=org.cost_centre.pk).update(name="Umbenannt")
    assert [str(c) for c in kept()] == [str(c) for c in CostCentre.objects.order_by("code")]
    assert "KS1000 Umbenannt" in [str(c) for c in kept()]
    with CaptureQueriesContext(connection) as queries:
        assert KeptRows(Category.objects.none())() == []
    assert not queries.captured_queries
    for refused in (Category.objects.values("pk"), Category.objects.annotate(n=Count("items"))):
        with pytest.raises(ValueError):
            KeptRows(refused)


def test_joinless_rows_are_the_orms(org, decided):
    """JoinlessRows (an unfiltered admin changelist's page): the ORM's objects with their
    select_related rows, each related column read by a subquery on its key, not joined; a
    missing related row (a NULL key) None; the page's conditions and order as the ORM's.
    Reverse relations and plain rows are left to the ORM."""
    from itportal.statements import JoinlessRows
    from provisioning.models import Entitlement

    querysets = [
        ServiceRequest.objects.select_related("item", "beneficiary__user", "requester")
        .only("id", "state", "item__name", "beneficiary__user__username", "requester__username")
        .order_by("-created_at", "-id")[:25],
        ServiceRequest.objects.select_related("item__category", "beneficiary__user").order_by("id"),
        ServiceRequest.objects.select_related("beneficiary")
        .filter(pk__in=ServiceRequest.objects.order_by("-id").values("pk")[1:2])
        .order_by("beneficiary__user__last_name", "id"),
        RequestEvent.objects.select_related("actor", "request").order_by("id"),
        Approval.objects.select_related("approver", "decided_by").order_by("id"),
        Entitlement.objects.select_related("holder__user", "item").order_by("id"),
    ]
    for queryset in querysets:
        joinless = JoinlessRows(queryset)
        # Joined only for an order by a related row's column.
        assert (" JOIN " in joinless.sql) is ("beneficiary__user" in str(queryset.query.order_by))
        for _ in range(2):
            expected, read = list(queryset.all()), joinless.read()
            assert len(read) == len(expected) >= 1
            assert [fields_of(o) for o in read] == [fields_of(o) for o in expected]
            for ours, theirs in zip(read, expected, strict=True):
                assert list(vars(ours)) == list(vars(theirs))
                assert ours.get_deferred_fields() == theirs.get_deferred_fields()
                assert getattr(ours, INITIAL, None) == getattr(theirs, INITIAL, None)
    assert any(a.decided_by is None for a in JoinlessRows(querysets[4]).read())
    for refused in (
        ServiceRequest.objects.order_by("id"),
        ServiceRequest.objects.select_related("rating").order_by("id"),
    ):
        with pytest.raises(ValueError):
            JoinlessRows(refused)


def test_a_count_by_conditions_is_the_bounded_count(org, decided):
    """count_with_conditions counts what bounded_count counts, for conditions on the
    model's own columns (a foreign key's ``__in`` its ids too); None where a condition
    joins, so the paginator counts as usual."""
    from itportal.inputs import bounded_count
    from itportal.statements import count_with_conditions

    requests = ServiceRequest.objects.all()
    for rows in (
        requests.filter(requester=org.alice.user),
        requests.filter(requester__in=[org.alice.user.pk, org.bob.user.pk]),
        requests.filter(state=S.SUBMITTED).order_by("-created_at"),
        requests.filter(pk__in=[]),
        requests.none(),
    ):
        assert count_with_conditions(rows, 10) == bounded_count(rows, 10)
    assert count_with_conditions(requests.filter(requester=org.alice.user), 0) == 1  # bound + 1
    assert count_with_conditions(requests.filter(item__name="x"), 10) is None
    assert count_with_conditions(requests, 10) is None  # a whole table: estimated instead


def test_kept_rows_read_together_are_each_ones_own(org, decided):
    """read_kept_together (a filter form's options): the objects of several KeptRows in one
    statement, each in its own order, as each reads them alone; a part with columns JSON
    does not give back as read (a moment) makes each read its own statement."""
    from catalogue.models import Category, CostCentre
    from itportal.statements import KeptRows, read_kept_together

    CostCentre.objects.create(code="KS9\u00e4\"'", name="Gr\u00fc\u00dfe <b>&</b>")
    kept = (KeptRows(Category.objects.all()), KeptRows(CostCentre.objects.order_by("-code")))
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            together = read_kept_together(kept, "default")
        assert len(queries.captured_queries) == 1
        for read, rows in zip(together, kept, strict=True):
            expected = list(rows.queryset.all())
            assert len(read) == len(expected) >= 1
            assert [type(o) for o in read] == [type(o) for o in expected]
            assert [fields_of(o) for o in read] == [fields_of(o) for o in expected]
            assert all((o._state.adding, o._state.db) == (False, "default") for o in read)
    moments = ServiceRequest.objects.only("id", "state", "approved_at").order_by("-id")
    with_moments = (kept[0], KeptRows(moments))
    with CaptureQueriesContext(connection) as queries:
        together = read_kept_together(with_moments, "default")
    assert len(queries.captured_queries) == 2
    assert [fields_of(o) for o in together[1]] == [fields_of(o) for o in moments.all()]
