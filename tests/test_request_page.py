"""The request page's timeline written in Python ({% timeline_items %}) gives the markup of
the template loop it replaced (kept here as the reference), in both languages."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.template import Context, engines
from django.utils import timezone, translation

from requests_app.choices import EventKind, RequestState
from requests_app.models import RequestEvent
from requests_app.templatetags.request_page import timeline_items

# The loop of templates/requests/detail.html as it was.
TIMELINE = (
    "{% load i18n %}"
    "{% for event in timeline %}\n"
    "    <li>\n"
    "      <time datetime=\"{{ event.created_at|date:'c' }}\">"
    '{{ event.created_at|date:"SHORT_DATETIME_FORMAT" }}</time>\n'
    '      <strong>{% if event.kind == "approve" and event.to_state == "awaiting_approval" %}'
    '{% translate "Step approved" %}{% else %}{{ event.get_kind_display }}{% endif %}</strong>\n'
    "      {% if event.from_state and event.from_state != event.to_state %}"
    "({{ event.get_from_state_display }} → {{ event.get_to_state_display }})"
    "{% elif not event.from_state %}({{ event.get_to_state_display }}){% endif %}\n"
    "      {% if event.actor %}– {{ event.actor.get_full_name|default:event.actor.username }}"
    "{% if event.on_behalf_of %} {% blocktranslate with name=event.on_behalf_of.get_full_name %}"
    "on behalf of {{ name }}{% endblocktranslate %}{% endif %}{% else %}– "
    '{% translate "system" %}{% endif %}\n'
    '      {% if event.comment %}<p class="pre">{{ event.comment }}</p>{% endif %}\n'
    "    </li>\n"
    "    {% endfor %}"
)

S = RequestState


def events() -> list[RequestEvent]:
    User = get_user_model()
    anna = User(username="anna<1>", first_name="Anna <b>", last_name="Schmidt & Co")
    nameless = User(username="x&y", first_name="", last_name="")
    boss = User(username="boss", first_name="Björn", last_name='"Boss"')
    # Late in the evening in UTC, the next day in Berlin; summer and winter time; a naive
    # time (shown as it is) and one with microseconds.
    times = [
        datetime.datetime(2026, 3, 4, 23, 30, tzinfo=datetime.UTC),
        datetime.datetime(2026, 7, 1, 8, 5, 7, 123456, tzinfo=datetime.UTC),
        datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=ZoneInfo("America/New_York")),
        datetime.datetime(2026, 1, 2, 3, 4),
    ]
    shapes = [
        (EventKind.CREATE, "", S.DRAFT, anna, None, ""),
        (EventKind.SUBMIT, S.DRAFT, S.SUBMITTED, nameless, None, "<script>x</script>"),
        (EventKind.START_APPROVAL, S.SUBMITTED, S.AWAITING_APPROVAL, None, None, ""),
        ("approve", S.AWAITING_APPROVAL, S.AWAITING_APPROVAL, boss, anna, "ok & fine"),
        ("approve", S.AWAITING_APPROVAL, S.APPROVED, anna, nameless, "Zeile 1\nZeile 2"),
        ("comment", S.APPROVED, S.APPROVED, anna, None, "Frage?"),
        ("no-such-kind", "gone", "other", None, None, ""),
        (EventKind.CREATE, "", "", None, None, ""),
    ]
    made = []
    for index, (kind, before, after, actor, principal, comment) in enumerate(shapes):
        event = RequestEvent(
            kind=kind,
            from_state=before,
            to_state=after,
            comment=comment,
            created_at=times[index % len(times)],
        )
        event.actor, event.on_behalf_of = actor, principal
        made.append(event)
    return made


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC"])
def test_the_timeline_in_python_is_the_templates(language, zone, settings):
    settings.USE_TZ = True
    timeline = events()
    with translation.override(language), timezone.override(zone):
        expected = engines["django"].from_string(TIMELINE).render({"timeline": timeline})
        assert str(timeline_items(timeline)) == expected
        page = engines["django"].from_string("{% load request_page %}{% timeline_items t %}")
        assert page.render(Context({"t": timeline}).flatten()) == expected
    assert "&lt;script&gt;" in expected and "Anna &lt;b&gt;" in expected
    assert timeline_items([]) == ""
