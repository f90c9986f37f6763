"""The hostile-input corpus and the machinery that feeds it everywhere (test_hostile_input.py).

Covering, not crossing: each corpus *class* is one request per form, endpoint or list
page in which every field gets a value of that class (field i the class's value
i + offset mod n), so every field sees every class and every value reaches a field; for
the classes of distinct edge cases (numbers, dates) one request per value, so every
field sees every such value. That is 22 requests per endpoint, not fields × values.
Forms are found by crawling the pages as each role and parsing their HTML, API writes
from the OpenAPI document, query parameters from the pages' GET forms and the schema: a
new page or endpoint is covered without a line here.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, urlencode, urljoin, urlsplit

from django.core.signals import got_request_exception
from django.db import connection
from django.urls import Resolver404, resolve

MARKER = "hostile-x7"  # a tag name no template contains: seen unescaped = reflected markup
TEXT_ATTACK = (
    f"<{MARKER} onerror=alert(1)>'\";--/*)(uid=*))(|(cn=*\\00"
    "\r\nX-Hostile: injected\r\n\r\n../../../etc/passwd %s%n{0}{{7*7}}${7*7}"
)

# name -> values. Strings only: the API side turns them into JSON of the field's type.
CORPUS: dict[str, list[str]] = {
    "markup, SQL, LDAP, CRLF, traversal": [
        TEXT_ATTACK,
        f'"><{MARKER}>x</{MARKER}><svg/onload=alert(1)>',
        "x') OR 1=1; DROP TABLE catalogue_catalogueitem; --",
        "*)(objectClass=*)\\2a\\28\\29\\5c,cn=admin,dc=example",
        "..\\..\\windows\\win.ini%2e%2e%2f%00.json",
    ],
    "unicode: surrogates, confusables, bidi": [
        "a\ud800b",
        "\udfff",
        "ａｄｍｉｎ\u202egnp.exe\u200b\ufeff",
        "Å\u0301" * 500,
        "ΑΒΕΖ Іо ⅰ ﬁ 𝐀 \U0001f4a9",
    ],
    "NUL and control characters": ["a\x00b", "\x00", "\x1b[31m\x07\x08", "\x7f\x85\u2028"],
    "huge": ["A" * 20_000, "9" * 5_000, "é" * 10_000],
    "numbers": ["-1", "0", "99999999999999999999999999", "1e309", "NaN", "-0.000001", "0x1F"],
    "dates": [
        "9999-12-31",
        "0001-01-01",
        "10000-01-01",
        "2024-02-30",
        "9999-12-31T23:59:59+14:00",
        "0000-00-00",
        "9999-12",
    ],
    "regular expressions": ["(?i)abc", "(?x) a b # c", "(a|aa)+b", "[", "(?P<x", "a{99999}"],
    "deep nesting": ["[" * 5_000, '{"a":' * 2_000, "((((((((((" * 500],
    "empty and blank": ["", " ", "\t\r\n", "\u00a0"],
    "URLs and schemes": [
        "javascript:alert(1)",
        "//evil.example/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "file:///etc/passwd",
        "https://[::ffff:0:a9fe:a9fe]/x",
    ],
}
CLASSES = list(CORPUS)
# Classes whose values are distinct edge cases, each of which every field must see (one
# request per value); in the others the values are variations of one attack (rotated).
EVERY_VALUE = {"numbers", "dates"}


def plan() -> list[tuple[str, int]]:
    """(class, offset) per request: field i gets the class's value i + offset."""
    steps = []
    for salt, klass in enumerate(CLASSES):
        offsets = range(len(CORPUS[klass])) if klass in EVERY_VALUE else [salt]
        steps += [(klass, offset) for offset in offsets]
    return steps


def value_for(klass: str, index: int) -> str:
    values = CORPUS[klass]
    return values[index % len(values)]


def wire(value: str) -> bytes:
    """UTF-8 as a hostile client sends it: lone surrogates go out as their raw bytes."""
    return value.encode("utf-8", "surrogatepass")


# --- HTML forms -----------------------------------------------------------------------------


@dataclass
class Form:
    page: str
    method: str
    action: str
    multipart: bool
    fields: dict[str, str] = field(default_factory=dict)  # name -> kind (text, select, file…)
    fixed: list[tuple[str, str]] = field(default_factory=list)  # submit buttons kept as sent

    def signature(self, route: str) -> tuple:
        return (route, self.method, tuple(sorted(self.fields)))


class _FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        href = a.get("href", "")
        if tag == "a" and href and not href.startswith(("#", "mailto:", "javascript:")):
            link = urljoin(self.page, href)
            if link.startswith("/"):  # same site (absolute URLs elsewhere are not followed)
                self.links.append(link)
        if tag == "form":
            self._form = Form(
                page=self.page,
                method=a.get("method", "get").lower(),
                action=a.get("action") or self.page,
                multipart="multipart" in a.get("enctype", ""),
            )
            self.forms.append(self._form)
            return
        form, name = self._form, a.get("name")
        if form is None or not name or name == "csrfmiddlewaretoken":
            return
        kind = a.get("type", "text").lower() if tag == "input" else tag
        if kind in ("submit", "button", "image"):
            if not form.fixed:
                form.fixed.append((name, a.get("value", "")))
            return
        if tag in ("input", "select", "textarea"):
            form.fields.setdefault(name, kind)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse_page(page: str, html: str) -> tuple[list[Form], list[str]]:
    parser = _FormParser(page)
    parser.feed(html)
    return parser.forms, parser.links


def form_body(form: Form, klass: str, salt: int) -> tuple[bytes, str]:
    """The form filled with one corpus class: (body, content type)."""
    pairs = [
        (name, value_for(klass, i + salt)) for i, name in enumerate(sorted(form.fields))
    ] + form.fixed
    if not form.multipart:
        body = urlencode([(wire(k), wire(v)) for k, v in pairs]).encode("ascii")
        return body, "application/x-www-form-urlencoded"
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in pairs:
        if form.fields.get(name) == "file":
            head = f'Content-Disposition: form-data; name="{name}"; filename="hostile.json"'
            parts.append(f"--{boundary}\r\n{head}\r\nContent-Type: application/json\r\n\r\n")
        else:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n')
        parts.append(value)
        parts.append("\r\n")
    parts.append(f"--{boundary}--\r\n")
    return wire("".join(parts)), f"multipart/form-data; boundary={boundary}"


def query_string(names, klass: str, salt: int) -> str:
    return urlencode([(wire(n), wire(value_for(klass, i + salt))) for i, n in enumerate(names)])


# --- routes ---------------------------------------------------------------------------------


def route_of(path: str) -> str | None:
    """The URL pattern a path belongs to (its 'endpoint'), or None outside the URLconf."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    return match.route


def all_routes(resolver, prefix="") -> list[str]:
    routes = []
    for entry in resolver.url_patterns:
        if hasattr(entry, "url_patterns"):
            routes += all_routes(entry, prefix + str(entry.pattern))
        else:
            routes.append(prefix + str(entry.pattern))
    return routes


# --- checks ---------------------------------------------------------------------------------


class RowCounts:
    """Every table's row count in one query: a rejected request must leave them all alone."""

    IGNORED = {"django_session"}
    # Logs of refused attempts, written by design (django-axes counts failed logins).
    IGNORED_PREFIXES = ("axes_",)

    def __init__(self):
        tables = sorted(
            t
            for t in set(connection.introspection.table_names()) - self.IGNORED
            if not t.startswith(self.IGNORED_PREFIXES)
        )
        self.tables = tables
        # Table names from the database's own catalogue, quoted: nothing user-made in here.
        quoted = [connection.ops.quote_name(t) for t in tables]
        counts = [f"(SELECT count(*) FROM {name})" for name in quoted]  # noqa: S608
        self.sql = "SELECT " + ", ".join(counts)

    def __call__(self) -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql)
            return dict(zip(self.tables, cursor.fetchone(), strict=True))


@dataclass
class Report:
    """Counts what was sent and collects every broken promise, with the value class."""

    title: str
    endpoints: set = field(default_factory=set)
    fields: set = field(default_factory=set)
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _exceptions: list = field(default_factory=list)
    slowest: tuple = (0.0, "")
    _last: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        got_request_exception.connect(self._caught, weak=False)

    def _caught(self, sender, request=None, **kwargs):
        import sys

        exc = sys.exc_info()[1]
        self._exceptions.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    def close(self):
        got_request_exception.disconnect(self._caught)

    def check(self, response, *, where: str, klass: str, counts=None, before=None):
        """No 5xx, no unescaped marker, no injected header; on rejection nothing saved."""
        self.requests += 1
        now = time.monotonic()
        self.slowest = max(self.slowest, (now - self._last, f"{where} [{klass}]"))
        self._last = now
        status = response.status_code
        self.statuses[status // 100 * 100] += 1
        label = f"{where} [{klass}] → {status}"
        if status >= 500:
            cause = self._exceptions[-1] if self._exceptions else "no exception recorded"
            self.problems.append(f"{label}: server error ({cause})")
        content_type = response.get("Content-Type", "")
        body = getattr(response, "content", b"")
        if "html" in content_type and f"<{MARKER}".encode() in body:
            self.problems.append(f"{label}: markup reflected unescaped")
        for header, value in response.items():
            if "X-Hostile" in header or "\n" in value or "\r" in value:
                self.problems.append(f"{label}: header injected ({header})")
        if counts is not None and before is not None:
            # A page answers a refused form with 200 and the form again; the API answers a
            # done action with 200 (a refused one with 4xx), so there only 4xx is a refusal.
            is_api = response.request.get("PATH_INFO", "").startswith("/api/")
            rejected = status >= 400 or (
                status == 200 and response.request["REQUEST_METHOD"] != "GET" and not is_api
            )
            if rejected:
                after = counts()
                changed = {t: (before[t], after[t]) for t in after if after[t] != before[t]}
                if changed:
                    self.problems.append(f"{label}: rejected but rows changed {changed}")

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        statuses = ", ".join(f"{k // 100}xx: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"hostile input, {self.title}: {len(self.endpoints)} endpoints, "
            f"{len(self.fields)} fields, {len(CLASSES)} value classes "
            f"({sum(map(len, CORPUS.values()))} values), {self.requests} requests "
            f"({statuses}), {len(self.problems)} problems, {seconds:.1f} s; "
            f"slowest {self.slowest[0]:.2f} s: {self.slowest[1][:80]}"
        )


def json_value(schema: dict, klass: str, index: int, components: dict, depth: int = 0):
    """A JSON value of the schema's shape carrying the corpus class (type confusion included)."""
    schema = deref(schema, components)
    text = value_for(klass, index)
    kind = schema.get("type")
    if depth > 3:
        return text
    if "oneOf" in schema or "anyOf" in schema or "allOf" in schema:
        options = schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf")
        return json_value(options[0], klass, index, components, depth + 1)
    if kind in ("integer", "number"):
        if klass == "numbers":
            return [-1, 0, 2**70, -(2**63), 1e308, -0.000001, 2**31][index % 7]
        if klass == "deep nesting":
            return deep_json(40)
        return text  # a string where a number belongs
    if kind == "boolean":
        return text if klass != "numbers" else 2
    if kind == "array":
        return [json_value(schema.get("items", {}), klass, index, components, depth + 1)]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        if not props:  # free-form mapping (e.g. answers): hostile keys and values
            return {text[:100]: text, "room": text}
        return {
            name: json_value(sub, klass, index + i, components, depth + 1)
            for i, (name, sub) in enumerate(props.items())
            if not deref(sub, components).get("readOnly")
        }
    return text


def deref(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def deep_json(depth: int):
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def dumps(body) -> str:
    """JSON text; lone surrogates stay escaped (\\ud800), as a hostile client sends them."""
    return json.dumps(body, ensure_ascii=True)


def fill_path(template: str, params: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(str(params[m.group(1)])), template)


SUMMARY = "hostile input"  # the summary lines after the run (tests/conftest.py)
