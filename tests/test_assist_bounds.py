"""Of last year's decisions on an item, the most recent DECISIONS_COUNTED are counted
(assist/selectors.py): a popular service has tens of thousands, and the figures then say
from which day they count."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone, translation

from assist import selectors
from requests_app.models import Approval, ServiceRequest
from tests.test_assist import team  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def decided_at(req, when, *, approve):
    # Only the time the decision is counted by: an approval's or a rejection's.
    moved = {"approved_at": when} if approve else {"closed_at": when}
    ServiceRequest.objects.filter(pk=req.pk).update(**moved)
    Approval.objects.filter(request=req).update(decided_at=when)


@pytest.fixture
def bound(monkeypatch):
    """Sets DECISIONS_COUNTED; the list's statement (compiled once per process, with the
    bound) is compiled again for it and after the test."""

    def set_bound(value):
        monkeypatch.setattr(selectors, "DECISIONS_COUNTED", value)
        selectors._row_figures_statement.cache_clear()

    yield set_bound
    selectors._row_figures_statement.cache_clear()


def test_the_most_recent_decisions_are_counted_and_say_since_when(
    client,
    org,
    team,  # noqa: F811
    bound,
):
    bound(3)
    now = timezone.now()
    days = {}
    # Decided 50, 40, 30, 20 and 10 days ago; the newest three count: 2 approved, 1 rejected.
    for ago, approve in ((50, False), (40, True), (30, True), (20, False), (10, True)):
        days[ago] = now - timedelta(days=ago)
        decided_at(team.decided(approve=approve, comment="Nein."), days[ago], approve=approve)
    req = team.place_order(team.item, team.person().user)

    support = selectors.decision_support(req)
    assert (support.approved, support.rejected) == (2, 1)
    assert abs(support.decisions_since - days[30]) < timedelta(seconds=1)
    with translation.override("de"):
        assert support.since_label == timezone.localdate(days[30]).strftime("%d.%m.%Y")
    with translation.override("en"):
        since = support.since_label

    client.force_login(org.manager.user)
    page = client.get(f"/antraege/{req.pk}/").content.decode()
    assert f"The last 3 decided requests for this service (since {since}): 2 approved" in page
    listed = client.get("/antraege/genehmigungen/").content.decode()
    assert f"Last 3 decisions (since {since}): 2 approved, 1 rejected." in listed

    # Fewer than the bound in the year: the year's figures, as before.
    bound(6)
    support = selectors.decision_support(req)
    assert (support.approved, support.rejected, support.decisions_since) == (3, 2, None)
    page = client.get(f"/antraege/{req.pk}/").content.decode()
    assert "in the last 12 months: 3 approved, 2 rejected." in page
    listed = client.get("/antraege/genehmigungen/").content.decode()
    assert "Last 12 months: 3 approved, 2 rejected." in listed


def test_labels_group_thousands():
    support = selectors.DecisionSupport(
        request=None,
        peers=None,
        approved=1000,
        rejected=12345,
        held_before=False,
        decisions_since=datetime(2026, 3, 4, 23, 30, tzinfo=UTC),
    )
    with translation.override("de"):
        labels = (support.approved_label, support.rejected_label, support.decided_label)
        assert labels == ("1.000", "12.345", "13.345")
        assert support.since_label == "05.03.2026"  # the portal's day (Berlin)
    with translation.override("en"):
        assert (support.approved_label, support.rejected_label) == ("1,000", "12,345")
