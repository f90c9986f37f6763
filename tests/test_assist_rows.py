"""The approvals list's decision-support rows rendered in Python (assist/templatetags) from
the list's value rows give the markup of the template loop they replaced over model rows
(kept here as the reference) and of templates/assist/peers.html."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.template import Context, engines
from django.utils import translation

from assist.selectors import DecisionSupport, PeerFigures
from assist.templatetags.assist import _support_row, peer_figures
from catalogue.models import Employee
from requests_app.models import ServiceRequest

# The loop of templates/assist/approvals_support.html as it was (with the figures of a busy
# service, the most recent decisions from a day on, added).
ROWS = (
    "{% load i18n %}"
    "{% for support in rows %}\n"
    '    <li class="assist-row"><a href="{{ support.request.get_absolute_url }}">'
    "{% blocktranslate with number=support.request.pk item=support.request.item_name "
    "beneficiary=support.request.beneficiary.display_name %}"
    "#{{ number }} {{ item }} for {{ beneficiary }}{% endblocktranslate %}</a>:\n"
    '      {% include "assist/peers.html" with peers=support.peers %}\n'
    "      {% if support.decisions_since %}{% blocktranslate with count=support.decided_label "
    "since=support.since_label approved=support.approved_label "
    "rejected=support.rejected_label trimmed %}Last {{ count }} decisions (since {{ since }}): "
    "{{ approved }} approved, {{ rejected }} rejected.{% endblocktranslate %}{% else %}"
    "{% blocktranslate with approved=support.approved_label "
    "rejected=support.rejected_label trimmed %}Last 12 months: {{ approved }} approved, "
    "{{ rejected }} rejected.{% endblocktranslate %}{% endif %}"
    '{% if support.held_before %} {% translate "Held it before." %}{% endif %}</li>\n'
    "    {% endfor %}"
)

# Late in the evening in UTC, the next day in Berlin: the day is the portal's.
BUSY_SINCE = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)

PEERS = [
    PeerFigures("Bürgeramt", "", 0, 0, 5),  # too few
    PeerFigures('Amt <für> "Zahlen" & Co', "", 12, 1, 5),  # outlier
    PeerFigures("Bürgeramt", "Sachbearbeitung <1>", 1234, 1000, 5),
    PeerFigures("Bürgeramt", "", 9, 9, 5),
]


def supports(
    number, peers, approved, rejected, held, first="Anna <b>", last="Schmidt & Co", since=None
):
    """The same figures for a model row (the template's) and for the list's row as values
    (requests_app.tables.RequestRowTable's, what _support_row reads)."""
    user = get_user_model()(username="u<1>", first_name=first, last_name=last)
    request = ServiceRequest(pk=number, item_snapshot={"name": 'VPN <script> "x" & y'})
    request.beneficiary = Employee(user=user, personnel_number="1")
    row = {
        "id": number,
        "item_name": request.item_name,
        "beneficiary_first_name": first,
        "beneficiary_last_name": last,
        "beneficiary_username": user.username,
    }
    return tuple(
        DecisionSupport(
            request=r,
            peers=peers,
            approved=approved,
            rejected=rejected,
            held_before=held,
            decisions_since=since,
        )
        for r in (request, row)
    )


@pytest.mark.parametrize("language", ["de", "en"])
def test_rows_equal_the_template(language):
    models, values = zip(
        supports(7, PEERS[0], 0, 0, False),
        supports(12345, PEERS[1], 1001, 3, True, since=BUSY_SINCE),
        supports(1000000, PEERS[2], 999, 1500, False, first="", last=""),  # the username
        supports(8, PEERS[2], 150, 50, False, since=BUSY_SINCE),
        supports(42, PEERS[3], 1, 1, True, first="", last="Nur Nachname"),
        strict=True,
    )
    template = engines["django"].from_string(ROWS)
    with translation.override(language):
        assert "".join(_support_row(s) for s in values) == template.render({"rows": models})


@pytest.mark.parametrize("language", ["de", "en"])
def test_peer_figures_equal_the_template(language):
    template = engines["django"].engine.get_template("assist/peers.html")
    with translation.override(language):
        for peers in PEERS:
            assert peer_figures(peers) == template.render(Context({"peers": peers}))
