"""The request page's timeline, progress line and approval steps written in Python
({% timeline_items %}, {% progress_items %}, {% approval_rows %}) give the markup of the
template loops they replaced (kept here as the reference), in both languages; so does the
rating form kept per process ({% rating_fields %})."""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.template import Context, engines
from django.utils import timezone, translation

from catalogue.choices import ApproverKind
from requests_app.choices import EventKind, RequestState
from requests_app.models import Approval, RequestEvent
from requests_app.progress import Step
from requests_app.templatetags.request_page import (
    CONTENT_MEMO,
    RATING_MEMO,
    approval_rows,
    progress_items,
    rating_fields,
    timeline_items,
)
from requests_app.views import RatingForm

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


# The progress line's and the approvals table's loops of templates/requests/detail.html as
# they were.
PROGRESS = (
    "{% load i18n %}"
    '{% for step in progress_steps %}<li class="is-{{ step.status }}"'
    '{% if step.status == "current" %} aria-current="step"{% endif %}>{{ step.label }}'
    '{% if step.status == "done" %}<span class="visually-hidden"> ({% translate "done" %})'
    '</span>{% elif step.status == "todo" %}<span class="visually-hidden"> '
    '({% translate "still to come" %})</span>{% endif %}</li>{% endfor %}'
)
APPROVALS = (
    "{% load i18n %}{% for a in approvals %}\n"
    "      <tr>\n"
    '        <td data-label="{% translate "Step" %}">{{ a.position }}. '
    "{{ a.label|default:a.get_approver_kind_display }}</td>\n"
    '        <td data-label="{% translate "Approver" %}">{{ a.approver_display }}'
    "{% if a.routing_note %}<br><small>{{ a.routing_note }}</small>{% endif %}</td>\n"
    '        <td data-label="{% translate "Status" %}">{{ a.get_status_display }}</td>\n'
    '        <td data-label="{% translate "Decision" %}">{% if a.decided_by %}'
    "{% if a.on_behalf_of %}{% blocktranslate with by=a.decided_by.get_full_name "
    'for=a.on_behalf_of.get_full_name when=a.decided_at|date:"SHORT_DATETIME_FORMAT" %}'
    "decided by {{ by }} on behalf of {{ for }} on {{ when }}{% endblocktranslate %}"
    "{% else %}{% blocktranslate with by=a.decided_by.get_full_name "
    'when=a.decided_at|date:"SHORT_DATETIME_FORMAT" %}decided by {{ by }} on {{ when }}'
    "{% endblocktranslate %}{% endif %}{% if a.comment %}: „{{ a.comment }}“{% endif %}"
    "{% endif %}</td>\n"
    "      </tr>{% endfor %}"
)


def approvals() -> list[Approval]:
    User = get_user_model()
    anna = User(pk=1, username="anna<1>", first_name="Anna <b>", last_name="Schmidt & Co")
    nameless = User(pk=2, username="x&y", first_name="", last_name="")
    group = Group(pk=3, name="IT <Leitung> & Co")
    shapes = [
        # (kind, label, approver, group, note, status, decider, principal, when, comment)
        (ApproverKind.LINE_MANAGER, "", anna, None, "", "pending", None, None, None, ""),
        ("cost_centre_owner", "Budget <prüfen>", nameless, None, "Vertretung & Co", "approved",
         anna, None, datetime.datetime(2026, 3, 4, 23, 30, tzinfo=datetime.UTC), "ok & gut"),
        ("group", "", None, group, "", "rejected", nameless, anna,
         datetime.datetime(2026, 7, 1, 8, 5, 7, 123456, tzinfo=datetime.UTC), "<script>"),
        ("no-such-kind", "", anna, None, "", "no-such-status", anna, None,
         datetime.datetime(2026, 1, 2, 3, 4), ""),
        ("group", "Zwei", None, group, "", "approved", anna, nameless, None, "Zeile 1\nZeile 2"),
    ]  # fmt: skip
    made = []
    for index, shape in enumerate(shapes, start=1):
        kind, label, approver, in_group, note, status, decider, principal, when, comment = shape
        approval = Approval(
            position=index * 1000 if index == 5 else index,
            approver_kind=kind,
            label=label,
            routing_note=note,
            status=status,
            decided_at=when,
            comment=comment,
        )
        approval.approver, approval.decided_by, approval.on_behalf_of = approver, decider, principal
        if in_group is not None:
            approval.group = in_group
        made.append(approval)
    return made


STEPS = [
    Step("Eingereicht", "done"),
    Step("Genehmigung durch <Paul> & Co", "current"),
    Step("Umsetzung", "todo"),
    Step("Erledigt: Abgelehnt", "stopped"),
    Step("", "other"),
]


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC"])
def test_the_progress_and_approvals_in_python_are_the_templates(language, zone, settings):
    settings.USE_TZ = True
    steps, rows = STEPS, approvals()
    with translation.override(language), timezone.override(zone):
        expected = engines["django"].from_string(PROGRESS).render({"progress_steps": steps})
        assert str(progress_items(steps)) == expected
        expected = engines["django"].from_string(APPROVALS).render({"approvals": rows})
        assert str(approval_rows(rows)) == expected
        page = engines["django"].from_string("{% load request_page %}{% approval_rows a %}")
        assert page.render(Context({"a": rows}).flatten()) == expected
    assert "&lt;script&gt;" in expected and "Anna &lt;b&gt;" in expected
    assert "IT &lt;Leitung&gt;" in expected and "„ok &amp; gut“" in expected
    assert approval_rows([]) == "" and progress_items([]) == ""


# The rating form's part of templates/requests/detail.html as it was.
RATING = (
    '{% include "portal/form_errors.html" with form=rating_form %}\n'
    '    {% for field in rating_form %}{% include "portal/field.html" %}{% endfor %}'
)


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_kept_rating_fields_are_the_templates(language):
    RATING_MEMO.clear()
    template = engines["django"].from_string(RATING)
    page = engines["django"].from_string("{% load request_page %}{% rating_fields f %}")
    offered = [None, {"score": 4, "comment": "gut <b>& schnell</b>"}, {"score": 2, "comment": ""}]
    with translation.override(language):
        for initial in [*offered, *offered]:  # the second time from the memo
            form = RatingForm(initial=initial)
            expected = template.render({"rating_form": form})
            assert page.render({"f": form}) == expected
            assert str(rating_fields(form)) == expected
        assert len(RATING_MEMO.keys()) == len(offered)
        bound = RatingForm(data={"score": "9", "comment": "x" * 5000})
        expected = template.render({"rating_form": bound})
        assert 'class="error-summary"' in expected
        assert str(rating_fields(bound)) == expected
        assert len(RATING_MEMO.keys()) == len(offered)  # a form with errors is not kept


# --- the request page's own markup kept per process ({% request_content %}) -------------

CSRF_VALUE = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+(")')


def _page(client, url, language):
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return CSRF_VALUE.sub(r"\1-\2", response.content.decode())


@pytest.mark.django_db
def test_the_kept_request_page_follows_every_change(org, manual_item, place_order):
    """Through a request's life (a comment, a decision, a renamed person, taken, on hold,
    resumed, fulfilled, rated), every viewer's page in both languages, kept from the view
    before, equals the page rendered afresh; each viewer has their own."""
    from django.test import Client

    from requests_app import services

    viewers = {}
    for name in ("alice", "manager", "fulfiller", "admin"):
        viewers[name] = Client()
        viewers[name].force_login(getattr(org, name).user)
    req = place_order(manual_item, org.alice.user, justification="Weil <b>nötig</b>")
    url = f"/antraege/{req.pk}/"
    alice = org.alice.user
    changes = [
        lambda: services.request_comment(request_id=req.pk, user=alice, comment="Eilt & so"),
        lambda: services.request_approve(request_id=req.pk, user=org.manager.user, comment="ok"),
        lambda: type(alice).objects.filter(pk=alice.pk).update(first_name="Alicia"),
        lambda: services.request_take(request_id=req.pk, user=org.fulfiller.user),
        lambda: services.request_hold(
            request_id=req.pk, user=org.fulfiller.user, reason="requester", note="Raum?"
        ),
        lambda: services.request_comment(request_id=req.pk, user=alice, comment="Raum 3"),
        lambda: services.request_complete(request_id=req.pk, user=org.fulfiller.user),
        lambda: services.request_rate(request_id=req.pk, user=alice, score=4, comment="gut"),
    ]
    pages = [
        (name, client, language) for name, client in viewers.items() for language in ("de", "en")
    ]
    seen = set()
    kept_before = 0
    for change in [lambda: None, *changes]:
        change()
        kept_before = max(kept_before, len(CONTENT_MEMO))
        # Each viewer's page kept from the step before (where the key did not change).
        kept = [_page(client, url, language) for _, client, language in pages]
        CONTENT_MEMO.clear()
        fresh = [_page(client, url, language) for _, client, language in pages]
        again = [_page(client, url, language) for _, client, language in pages]
        assert kept == fresh == again
        seen.update(fresh)
    assert "Alicia" in fresh[0] and "Raum 3" in fresh[0] and "4 von 5" in fresh[0]
    assert kept_before >= 6  # most pages were kept (not the deciding manager's and admin's)
    assert len(seen) > 30  # the pages differ by viewer, language and step


@pytest.mark.django_db
def test_the_kept_request_page_holds_no_token_and_no_other_viewers_page(
    client, org, manual_item, place_order
):
    """The CSRF token is put in per response, never kept; a viewer's kept markup is under
    their own key (the buttons differ: the requester may cancel, the admin may not)."""
    req = place_order(manual_item, org.alice.user)
    url = f"/antraege/{req.pk}/"
    CONTENT_MEMO.clear()
    client.force_login(org.alice.user)
    first = client.get(url)
    token = first.context["csrf_token"]
    assert str(token) in first.content.decode()
    for parts in map(CONTENT_MEMO.get, CONTENT_MEMO.keys()):
        assert all(str(token) not in part for part in parts)
    second = client.get(url).content.decode()
    assert second.count('name="csrfmiddlewaretoken"') == first.content.decode().count(
        'name="csrfmiddlewaretoken"'
    )
    assert len(CONTENT_MEMO) == 1
    client.force_login(org.admin.user)
    client.get(url)
    assert len(CONTENT_MEMO) == 2
    keys = CONTENT_MEMO.keys()
    assert keys[0][0][0] == org.alice.user.pk and keys[1][0][0] == org.admin.user.pk


@pytest.mark.django_db
def test_a_rating_form_with_errors_is_not_kept(client, org, manual_item, place_order):
    from requests_app import services

    req = place_order(manual_item, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user)
    client.force_login(org.alice.user)
    CONTENT_MEMO.clear()
    response = client.post(f"/antraege/{req.pk}/bewertung/", {"score": "9"})
    assert response.status_code == 400
    assert len(CONTENT_MEMO) == 0
    page = client.get(f"/antraege/{req.pk}/").content.decode()
    assert 'name="score"' in page and "errorlist" not in page
