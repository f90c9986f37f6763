"""Last year's decisions on an item are counted up to a bound (assist/selectors.py): a
popular service has tens of thousands, and the figure says "more than …" past it."""

import pytest
from django.utils import translation

from assist import selectors
from tests.test_assist import team  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_counts_stop_past_the_bound_and_say_so(client, org, team, monkeypatch):  # noqa: F811
    monkeypatch.setattr(selectors, "DECISIONS_COUNTED", 2)
    for _ in range(4):
        team.decided(approve=True)
    team.decided(approve=False, comment="Kein dienstlicher Bedarf.")
    req = team.place_order(team.item, team.person().user)

    support = selectors.decision_support(req)
    assert (support.approved, support.rejected) == (3, 1)  # the bound plus one, then stop
    assert (support.approved_label, support.rejected_label) == ("more than 2", "1")
    with translation.override("de"):
        assert support.approved_label == "mehr als 2"

    client.force_login(org.manager.user)
    page = client.get(f"/antraege/{req.pk}/").content.decode()
    assert "more than 2 approved, 1 rejected" in page


def test_labels_group_thousands():
    support = selectors.DecisionSupport(
        request=None, peers=None, approved=1000, rejected=1001, held_before=False
    )
    with translation.override("de"):
        assert (support.approved_label, support.rejected_label) == ("1.000", "mehr als 1.000")
    with translation.override("en"):
        assert (support.approved_label, support.rejected_label) == ("1,000", "more than 1,000")
