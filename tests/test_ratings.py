"""Satisfaction ratings: who may rate what and when, bad input, and the averages for controlling.

Averages by hand (requests fulfilled in January 2025, Europe/Berlin):
  VPN       scores 5, 4, 2, one unrated    → 3 of 4 rated, (5 + 4 + 2) / 3 = 3.666… → 3.67
  Notebook  score 3                        → 1 rating of 1, 3.00
  all       5, 4, 2, 3                     → 4 of 5, 14 / 4 = 3.50
  Not counted: a VPN rated 1 but fulfilled in February.
"""

import datetime
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from itportal.exceptions import ActionConflict
from metrics.controlling import selectors
from metrics.controlling.rollup import ALL, Scope
from requests_app import services
from requests_app.choices import EventKind, RequestState
from requests_app.models import Rating, RequestEvent, ServiceRequest
from tests.factories import CatalogueItemFactory, EmployeeFactory, UserFactory, request_row

BERLIN = ZoneInfo("Europe/Berlin")
JANUARY = {"first": datetime.date(2025, 1, 1), "last": datetime.date(2025, 1, 1)}


def fulfil(req, org):
    """Approve (if needed), take and complete a request through the services."""
    req.refresh_from_db()
    if req.state == RequestState.AWAITING_APPROVAL:
        services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="erledigt")
    req.refresh_from_db()
    return req


@pytest.fixture
def for_bob(org, manual_item, place_order):
    """Alice ordered a notebook for Bob; it is fulfilled."""
    return fulfil(place_order(manual_item, org.alice.user, beneficiary=org.bob), org)


def rate(client, req, **data):
    return client.post(f"/antraege/{req.pk}/bewertung/", data)


# --- the form and the service ------------------------------------------------------------------


@pytest.mark.django_db
def test_requester_rates_and_changes_the_rating(client, org, for_bob):
    client.force_login(org.alice.user)
    page = client.get(f"/antraege/{for_bob.pk}/").content.decode()
    assert f'action="/antraege/{for_bob.pk}/bewertung/"' in page
    assert "<fieldset" in page and "<legend>How satisfied" in page
    assert page.count('type="radio" name="score"') == 5

    response = rate(client, for_bob, score="4", comment="  Schnell und freundlich.  ")
    assert response.status_code == 302
    rating = Rating.objects.get(request=for_bob)
    assert (rating.score, rating.comment, rating.rated_by) == (4, "Schnell und freundlich.",
                                                               org.alice.user)  # fmt: skip
    page = client.get(response.url).content.decode()
    assert "Thank you for your rating." in page
    assert "You rated this request 4 of 5" in page
    assert "Change rating" in page
    assert 'value="4" required id="id_score_3" checked' in page  # the form shows the rating

    assert rate(client, for_bob, score="2", comment="").status_code == 302
    rating.refresh_from_db()
    assert (rating.score, rating.comment) == (2, "")
    assert Rating.objects.count() == 1
    events = list(RequestEvent.objects.filter(request=for_bob, kind=EventKind.RATE))
    assert [e.comment for e in events] == ["Score: 4 of 5", "Score: 2 of 5"]
    assert all(e.from_state == e.to_state == RequestState.FULFILLED for e in events)
    assert all(e.actor == org.alice.user for e in events)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"score": "0"}, "Select a valid choice"),
        ({"score": "6"}, "Select a valid choice"),
        ({"score": "abc"}, "Select a valid choice"),
        ({"score": "4.5"}, "Select a valid choice"),
        ({"score": ""}, "This field is required"),
        ({}, "This field is required"),
        ({"score": "3", "comment": "x" * 1001}, "at most 1000 characters"),
        ({"score": "3", "comment": "a\x00b"}, "Null characters are not allowed"),
    ],
)
def test_bad_input_is_400_with_the_form_errors(client, org, for_bob, data, error):
    client.force_login(org.alice.user)
    response = rate(client, for_bob, **data)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="error-summary" role="alert"' in body
    assert error in body
    assert not Rating.objects.exists()


@pytest.mark.django_db
def test_who_may_rate(client, org, for_bob):
    """The beneficiary, the approver, the fulfiller and IT admins see the request but may not
    rate it (403); someone who cannot see it gets 404, as for every request page."""
    for employee in (org.bob, org.manager, org.fulfiller, org.admin):
        client.force_login(employee.user)
        assert client.get(f"/antraege/{for_bob.pk}/").status_code == 200
        assert "bewertung" not in client.get(f"/antraege/{for_bob.pk}/").content.decode()
        assert rate(client, for_bob, score="5").status_code == 403
    client.force_login(org.outsider.user)
    assert rate(client, for_bob, score="5").status_code == 404
    assert client.get(f"/antraege/{for_bob.pk}/").status_code == 404
    client.logout()
    assert rate(client, for_bob, score="5").status_code == 302  # to the login page
    assert not Rating.objects.exists()
    with pytest.raises(PermissionDenied):
        services.request_rate(request_id=for_bob.pk, user=org.bob.user, score=5)


@pytest.mark.django_db
def test_only_fulfilled_requests_can_be_rated(client, org, manual_item, place_order):
    req = place_order(manual_item, org.alice.user)
    client.force_login(org.alice.user)
    assert "bewertung" not in client.get(f"/antraege/{req.pk}/").content.decode()
    response = rate(client, req, score="5")
    assert response.status_code == 302
    assert "Only fulfilled requests can be rated" in client.get(response.url).content.decode()
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_fail(request_id=req.pk, user=org.fulfiller.user, reason="kein Gerät")
    with pytest.raises(ActionConflict, match="Only fulfilled"):
        services.request_rate(request_id=req.pk, user=org.alice.user, score=5)
    assert not Rating.objects.exists()


@pytest.mark.django_db
def test_rating_window_closes_30_days_after_fulfilment(client, org, for_bob):
    services.request_rate(request_id=for_bob.pk, user=org.alice.user, score=3, comment="ok")
    ServiceRequest.objects.filter(pk=for_bob.pk).update(
        closed_at=timezone.now() - timedelta(days=30, minutes=1)
    )
    client.force_login(org.alice.user)
    page = client.get(f"/antraege/{for_bob.pk}/").content.decode()
    assert "You rated this request 3 of 5" in page and "ok" in page
    assert f'action="/antraege/{for_bob.pk}/bewertung/"' not in page
    response = rate(client, for_bob, score="5")
    assert "until 30 days after fulfilment" in client.get(response.url).content.decode()
    assert Rating.objects.get().score == 3
    ServiceRequest.objects.filter(pk=for_bob.pk).update(
        closed_at=timezone.now() - timedelta(days=29, hours=23)
    )
    services.request_rate(request_id=for_bob.pk, user=org.alice.user, score=5)
    assert Rating.objects.get().score == 5


@pytest.mark.django_db
@pytest.mark.parametrize("score", [0, 6, -1, True, 4.0, "4.5", "", None, "10", "٣"])
def test_service_refuses_bad_scores(org, for_bob, score):
    with pytest.raises(ValidationError) as info:
        services.request_rate(request_id=for_bob.pk, user=org.alice.user, score=score)
    assert "score" in info.value.error_dict
    assert not Rating.objects.exists()


@pytest.mark.django_db
def test_service_accepts_digits_and_checks_the_comment(org, for_bob):
    assert services.request_rate(request_id=for_bob.pk, user=org.alice.user, score="5").score == 5
    with pytest.raises(ValidationError) as info:
        services.request_rate(
            request_id=for_bob.pk, user=org.alice.user, score=1, comment="x" * 1001
        )
    assert "comment" in info.value.error_dict
    with pytest.raises(ValidationError):
        services.request_rate(request_id=for_bob.pk, user=org.alice.user, score=1, comment="\x00")
    assert Rating.objects.get().score == 5


@pytest.mark.django_db
def test_database_refuses_scores_out_of_range(org, for_bob):
    for score in (0, 6):
        with pytest.raises(IntegrityError), transaction.atomic():
            Rating.objects.create(request=for_bob, score=score, rated_by=org.alice.user)


@pytest.mark.django_db
def test_get_on_the_rating_url_is_not_allowed(client, org, for_bob):
    client.force_login(org.alice.user)
    assert client.get(f"/antraege/{for_bob.pk}/bewertung/").status_code == 405


# --- averages for controlling ------------------------------------------------------------------


def at(month, day, hour=12):
    return datetime.datetime(2025, month, day, hour, tzinfo=BERLIN)


def fulfilled_row(item, employee, closed):
    day = timedelta(days=1)
    return request_row(item, employee, submitted=closed - day, approved=closed - day, closed=closed)


class Ratings:
    def __init__(self, org):
        self.vpn = CatalogueItemFactory(name="VPN")
        self.notebook = CatalogueItemFactory(name="Notebook")
        alice = org.alice
        vpn1, vpn2, vpn3, _vpn4, nb, feb = ServiceRequest.objects.bulk_create(
            [
                fulfilled_row(self.vpn, alice, at(1, 10)),
                fulfilled_row(self.vpn, alice, at(1, 11)),
                fulfilled_row(self.vpn, alice, at(1, 12)),
                fulfilled_row(self.vpn, alice, at(1, 13)),
                fulfilled_row(self.notebook, alice, at(1, 14)),
                fulfilled_row(self.vpn, alice, at(2, 1, 0)),  # 2025-01-31 23:00 UTC
            ]
        )
        user = alice.user
        Rating.objects.bulk_create(
            [
                Rating(request=vpn1, score=5, comment="Super", rated_by=user,
                       rated_at=at(1, 11)),
                Rating(request=vpn2, score=4, rated_by=user, rated_at=at(1, 12)),
                Rating(request=vpn3, score=2, comment="Zu langsam", rated_by=user,
                       rated_at=at(1, 20)),
                Rating(request=nb, score=3, comment="Ging so", rated_by=user,
                       rated_at=at(1, 15)),
                Rating(request=feb, score=1, comment="Februar", rated_by=user,
                       rated_at=at(2, 2)),
            ]
        )  # fmt: skip


@pytest.fixture
def ratings(org):
    return Ratings(org)


@pytest.mark.django_db
def test_averages_and_distribution_by_hand(ratings):
    rows = selectors.satisfaction_per_service(ALL, **JANUARY)
    assert [
        (r.service, r.fulfilled, r.rated, r.average, r.distribution, r.commented, r.is_total)
        for r in rows
    ] == [
        ("Notebook", 1, 1, Decimal("3.00"), (0, 0, 1, 0, 0), 1, False),
        ("VPN", 4, 3, Decimal("3.67"), (0, 1, 0, 1, 1), 2, False),
        ("", 5, 4, Decimal("3.50"), (0, 1, 1, 1, 1), 3, True),
    ]
    february = {"first": datetime.date(2025, 2, 1), "last": datetime.date(2025, 2, 1)}
    rows = selectors.satisfaction_per_service(ALL, **february)
    assert [(r.service, r.average, r.score_1) for r in rows] == [
        ("VPN", Decimal("1.00"), 1),
        ("", Decimal("1.00"), 1),
    ]
    only_notebook = Scope(item_id=ratings.notebook.pk)
    rows = selectors.satisfaction_per_service(only_notebook, **JANUARY)
    assert [(r.service, r.average) for r in rows] == [("Notebook", 3), ("", 3)]
    assert selectors.satisfaction_per_service(Scope(nothing=True), **JANUARY) == []


@pytest.mark.django_db
def test_unrated_services_show_no_average(org):
    item = CatalogueItemFactory(name="Drucker")
    ServiceRequest.objects.bulk_create([fulfilled_row(item, org.alice, at(1, 5))])
    rows = selectors.satisfaction_per_service(ALL, **JANUARY)
    assert [(r.service, r.fulfilled, r.rated, r.average) for r in rows] == [
        ("Drucker", 1, 0, None),
        ("", 1, 0, None),
    ]


@pytest.mark.django_db
def test_comments_latest_first_in_the_period(ratings):
    comments = selectors.rating_comments(ServiceRequest.objects.all(), **JANUARY)
    assert [(c.request.item.name, c.score, c.comment) for c in comments] == [
        ("VPN", 2, "Zu langsam"),
        ("Notebook", 3, "Ging so"),
        ("VPN", 5, "Super"),
    ]


@pytest.mark.django_db
def test_comments_counted_by_the_figures_up_to_the_bound_latest_first(
    client, ratings, controller, monkeypatch
):
    """The pager's count is the satisfaction figures' ratings with a comment (exact, from
    the roll-up and the live months): no comment's request is looked up to count them. Past
    the bound the pager says "more than" and pages through the latest comments."""
    from metrics.controlling.views import CommentPaginator

    client.force_login(controller)
    january = {"period_from": "2025-01", "period_to": "2025-01"}
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/controlling/zufriedenheit/", january)
    (comments,) = response.context["extra_tables"]
    listed = selectors.rating_comments(ServiceRequest.objects.all(), **JANUARY)
    assert comments.paginator.count == 3 == len(listed) and comments.paginator.count_is_exact
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    assert not [sql for sql in counts if "requests_app_rating" in sql]
    monkeypatch.setattr(CommentPaginator, "count_limit", 2)
    response = client.get("/controlling/zufriedenheit/", january)
    (comments,) = response.context["extra_tables"]
    assert comments.paginator.count == 2 and comments.paginator.count_is_exact is False
    body = response.content.decode()
    assert "Zu langsam" in body and "Ging so" in body and "Super" not in body


@pytest.fixture
def controller(org):
    return UserFactory(username="controller", groups=[org.controlling])


@pytest.mark.django_db
def test_satisfaction_page_shows_averages_and_comments_without_names(
    client, org, ratings, controller
):
    client.force_login(controller)
    response = client.get(
        "/controlling/zufriedenheit/", {"period_from": "2025-01", "period_to": "2025-01"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    # Two tables, and the chart with its own data table.
    assert body.count("<caption>") == 3
    assert 'id="chart-satisfaction' in body
    assert "Best rated:" in body  # the chart's text alternative
    assert "3.67" in body and "3.50" in body
    assert "Zu langsam" in body and "Februar" not in body
    assert org.alice.user.get_full_name() not in body
    assert org.alice.user.username not in body
    german = client.get(
        "/controlling/zufriedenheit/",
        {"period_from": "2025-01", "period_to": "2025-01"},
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert "3,67" in german.content.decode()


@pytest.mark.django_db
def test_satisfaction_page_query_count_constant(client, org, ratings, controller):
    """More services, requests, ratings and comments (past one page of 25): same queries."""
    client.force_login(controller)
    params = {"period_from": "2025-01", "period_to": "2025-01", "comments-page": "2"}
    url = "/controlling/zufriedenheit/"
    counts = []
    for extra in (1, 40):
        employee = EmployeeFactory(department=org.department)
        items = [CatalogueItemFactory() for _ in range(extra)]
        created = ServiceRequest.objects.bulk_create(
            [fulfilled_row(item, employee, at(1, 1 + i % 28)) for i, item in enumerate(items)]
        )
        Rating.objects.bulk_create(
            [
                Rating(request=r, score=1 + i % 5, comment=f"K{i}", rated_by=employee.user)
                for i, r in enumerate(created)
            ]
        )
        client.get(url, params)  # warm
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_satisfaction_csv_by_hand(client, ratings, controller):
    client.force_login(controller)
    response = client.get(
        "/controlling/zufriedenheit.csv", {"period_from": "2025-01", "period_to": "2025-01"}
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = [line.split(";") for line in text.splitlines()]
    assert lines[1:] == [
        ["Notebook", "1", "1", "3,00", "0", "0", "1", "0", "0"],
        ["VPN", "4", "3", "3,67", "0", "1", "0", "1", "1"],
        ["All services", "5", "4", "3,50", "0", "1", "1", "1", "1"],
    ]
    assert "Super" not in text  # comments stay on the page
