"""Hostile input never crashes: the corpus (tests/hostile_support.py) against every surface.

Four tests, each one surface, so pytest-xdist runs them side by side:
- every HTML form the roles can reach (crawled, parsed), POSTed once per value class;
- every page's query parameters (its GET forms' fields plus the generic ones);
- every API write in the OpenAPI document, with bodies of the schema's shape;
- every API read's query parameters.
Each request must answer without a server error, without reflecting the marker tag
unescaped, without an injected header, and a rejected write must leave every table's
row count as it was. Each test prints a summary line (endpoints, fields, requests,
problems, seconds). A new page, form or endpoint is covered without changes here; a
route that the crawl cannot reach fails test_every_route_is_reached until it is linked
or listed in UNREACHED with the reason.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import get_resolver

from api import services as token_services
from catalogue.choices import FieldType
from catalogue.models import Bundle, BundleItem
from itportal import roles
from notifications.models import OutgoingMail
from requests_app.models import CartLine, ServiceRequest, Submission, Substitution
from tests.api_support import token_client
from tests.factories import FormFieldFactory
from tests.hostile_support import (
    SUMMARY,
    Report,
    RowCounts,
    all_routes,
    dumps,
    fill_path,
    form_body,
    json_value,
    parse_page,
    plan,
    query_string,
    route_of,
)
from webhooks import services as webhook_services
from webhooks.choices import EventType

pytestmark = pytest.mark.django_db

# Never followed: ending the session, static files, the API (its own tests below).
SKIP_PREFIXES = ("/static/", "/api/", "/accounts/logout/", "/admin/logout/")
# Routes the crawl need not reach, and why.
UNREACHED = {
    "healthz": "no input",
    "readyz": "no input",
    "metrics": "Prometheus scrape: a token header, no parameters",
    "accounts/login/": "logged-in users are sent on; login input is tests/test_pages.py's",
    "accounts/logout/": "would end the crawling session",
    "katalog/austausch/schema/1.0.json": "a static document",
    "branding.css": "the city's colours from the settings; no input (?v= only renews caches)",
    "favicon.ico": "a redirect to the static icon, no input",
    "antraege/<int:pk>/fortsetzen/": "shown only on a request on hold; the same view as "
    "anhalten/ and kommentar/ (a text posted to a service), reached with hostile values there; "
    "tests/test_sla_holds.py posts to it",
    "katalog/verwaltung/vorschau/": "the editor's script posts the editor's form there (tested "
    "at the editor's own route and in tests/test_catalogue_editor.py)",
}
# Query parameters every page is tried with, besides its own GET forms' fields.
GENERIC_PARAMS = ["page", "per_page", "sort", "q", "next", "o", "p", "_changelist_filters"]
PER_ROUTE = 4  # pages per route with parameters (a request in several states)


@pytest.fixture(autouse=True)
def _quiet():
    """Thousands of expected 4xx answers: log only the errors (5xx), which matter here."""
    loggers = [logging.getLogger(n) for n in ("django.request", "django.security", "itportal")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture
def hostile_world(world, settings):
    """The API world, plus what the remaining pages need something to show for."""
    settings.API_TOKEN_RATE = "100000/minute"
    settings.WEBHOOKS_ALLOW_HTTP = False
    org = world.org
    admin = org.admin.user
    admin.is_staff = admin.is_superuser = True
    admin.save()
    admin.groups.add(org.controlling, org.it_admins)
    assert org.it_admins.name == roles.IT_ADMIN
    token_services.token_create(user=org.alice.user, name="Intranet")
    FormFieldFactory(item=world.item, key="day", label="Day", field_type=FieldType.DATE,
                     required=False)  # fmt: skip
    FormFieldFactory(item=world.item, key="code", label="Code", field_type=FieldType.TEXT,
                     pattern="(?i)[a-z]-\\d{3}", required=False)  # fmt: skip
    Substitution.objects.create(
        principal=org.alice.user, substitute=org.bob.user, starts_on="2026-01-01",
        ends_on="2026-12-31",
    )  # fmt: skip
    # The cart, a joint order and a bundle, so that their pages and forms are reached.
    bundle = Bundle.objects.create(name="Neu", slug="neu")
    BundleItem.objects.create(bundle=bundle, item=world.item)
    submission = Submission.objects.create(requester=org.alice.user)
    ServiceRequest.objects.filter(requester=org.alice.user).update(submission=submission)
    CartLine.objects.create(
        owner=org.alice.user, item=world.item, beneficiary=org.alice,
        form_data={"item_version": [str(world.item.version)]},
    )  # fmt: skip
    endpoint, _secret = webhook_services.endpoint_create(
        url="https://hooks.stadt.example/x", events=[EventType.REQUEST_FAILED], user=admin
    )
    delivery = webhook_services.endpoint_send_test(endpoint_id=endpoint.pk, user=admin)
    delivery.fail(status_code=410, error="HTTP 410: gone")
    delivery.save()
    mail = OutgoingMail.objects.order_by("created_at").first()  # the orders queued some
    mail.claim()
    mail.fail(error="550 no such mailbox")
    mail.save()
    # A recertification under way: its campaign page and the review form are reached.
    import datetime

    from django.utils import timezone

    from governance import services as governance_services

    governance_services.campaign_start(
        name="Rezertifizierung", due_on=timezone.localdate() + datetime.timedelta(days=20)
    )
    # A leaver's device to collect: the queue's task form (mark done) is reached.
    from requests_app import services as request_services
    from requests_app.models import FulfilmentTask

    request_services.task_open(
        request_id=ServiceRequest.objects.order_by("pk").first().pk,
        kind=FulfilmentTask.Kind.COLLECT,
        reason="Austritt",
    )
    # A request in fulfilment: the comment and hold forms are reached.
    taken = request_services.request_create(
        requester=org.alice.user, item=world.free_item, item_version=world.free_item.version,
        beneficiary=org.alice, cost_centre=org.alice.effective_cost_centre, answers={},
    )  # fmt: skip
    request_services.request_take(request_id=taken.pk, user=org.fulfiller.user)
    # Segregation of duties: alice holds "Maus" and, by hand, a group nested in the rule's
    # group: a finding with its "Warum?" page, and an exception asked for.
    from governance import sod_services
    from governance.models import GroupNesting
    from provisioning.models import ManualMembership

    GroupNesting.objects.create(parent_dn="cn=vpn,dc=example", child_dn="cn=vpn-lesen,dc=example")
    ManualMembership.objects.create(
        group_dn="cn=vpn-lesen,dc=example",
        member_dn="uid=alice",
        member_uid=org.alice.personnel_number,
    )
    rule = sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[world.free_item], second=["cn=vpn,dc=example"]
    )
    sod_services.sod_scan()
    sod_services.sod_exception_request(
        rule_id=rule.pk, holder=org.alice, user=admin, justification="Vertretung.",
        compensating_control="Stichprobe.", valid_until=timezone.localdate(),
    )  # fmt: skip
    return world


def clients(world) -> dict[str, Client]:
    result = {}
    for name, person in [("admin", world.org.admin), ("manager", world.org.manager),
                         ("alice", world.org.alice)]:  # fmt: skip
        client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(person.user)
        result[name] = client
    return result


def _has_parameters(route: str) -> bool:
    return "<" in route or "(?P" in route


def admin_pages() -> list[str]:
    """The admin's index, and each registered model's list and add page."""
    pages = ["/admin/"]
    for model in admin.site._registry:
        meta = model._meta
        pages += [f"/admin/{meta.app_label}/{meta.model_name}/",
                  f"/admin/{meta.app_label}/{meta.model_name}/add/"]  # fmt: skip
    return pages


def crawl(clients_by_role, report: Report):
    """Every role's reachable pages (GET): {role: [(path, html)]}, and the routes reached."""
    static_routes = [
        "/" + route for route in all_routes(get_resolver())
        if not _has_parameters(route) and not route.startswith(("api/", "admin/"))
    ]  # fmt: skip
    pages, reached = {}, set()
    for role, client in clients_by_role.items():
        starts = static_routes + (admin_pages() if role == "admin" else [])
        queue, visited, per_route = deque(starts), set(), Counter()
        pages[role] = []
        while queue:
            path = queue.popleft()
            if path in visited or path.startswith(SKIP_PREFIXES):
                continue
            visited.add(path)
            route = route_of(path)
            if route is None:
                continue
            cap = PER_ROUTE if _has_parameters(route) and not route.startswith("admin/") else 1
            if per_route[route] >= cap:
                continue
            per_route[route] += 1
            response = client.get(path)
            report.check(response, where=f"{role} GET {path}", klass="plain")
            reached.add(route)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            html = response.content.decode()
            forms, links = parse_page(path, html)
            pages[role].append((path, html, forms))
            for form in forms:
                action_route = route_of(form.action)
                if action_route:
                    reached.add(action_route)
            queue.extend(link.replace("&amp;", "&") for link in links)
    return pages, reached


@pytest.fixture
def surfaces(hostile_world):
    by_role = clients(hostile_world)
    report = Report("crawl")
    pages, reached = crawl(by_role, report)
    report.close()
    assert not report.problems, "\n".join(report.problems)
    return hostile_world, by_role, pages, reached


def _model_of(admin_route: str):
    _admin, app_label, model_name, *_rest = admin_route.split("/")
    return apps.get_model(app_label, model_name)


def test_every_route_is_reached(surfaces):
    """The crawl reaches every page of the portal, so the tests below see every form."""
    _world, _clients, _pages, reached = surfaces
    routes = all_routes(get_resolver())
    assert set(UNREACHED) <= set(routes), "UNREACHED names a route that is gone"
    wanted = set()
    for route in routes:
        if route.startswith(("api/", "static/")) or route in UNREACHED:
            continue
        if route.startswith("admin/") and not route.endswith(("/add/", "/change/", "/password/")):
            continue  # admin: its model pages; the other admin views take no data of ours
        if route.endswith("object_id>/change/") and not _model_of(route).objects.exists():
            continue  # nothing to change
        wanted.add(route)
    missing = sorted(r for r in wanted if r not in reached and "^" not in r)
    assert not missing, f"not reached by the crawl (link them or list in UNREACHED): {missing}"


def test_every_form_survives_hostile_values(surfaces, record_property):
    _world, by_role, pages, _reached = surfaces
    report = Report("forms")
    counts = RowCounts()
    done = set()
    for role, role_pages in pages.items():
        client = by_role[role]
        for _path, _html, forms in role_pages:
            for form in forms:
                route = route_of(form.action)
                if form.method != "post" or not form.fields or route is None:
                    continue
                signature = form.signature(route)
                if signature in done:
                    continue
                done.add(signature)
                report.endpoints.add(route)
                report.fields.update(f"{route}:{name}" for name in form.fields)
                for klass, salt in plan():
                    body, content_type = form_body(form, klass, salt)
                    before = counts()
                    response = client.post(form.action, body, content_type=content_type)
                    report.check(response, where=f"{role} POST {form.action}", klass=klass,
                                 counts=counts, before=before)  # fmt: skip
    finish(report, record_property, at_least=15)


def fuzz_query(report, client, endpoint, path, names, who=""):
    """One GET per plan step with every parameter in ``names`` hostile."""
    report.endpoints.add(endpoint)
    report.fields.update(f"{endpoint}:{name}" for name in names)
    for klass, salt in plan():
        response = client.get(f"{path}?{query_string(names, klass, salt)}")
        report.check(response, where=f"{who}GET {path}", klass=klass)


def finish(report, record_property, *, at_least):
    report.close()
    record_property(SUMMARY, report.summary())
    assert len(report.endpoints) >= at_least, "the introspection found too little"
    assert not report.problems, "\n".join(report.problems)


def _is_changelist(route: str) -> bool:
    return route.count("/") == 3 and route.endswith("/")  # admin/<app>/<model>/


def test_every_page_survives_hostile_query_parameters(surfaces, record_property):
    _world, by_role, pages, _reached = surfaces
    report = Report("query parameters")
    done = set()
    for role, role_pages in pages.items():
        client = by_role[role]
        for path, _html, forms in role_pages:
            route = route_of(path)
            if route in done or (route.startswith("admin/") and not _is_changelist(route)):
                continue  # the admin reads query parameters on its lists only
            done.add(route)
            names = list(GENERIC_PARAMS)
            for form in forms:
                if form.method == "get":
                    names += [n for n in form.fields if n not in names]
            fuzz_query(report, client, route, path.split("?")[0], names, who=f"{role} ")
    finish(report, record_property, at_least=30)


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def api(hostile_world):
    client = token_client(hostile_world.org.admin.user)
    client.raise_request_exception = False
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return hostile_world, client, json.loads(response.content)


def path_parameters(client, template: str) -> dict:
    """Real values for a path's parameters: the first object of the collection above it."""
    values = {}
    for name in [p.strip("{}") for p in template.split("/") if p.startswith("{")]:
        collection = fill_path(template.split("{" + name + "}")[0], values)
        for query in ("", "?scope=visible"):  # requests: "mine" first, then all one sees
            results = client.get(collection + query).json()
            rows = results["results"] if isinstance(results, dict) else results
            if rows:
                values[name] = rows[0]["slug" if name == "slug" else "id"]
                break
        else:
            raise AssertionError(f"{collection} is empty: the world needs an object there")
    return values


def baselines(world) -> dict:
    """Reference fields the generic filler cannot guess, so that a body gets past them
    to the checks behind (order answers, form-field definitions)."""
    item = {"category": world.category.slug, "service_owner": world.org.service_desk.name}
    return {
        "/api/v1/requests/": {"item": world.item.slug, "item_version": world.item.version},
        "/api/v1/items/": item,
        "/api/v1/items/{slug}/": item,
    }


def test_every_api_write_survives_hostile_bodies(api, record_property):
    world, client, schema = api
    report = Report("API writes")
    counts = RowCounts()
    components = schema["components"]["schemas"]
    known = baselines(world)
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if method not in ("post", "put", "patch") or "application/json" not in content:
                continue
            path = fill_path(template, path_parameters(client, template))
            body_schema = content["application/json"]["schema"]
            endpoint = f"{method.upper()} {template}"
            report.endpoints.add(endpoint)
            props = json_value(body_schema, "empty and blank", 0, components)
            report.fields.update(f"{endpoint}:{name}" for name in props or {})
            raw_bodies = []
            for klass, salt in plan():
                body = json_value(body_schema, klass, salt, components)
                raw_bodies.append((klass, dumps(body)))
                if template in known and isinstance(body, dict):
                    raw_bodies.append(
                        (f"{klass}, valid references", dumps({**body, **known[template]}))
                    )
            raw_bodies += [
                ("deep nesting, raw", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
                ("not JSON", "{'a': 1,}"),
                ("a bare list", "[1, 2, 3]"),
            ]
            for klass, text in raw_bodies:
                before = counts()
                response = getattr(client, method)(path, text, content_type="application/json")
                report.check(response, where=f"{method.upper()} {path}", klass=klass,
                             counts=counts, before=before)  # fmt: skip
                if response.status_code < 500 and "json" not in response.get("Content-Type", ""):
                    report.problems.append(f"{method.upper()} {path} [{klass}]: not JSON")
    finish(report, record_property, at_least=10)


def test_every_api_read_survives_hostile_query_parameters(api, record_property):
    _world, client, schema = api
    report = Report("API query parameters")
    for template, operations in schema["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        path = fill_path(template, path_parameters(client, template))
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        names += [n for n in ("limit", "offset", "ordering", "format", "search") if n not in names]
        fuzz_query(report, client, template, path, names)
    finish(report, record_property, at_least=15)
