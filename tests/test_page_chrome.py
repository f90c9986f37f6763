"""The page's chrome kept per process (itportal/templatetags/portal_layout.py): the same
markup as the partials render with the real values, never one person's menu, name or
token for another, the current page and the counts always right."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils.autoreload import file_changed

from itportal.templatetags import portal_layout
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# Names the partials set themselves, and words of the template language.
LOCAL = {"LANGUAGES", "languages", "language", "counter"}
WORDS = {"if", "elif", "else", "or", "and", "not", "in", "is", "None", "True", "False",
         "count", "with", "trimmed", "as", "for"}  # fmt: skip
TAGS = {"url", "static", "translate", "blocktranslate", "endblocktranslate", "plural",
        "endif", "else", "endfor", "csrf_token", "load", "get_available_languages",
        "get_language_info_list", "comment", "endcomment"}  # fmt: skip


@pytest.fixture(autouse=True)
def _nothing_kept():
    """Each test starts from an empty memo: what it checks is not hidden by another's."""
    portal_layout.CHROME_MEMO.clear()


def _names(template: str) -> set[str]:
    """The variables a template reads (first part of each dotted name)."""
    source = (ROOT / "templates" / template).read_text()
    source = re.sub(r"{#.*?#}|{% comment %}.*?{% endcomment %}", "", source, flags=re.S)
    names = set()
    for tag in re.findall(r"{[{%](.*?)[%}]}", source):
        words = re.sub(r"'[^']*'|\"[^\"]*\"", "", tag).split()
        if words and words[0] in TAGS:
            words = words[1:] if words[0] not in {"url", "static", "load"} else []
        for word in words:
            for name in re.findall(r"[A-Za-z_][\w.]*", word):
                if name not in WORDS and name not in TAGS:
                    names.add(name)
    return names


def _given(monkeypatch) -> dict[str, set[str]]:
    """Record the values each partial is rendered with (dotted names for dicts)."""
    given: dict[str, set[str]] = {}
    render = portal_layout.render_partial

    def recording(name, values, context):
        names = given.setdefault(name, set())
        for key, value in values.items():
            names.add(key)
            if type(value) is dict:
                names.update(f"{key}.{inner}" for inner in value)
        return render(name, values, context)

    monkeypatch.setattr(portal_layout, "render_partial", recording)
    return given


@pytest.mark.django_db
def test_the_partials_read_only_what_they_are_given(client, org, monkeypatch):
    given = _given(monkeypatch)
    client.force_login(org.admin.user)
    assert client.get("/antraege/").status_code == 200
    assert set(given) == {"portal/head.html", "portal/header.html"}
    for template, names in given.items():
        for name in _names(template):
            assert name in names or name.split(".")[0] in LOCAL, (template, name)


def _masked(content: bytes) -> str:
    return TOKEN.sub('name="csrfmiddlewaretoken" value="T"', content.decode())


def _direct(context, name, values, gaps):
    """The partial rendered with the real values: what the template alone makes."""
    return portal_layout.mark_safe(
        portal_layout.render_partial(name, portal_layout._placed(values, gaps), context)
    )


@pytest.mark.django_db
def test_kept_chrome_is_what_the_partials_render(org, manual_item, place_order, monkeypatch):
    place_order(manual_item, org.alice.user, beneficiary=org.bob)  # counts for two people
    org.alice.user.first_name, org.alice.user.last_name = "Änne <b>", "O'Neil & Co"
    org.alice.user.save()
    controller = UserFactory(groups=[org.controlling])
    chef = UserFactory(is_staff=True, is_superuser=True, username="chef")
    # Alice and the outsider differ in their counts only.
    people = [org.alice.user, org.outsider.user, org.manager.user, org.admin.user, controller,
              chef, None]  # fmt: skip
    pages = ["/", "/antraege/", "/antraege/genehmigungen/", "/antraege/bearbeitung/",
             "/controlling/", "/start/", "/gibt-es-nicht/", "/accounts/login/"]  # fmt: skip
    for person in people:
        client = Client()
        if person is not None:
            client.force_login(person)
        for language in ("de", "en"):
            client.cookies["django_language"] = language
            for url in pages:
                kept = [_masked(client.get(url).content) for _ in range(2)]
                with monkeypatch.context() as patch:
                    patch.setattr(portal_layout, "render_kept", _direct)
                    direct = _masked(client.get(url).content)
                assert kept[0] == kept[1] == direct, (person, language, url)
    assert portal_layout.CHROME_MEMO.keys()


@pytest.mark.django_db
def test_no_token_or_name_is_kept(org):
    org.bob.user.first_name = "Bertram"
    org.bob.user.save()
    seen = []
    for person in (org.alice.user, org.bob.user):
        client = Client(enforce_csrf_checks=True)
        client.force_login(person)
        pages = [client.get("/antraege/").content.decode() for _ in range(2)]
        tokens = [TOKEN.findall(page) for page in pages]
        # One token per response, in both forms; a new one for each response.
        assert len(set(tokens[0])) == 1 and tokens[0][0] != tokens[1][0]
        assert person.get_full_name() in pages[1]
        response = client.post(
            "/i18n/setlang/", {"csrfmiddlewaretoken": tokens[1][0], "language": "en", "next": "/"}
        )
        assert response.status_code == 302
        seen.append((person, pages[1], tokens[1][0]))
    (alice, alice_page, alice_token), (bob, bob_page, bob_token) = seen
    assert alice.get_full_name() not in bob_page and bob.get_full_name() not in alice_page
    memo = portal_layout.CHROME_MEMO
    kept = repr([(key, memo.get(key)) for key in memo])
    for secret in (alice_token, bob_token, alice.get_full_name(), bob.get_full_name()):
        assert secret not in kept


def test_a_changed_template_is_read_again():
    portal_layout.CHROME_MEMO.put(("x",), ("kept",))
    file_changed.send(sender=None, file_path=ROOT / "templates" / "base.html")
    assert portal_layout.CHROME_MEMO.get(("x",)) is None


def _menu(client, url="/antraege/", **headers) -> str:
    content = client.get(url, **headers).content.decode()
    start = content.index('<ul class="nav">')
    return content[start : content.index("</nav>", start)]


@pytest.mark.django_db
def test_each_person_gets_their_own_menu_and_page(client, org):
    controller = UserFactory(groups=[org.controlling])
    client.force_login(org.alice.user)
    assert "/controlling/" not in _menu(client)
    client.force_login(controller)
    assert "/controlling/" in _menu(client)
    client.force_login(org.alice.user)
    assert "/controlling/" not in _menu(client)
    mine = _menu(client, "/antraege/")
    assert re.search(r'href="/antraege/" aria-current="page"', mine)
    catalogue = _menu(client, "/")
    assert not re.search(r'href="/antraege/" aria-current="page"', catalogue)
    assert 'aria-current="page"' in catalogue


@pytest.mark.django_db
def test_the_counts_and_the_language_change_the_menu(client, org, manual_item, place_order):
    client.force_login(org.alice.user)
    before = _menu(client)
    place_order(manual_item, org.alice.user)
    after = _menu(client)
    assert before != after
    assert '<span class="count">1<' in after
    place_order(manual_item, org.alice.user)
    assert '<span class="count">2<' in _menu(client)
    english = _menu(client, HTTP_ACCEPT_LANGUAGE="en")
    client.cookies["django_language"] = "de"
    german = _menu(client)
    assert ("My requests" in english) != ("My requests" in german)
