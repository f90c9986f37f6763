"""The header's navigation kept per process ({% cache %} in templates/base.html): never one
person's menu for another, the current page and the counts always right."""

import re
from pathlib import Path

import pytest

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent

# What the cache key holds (templates/base.html); everything the block reads must be here.
KEY = {
    "LANGUAGE_CODE", "request.META.SCRIPT_NAME", "request.resolver_match.app_name",
    "request.resolver_match.url_name", "request.resolver_match.namespace", "is_it_admin",
    "is_controlling", "is_data_protection_officer", "user.is_staff", "cart_count", "nav",
}  # fmt: skip
WORDS = {"if", "elif", "else", "or", "and", "not", "in", "is", "None", "True", "False",
         "count", "with", "trimmed", "counter"}  # fmt: skip


def _cached_block() -> tuple[str, str]:
    source = (ROOT / "templates" / "base.html").read_text()
    match = re.search(r"{% cache (.*?) %}(.*?){% endcache %}", source, re.S)
    return match.group(1), match.group(2)


def test_everything_the_cached_navigation_reads_is_in_its_key():
    key, block = _cached_block()
    assert set(key.split()[2:]) == KEY
    block = re.sub(r"{#.*?#}", "", block)
    for tag in re.findall(r"{[{%](.*?)[%}]}", block):
        words = re.sub(r"'[^']*'|\"[^\"]*\"", "", tag).split()
        if words and words[0] in {"url", "translate", "blocktranslate", "endblocktranslate",
                                  "plural", "endif", "else"}:  # fmt: skip
            words = words[1:] if words[0] != "url" else []
        for word in words:
            for name in re.findall(r"[A-Za-z_][\w.]*", word):
                if name in WORDS:
                    continue
                assert name in KEY or name.split(".")[0] == "nav", name


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
    english = _menu(client, HTTP_ACCEPT_LANGUAGE="en")
    client.cookies["django_language"] = "de"
    german = _menu(client)
    assert ("My requests" in english) != ("My requests" in german)
