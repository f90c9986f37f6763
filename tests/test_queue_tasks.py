"""The open tasks above the fulfilment queue, rendered in Python ({% task_rows %},
requests_app/templatetags/queue_tasks.py), equal the template loop they replace."""

import datetime

import pytest
from django.template import Context, Template
from django.utils import translation
from django.utils.safestring import mark_safe

from requests_app.templatetags.queue_tasks import task_rows

# The loop of templates/requests/queue.html before {% task_rows %}.
TEMPLATE_ROWS = (
    "{% load i18n %}{% for task in tasks %}\n"
    "      <tr>\n"
    '        <td>{% if task.kind == "collect" %}{% blocktranslate with item=task.item_name %}'
    "Collect {{ item }}{% endblocktranslate %}{% else %}{% blocktranslate with "
    "item=task.item_name %}Remove {{ item }} by hand{% endblocktranslate %}{% endif %}"
    "{% if task.reason %}<br><small>{{ task.reason }}</small>{% endif %}</td>\n"
    "        <td>{{ task.person_name }} ({{ task.personnel_number }}), "
    "{{ task.department_code }}</td>\n"
    "        <td><a href=\"{% url 'requests:detail' task.request_id %}\">{% blocktranslate "
    "with number=task.request_id %}Request #{{ number }}{% endblocktranslate %}</a><br>"
    "<small>{{ task.fulfilment_group_name }}</small></td>\n"
    '        <td>{{ task.created_at|date:"SHORT_DATE_FORMAT" }}</td>\n'
    "        <td>\n"
    '          <form method="post" action="{% url \'requests:task_done\' task.id %}" '
    'class="inline-form">{% csrf_token %}\n'
    '            <label for="task-note-{{ task.id }}">{% translate "Note (optional)" %}'
    "</label>\n"
    '            <input type="text" name="note" id="task-note-{{ task.id }}" maxlength="500">\n'
    '            <button type="submit" class="button">{% translate "Mark done" %}</button>\n'
    "          </form>\n"
    "        </td>\n"
    "      </tr>{% endfor %}"
)

UTC = datetime.UTC


def _task(number, **values):
    return {
        "id": number,
        "kind": "collect",
        "reason": "",
        "request_id": 40000 + number,
        # 23:30 UTC: the next day in Berlin, so the date is the local one.
        "created_at": datetime.datetime(2026, 12, number, 23, 30, tzinfo=UTC),
        "item_name": f"Laptop {number}",
        "person_name": "Anna Beispiel",
        "personnel_number": "m10001",
        "department_code": "32",
        "fulfilment_group_name": "IT-Service Desk",
        **values,
    }


TASKS = [
    _task(1),
    _task(2, kind="remove_access", reason="No longer needed"),
    _task(
        3,
        kind="remove_access",
        item_name='Zugang <GIS> & "Karten"',
        reason="<b>left</b> & gone",
        person_name="O'Brien & Söhne",
        personnel_number=None,
        department_code="",
        fulfilment_group_name="<Fachverfahren>",
    ),
    _task(4, request_id=1234567, id=98765),
    # The same local day as the first (the day's text kept), and the day before in Berlin.
    _task(5, created_at=datetime.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
    _task(6, created_at=datetime.datetime(2026, 12, 1, 22, 59, tzinfo=UTC)),
]


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("csrf_token", ["tok3n<&>", "NOTPROVIDED", None])
@pytest.mark.parametrize("tasks", [TASKS, TASKS[:1], []])
@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("grouped", [False, True])  # thousands separators
def test_task_rows_in_python_equal_the_templates(
    language, csrf_token, tasks, autoescape, grouped, settings
):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.USE_THOUSAND_SEPARATOR = grouped
    values = {"tasks": tasks} if csrf_token is None else {"tasks": tasks, "csrf_token": csrf_token}
    with translation.override(language):
        context = Context(values, autoescape=autoescape)
        expected = Template(TEMPLATE_ROWS).render(context)
        assert str(task_rows(context, tasks)) == expected
    if tasks and csrf_token == "tok3n<&>" and autoescape:
        assert 'value="tok3n&lt;&amp;&gt;"' in expected
        assert (
            ("1.234.567" if language == "de" else "1,234,567") in expected
            or not grouped
            or len(tasks) < 4
        )


def test_kept_rows_follow_the_tasks_values_and_the_page(settings):
    """A row's markup is kept (ROW_MEMO) under the task's values and what else it depends
    on: a kept row equals the template's, with the page's own CSRF token; a renamed person,
    another language or time zone renders anew."""
    settings.TIME_ZONE = "Europe/Berlin"

    def compared(tasks, token, language="de"):
        with translation.override(language):
            context = Context({"tasks": tasks, "csrf_token": token})
            expected = Template(TEMPLATE_ROWS).render(context)
            assert str(task_rows(context, tasks)) == expected
            return expected

    first = compared(TASKS, "first")
    assert compared(TASKS, "second") == first.replace('value="first"', 'value="second"')
    renamed = [{**TASKS[0], "person_name": "Berta <Neu>"}, *TASKS[1:]]
    assert "Berta &lt;Neu&gt;" in compared(renamed, "first")
    compared(TASKS, "first", "en")
    berlin = compared(TASKS[:1], "first")
    settings.TIME_ZONE = "UTC"  # task 1: opened on the 1st in UTC, the 2nd in Berlin
    assert compared(TASKS[:1], "first") != berlin
    # A safe text renders unescaped: such a row is not kept under a plain text's key.
    safe = [{**TASKS[2], "item_name": mark_safe("<i>GIS</i>")}]
    assert "<i>GIS</i>" in compared(safe, "first")


@pytest.mark.django_db
def test_the_task_section_is_kept_with_each_responses_token(client, org, manual_item, place_order):
    """The section of open tasks ({% task_section %}) is kept per process by the tasks'
    values: the markup rendered afresh, each response's own CSRF token in its forms, a task
    done or another one opened shown at once."""
    import re

    from django.utils import timezone

    from requests_app import services
    from requests_app.models import FulfilmentTask
    from requests_app.templatetags.queue_page import PAGE_MEMO
    from requests_app.templatetags.queue_tasks import SECTION_MEMO

    orders = [place_order(manual_item, org.alice.user) for _ in range(3)]
    tasks = [services.task_open(request_id=o.pk, kind="collect") for o in orders[:2]]
    client.force_login(org.admin.user)
    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]*)"')

    def page():
        content = client.get("/antraege/bearbeitung/").content.decode()
        assert len(set(token.findall(content))) == 1  # the response's token in every form
        return token.sub("", content), token.search(content).group(1)

    SECTION_MEMO.clear()
    PAGE_MEMO.clear()  # the page kept whole would not render the section
    fresh, first_token = page()
    assert len(SECTION_MEMO) == 1 and fresh.count('id="task-note-') == 2
    kept, second_token = page()
    assert kept == fresh and second_token != first_token and len(SECTION_MEMO) == 1
    FulfilmentTask.objects.filter(pk=tasks[0].pk).update(
        state=FulfilmentTask.State.DONE, done_at=timezone.now()
    )
    services.task_open(request_id=orders[2].pk, kind="collect")
    changed, _token = page()
    assert f'id="task-note-{tasks[0].pk}"' not in changed and changed.count('id="task-note-') == 2
    SECTION_MEMO.clear()
    PAGE_MEMO.clear()
    assert page()[0] == changed  # as rendered afresh
