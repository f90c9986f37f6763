"""The admin's changelists over the big tables read only the columns their cells show
(``list_only``) and build their rows' links from one reversed URL: the rows look exactly as
with every column read and each link reversed, and cost no query per row."""

import datetime
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from itportal.admin import FastLinksChangeList, LargeTableAdminMixin
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services
from requests_app.models import RequestEvent, ServiceRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    (ServiceRequest, "/admin/requests_app/servicerequest/"),
    (ServiceRequest, "/admin/requests_app/servicerequest/?state=awaiting_approval&o=-2"),
    (RequestEvent, "/admin/requests_app/requestevent/"),
    (Entitlement, "/admin/provisioning/entitlement/"),
    (Entitlement, "/admin/provisioning/entitlement/?q=Notebook"),
]


@pytest.fixture
def history(org, manual_item, place_order):
    """Orders of several people, some decided, each decided one's beneficiary holding it."""
    for index, person in enumerate((org.alice, org.bob, org.alice, org.bob, org.alice)):
        order = place_order(manual_item, person.user)
        if index % 2 == 0:
            services.request_approve(request_id=order.pk, user=org.manager.user)
            Entitlement.objects.create(
                holder=person, item=manual_item, request=order, state=EntitlementState.ACTIVE
            )
    return manual_item


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True, username="chef"))
    return client


def result_rows(content: str) -> str:
    """The changelist's table of rows (admin/change_list_results.html)."""
    match = re.search(r'<table id="result_list">.*?</table>', content, re.S)
    assert match, content[:500]
    return match.group(0)


@pytest.mark.parametrize(("model", "url"), CHANGELISTS)
def test_rows_look_as_with_every_column_read(superuser_client, history, monkeypatch, model, url):
    model_admin = admin.site._registry[model]
    assert isinstance(model_admin, LargeTableAdminMixin) and model_admin.list_only
    narrow = superuser_client.get(url)
    assert narrow.status_code == 200
    assert narrow.context["cl"].result_list.query.deferred_loading[1] is False  # only()
    monkeypatch.setattr(type(model_admin), "list_only", ())
    monkeypatch.setattr(type(model_admin), "get_changelist", lambda self, request: ChangeList)
    wide = superuser_client.get(url)
    rows = result_rows(narrow.content.decode())
    assert rows == result_rows(wide.content.decode())
    assert rows.count("<tr") > 1


@pytest.mark.parametrize(("model", "url"), CHANGELISTS[::2])
def test_no_query_per_row(superuser_client, org, history, place_order, model, url):
    superuser_client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(url).status_code == 200
    for _ in range(3):
        order = place_order(history, org.bob.user)
        Entitlement.objects.create(
            holder=org.bob, item=history, request=order, state=EntitlementState.ACTIVE
        )
    with CaptureQueriesContext(connection) as many:
        assert superuser_client.get(url).status_code == 200
    assert len(many) == len(few)


def test_the_row_links_are_the_change_pages(superuser_client, history):
    content = superuser_client.get("/admin/requests_app/servicerequest/").content.decode()
    for pk in ServiceRequest.objects.values_list("pk", flat=True):
        change = reverse("admin:requests_app_servicerequest_change", args=[pk])
        assert f'<a href="{change}">{pk}</a>' in content
    # The filters in force travel along to the change page, as Django does it.
    filtered = superuser_client.get("/admin/requests_app/servicerequest/?state=approved")
    approved = ServiceRequest.objects.filter(state="approved").first()
    change = reverse("admin:requests_app_servicerequest_change", args=[approved.pk])
    assert f'href="{change}?_changelist_filters=state%3Dapproved"' in filtered.content.decode()


def test_a_key_that_is_no_integer_is_reversed_as_django_does(rf, superuser_client):
    request = rf.get("/admin/requests_app/servicerequest/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    changelist = admin.site._registry[ServiceRequest].get_changelist_instance(request)
    assert isinstance(changelist, FastLinksChangeList)

    class Row:
        pk = id = "a/b 0pk0"

    assert changelist.url_for_result(Row()) == ChangeList.url_for_result(changelist, Row())
    assert "/a_2Fb%200pk0/change/" in changelist.url_for_result(Row())

    class Numbered:
        pk = id = 40

    assert changelist.url_for_result(Numbered()) == reverse(
        "admin:requests_app_servicerequest_change", args=[40]
    )


def test_other_admin_pages_read_every_column(superuser_client, history):
    """list_only is for the changelist: the request's own admin page shows the snapshot."""
    order = ServiceRequest.objects.first()
    page = superuser_client.get(
        reverse("admin:requests_app_servicerequest_change", args=[order.pk])
    )
    assert page.status_code == 200
    assert page.context["original"].get_deferred_fields() == set()


def _normalised(html: str) -> str:
    """``html`` without the whitespace around its tags (the templates' indentation)."""
    return re.sub(r"\s*(<[^>]*>)\s*", r"\1", html).strip()


def _django_nav_sidebar():
    """Django's own admin/nav_sidebar.html (ours overrides it), which includes its
    admin/app_list.html."""
    import django.contrib.admin
    from django.template import Engine

    path = Path(django.contrib.admin.__file__).parent / "templates/admin/nav_sidebar.html"
    return Engine.get_default().from_string(path.read_text())


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(
    "path",
    [
        "/admin/requests_app/servicerequest/",
        "/admin/catalogue/catalogueitem/3/change/",
        "/admin/catalogue/",
        "/admin/",
    ],
)
@pytest.mark.parametrize("who", ["superuser", "it_admin", "nobody"])
def test_the_sidebar_is_djangos(rf, org, who, path, language):
    from django.template import Context
    from django.template.loader import get_template
    from django.utils import translation

    user = {
        "superuser": UserFactory(is_staff=True, is_superuser=True),
        "it_admin": org.admin.user,  # view-only and add-less models among its permissions
        "nobody": UserFactory(is_staff=True),
    }[who]
    request = rf.get(path)
    request.user = user
    with translation.override(language):
        context = {**admin.site.each_context(request), "request": request}
        ours = get_template("admin/nav_sidebar.html").render(context, request)
        theirs = _django_nav_sidebar().render(Context(context))
    assert _normalised(ours) == _normalised(theirs)
    if who == "superuser" and path == CHANGELISTS[0][1]:
        assert 'class="model-servicerequest current-model"' in ours
        assert 'aria-current="page">Service requests</a>' in ours or language == "de"
    if who == "nobody":
        assert "<table>" not in ours and "<p>" in ours


def _without_tokens(content: str) -> str:
    """The page without its CSRF tokens (a new one each response)."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", content)


def _as_django(monkeypatch, model_admin):
    """Django's own changelist, template and list filters for ``model_admin``, its
    columns still read with list_only."""
    monkeypatch.setattr(type(model_admin), "change_list_template", None)
    plain = tuple(f[0] if isinstance(f, tuple) else f for f in model_admin.list_filter)
    monkeypatch.setattr(type(model_admin), "list_filter", plain)
    monkeypatch.setattr(type(model_admin), "get_changelist", lambda self, request: ChangeList)


FAST_PAGES = [
    *CHANGELISTS,
    (ServiceRequest, "/admin/requests_app/servicerequest/?o=3.-1"),
    (RequestEvent, "/admin/requests_app/requestevent/?kind=submitted"),
    (Entitlement, "/admin/provisioning/entitlement/?state=active"),
    (Entitlement, "/admin/provisioning/entitlement/?state=active&_facets=True"),
    (ServiceRequest, "/admin/requests_app/servicerequest/?_facets=True&q=Notebook"),
]


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(("model", "url"), FAST_PAGES)
def test_the_pages_are_djangos(superuser_client, history, monkeypatch, model, url, language):
    """The whole page, rows rendered per column, equals Django's changelist's: links with
    the filters in force, foreign keys' names, choices' labels, dates, the checkboxes."""
    import itportal.admin

    history.name = 'Notebook & "Dock" <15>'
    history.save()
    # A date column with a date in it (DateFormatter's dates), next to empty ones.
    first = Entitlement.objects.order_by("pk").first()
    Entitlement.objects.filter(pk=first.pk).update(expires_on=datetime.date(2027, 3, 1))
    superuser_client.cookies["django_language"] = language

    def unused(cl):
        raise AssertionError("rendered by Django's result_list")

    with monkeypatch.context() as patch:
        patch.setattr(itportal.admin, "django_result_list", unused)
        ours = superuser_client.get(url)
    assert ours.status_code == 200
    _as_django(monkeypatch, admin.site._registry[model])
    theirs = superuser_client.get(url)
    content = _without_tokens(ours.content.decode())
    assert content == _without_tokens(theirs.content.decode())
    assert content.count("<tr") > 2
    if model is Entitlement:  # the item's name in the cells and the checkboxes' labels
        assert "Notebook &amp; &quot;Dock&quot; &lt;15&gt;" in content
        assert 'class="action-select"' in content


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(("model", "url"), FAST_PAGES)
def test_the_filters_are_djangos(rf, history, model, url, language):
    """Each list filter written in Python is Django's admin/filter.html: titles and names
    escaped, the chosen one marked, the counts of facets."""
    from django.contrib.admin.templatetags.admin_list import admin_list_filter
    from django.utils import translation

    from itportal.templatetags.admin_rows import large_list_filter

    history.name = 'Notebook & "Dock" <15>'
    history.save()
    request = rf.get(url)
    request.user = UserFactory(is_staff=True, is_superuser=True)
    with translation.override(language):
        changelist = admin.site._registry[model].get_changelist_instance(request)
        assert changelist.filter_specs
        for spec in changelist.filter_specs:
            ours = large_list_filter(changelist, spec)
            assert ours == admin_list_filter(changelist, spec)
            assert ours.count("<li") >= 2


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(
    ("model", "url"),
    [
        *FAST_PAGES,
        (ServiceRequest, "/admin/requests_app/servicerequest/?o=2.-4.1"),  # three sorted
        (ServiceRequest, "/admin/requests_app/servicerequest/?q=no-such-thing"),  # no rows
    ],
)
def test_the_results_tables_are_djangos(rf, history, model, url, language):
    """The table of rows written in Python is Django's admin/change_list_results.html:
    header cells sorted or not (priorities, toggles), the checkbox column, no rows."""
    from django.template.loader import get_template
    from django.utils import translation

    from itportal.templatetags.admin_rows import _results_table

    request = rf.get(url)
    request.user = UserFactory(is_staff=True, is_superuser=True)
    with translation.override(language):
        changelist = admin.site._registry[model].get_changelist_instance(request)
        changelist.formset = None
        data = changelist.results_context()
        theirs = get_template("admin/change_list_results.html").render(data)
        assert _results_table(data) == theirs
    if "no-such-thing" in url:
        assert "<tr>" not in theirs


def test_columns_it_does_not_cover_are_djangos(superuser_client, history, monkeypatch):
    """A column that is a method (or a path) leaves the whole table to Django."""
    import itportal.admin

    model_admin = admin.site._registry[ServiceRequest]
    url = "/admin/requests_app/servicerequest/"
    used = []
    django_result_list = itportal.admin.django_result_list
    monkeypatch.setattr(
        itportal.admin, "django_result_list", lambda cl: used.append(cl) or django_result_list(cl)
    )
    for column in ("__str__", "item__category", lambda obj: f"<{obj.pk}>"):
        monkeypatch.setattr(type(model_admin), "list_display", ("id", "state", column))
        ours = superuser_client.get(url).content.decode()
        assert used, column
        used.clear()
        assert 'class="field-state"' in ours
    monkeypatch.setattr(type(model_admin), "list_display", ("id", "state"))
    superuser_client.get(url)
    assert not used


def test_a_popup_is_djangos(superuser_client, history):
    """The related-object popup (data-popup-opener on the links) is Django's markup."""
    content = superuser_client.get(
        "/admin/requests_app/servicerequest/?_popup=1&_to_field=id"
    ).content.decode()
    assert "data-popup-opener=" in content


def _app_list_text(app_list) -> list:
    """An app list with its lazy names as text, for comparing."""
    return [
        (
            str(app["name"]),
            app["app_label"],
            app["app_url"],
            [
                (str(m["name"]), m["object_name"], m["admin_url"], m["add_url"], m["perms"])
                for m in app["models"]
            ],
        )
        for app in app_list
    ]


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_kept_app_lists_are_djangos(rf, org, monkeypatch, language):
    """The site's app list (the sidebar) kept per permissions, language and prefix is the
    one Django builds for the user; a user with other permissions gets their own."""
    from django.contrib.admin import AdminSite
    from django.contrib.auth.models import Permission
    from django.utils import translation

    from itportal.admin import PortalAdminSite

    assert isinstance(admin.site, PortalAdminSite)
    built = []
    django_get_app_list = AdminSite.get_app_list
    monkeypatch.setattr(
        AdminSite,
        "get_app_list",
        lambda site, request, app_label=None: (
            built.append(request.user) or django_get_app_list(site, request, app_label)
        ),
    )
    admin.site._app_lists.clear()
    editor = UserFactory(is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="view_category"))
    users = [
        UserFactory(is_staff=True, is_superuser=True),
        UserFactory(is_staff=True, is_superuser=True),  # the first superuser's list
        org.admin.user,
        editor,
        UserFactory(is_staff=True),
    ]
    lists = []
    with translation.override(language):
        for user in users:
            request = rf.get("/admin/")
            request.user = user
            ours = admin.site.get_app_list(request)
            request.user = type(user).objects.get(pk=user.pk)  # permissions read afresh
            assert _app_list_text(ours) == _app_list_text(django_get_app_list(admin.site, request))
            lists.append(_app_list_text(ours))
            # Each request gets its own dictionaries.
            assert ours is not admin.site.get_app_list(request)
    assert len(built) == 4  # the second superuser's list was kept
    assert lists[0] == lists[1] and len({repr(a) for a in lists}) == 4
    assert lists[4] == [] and [app[1] for app in lists[3]] == ["catalogue"]
    # An app of one model, the app's own page: Django's, not kept.
    request = rf.get("/admin/catalogue/")
    request.user = editor
    admin.site.get_app_list(request, "catalogue")
    assert len(built) == 5


def test_the_kept_sidebars_mark_the_pages_own_links(rf):
    """The sidebar rendered from a kept app list is kept per set of current links: each
    page's is Django's, with its own app and model marked, read again or not."""
    from django.template import Context
    from django.template.loader import get_template

    admin.site._app_lists.clear()
    user = UserFactory(is_staff=True, is_superuser=True)
    paths = [
        "/admin/requests_app/servicerequest/",
        "/admin/requests_app/servicerequest/7/change/",
        "/admin/provisioning/entitlement/",
        "/admin/",
        "/admin/requests_app/servicerequest/",
    ]
    sidebars = None
    for path in paths:
        request = rf.get(path)
        request.user = user
        context = {**admin.site.each_context(request), "request": request}
        sidebars = context["available_apps"].sidebars
        ours = get_template("admin/nav_sidebar.html").render(context, request)
        assert _normalised(ours) == _normalised(_django_nav_sidebar().render(Context(context)))
        marked = re.findall(r'class="model-(\w+) current-model"', ours)
        assert marked == ([path.split("/")[3]] if path.count("/") > 3 else []), path
    # The first two paths mark the same links; the last is the first again.
    assert len(sidebars) == 3


def test_registering_forgets_the_kept_app_lists(rf):
    from requests_app.models import Substitution

    request = rf.get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)

    def names():
        return [m["object_name"] for a in admin.site.get_app_list(request) for m in a["models"]]

    def sidebar():
        from django.template.loader import get_template

        context = {**admin.site.each_context(request), "request": request}
        return get_template("admin/nav_sidebar.html").render(context, request)

    assert "Substitution" in names() and "model-substitution" in sidebar()
    model_admin = type(admin.site._registry[Substitution])
    admin.site.unregister(Substitution)
    try:
        assert "Substitution" not in names() and "model-substitution" not in sidebar()
    finally:
        admin.site.register(Substitution, model_admin)
    assert "Substitution" in names() and "model-substitution" in sidebar()


_ITEM_CHOICES = 'SELECT "catalogue_catalogueitem"."id"'  # the filter's statement


def test_the_item_filter_reads_the_names_only(superuser_client, history, monkeypatch):
    """The entitlements' filter by service lists Django's choices (order, names, the one
    chosen) from the items' keys and names, one query however many items there are."""
    from tests.factories import CatalogueItemFactory

    url = f"/admin/provisioning/entitlement/?item__id__exact={history.pk}"
    superuser_client.get(url)
    with CaptureQueriesContext(connection) as one:
        ours = superuser_client.get(url).content.decode()
    items = [q["sql"] for q in one.captured_queries if q["sql"].startswith(_ITEM_CHOICES)]
    assert len(items) == 1 and "search_vector" not in items[0] and '"name"' in items[0]
    for name in ("Zebra & Co", "Aardvark <x>", "Monitor"):
        CatalogueItemFactory(name=name)
    with CaptureQueriesContext(connection) as more:
        ours = superuser_client.get(url).content.decode()
    assert len(more) == len(one)
    _as_django(monkeypatch, admin.site._registry[Entitlement])
    theirs = superuser_client.get(url).content.decode()
    assert _without_tokens(ours) == _without_tokens(theirs)
    assert "Zebra &amp; Co" in ours and f"item__id__exact={history.pk}" in ours


def test_the_query_strings_are_djangos(rf, history):
    """The changelist's query strings (sort links, pages, filter choices), each parameter
    encoded once per page, are Django's: removed prefixes, lists, values to drop, numbers
    and booleans that are equal keys but not equal texts."""
    url = "/admin/provisioning/entitlement/?state=active&q=a+%26+b&o=-2&item__id__exact=3"
    request = rf.get(url)
    request.user = UserFactory(is_staff=True, is_superuser=True)
    changelist = admin.site._registry[Entitlement].get_changelist_instance(request)
    assert isinstance(changelist, FastLinksChangeList)
    asked = [
        (None, None),
        ({"p": 2}, None),
        ({"item__id__exact": 7}, ["item__isnull"]),
        ({"item__id__exact": 1}, None),
        ({"item__id__exact": True}, None),
        ({"item__id__exact": [1, 2]}, None),
        ({"item__id__exact": [True, "ä ö"]}, None),
        ({"item__id__exact": []}, None),
        ({"state": None, "o": "1.2"}, ["item"]),
        ({"q": "x/y?z=1&w"}, ["state", "o"]),
        ({"item__id__exact": [[1], 2]}, None),  # not a key: encoded each time
    ]
    for _round in range(2):  # the second time from the kept pieces
        for new, remove in asked:
            assert changelist.get_query_string(new, remove) == ChangeList.get_query_string(
                changelist, new, remove
            ), (new, remove)


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_kept_actions_are_djangos(superuser_client, history, monkeypatch, language):
    """The action form kept per process is Django's, per language and per set of actions
    offered: an action added later shows up at once."""
    from itportal.templatetags.admin_rows import _ActionsNode

    url = "/admin/provisioning/entitlement/"
    superuser_client.cookies["django_language"] = language
    _ActionsNode.kept.clear()
    first = _without_tokens(superuser_client.get(url).content.decode())
    assert _ActionsNode.kept and 'name="action"' in first
    assert _without_tokens(superuser_client.get(url).content.decode()) == first

    def export(modeladmin, request, queryset):
        """Export"""

    model_admin = admin.site._registry[Entitlement]
    with monkeypatch.context() as patch:
        patch.setattr(type(model_admin), "actions", [export])
        more = _without_tokens(superuser_client.get(url).content.decode())
        assert 'value="export"' in more and 'value="export"' not in first
        _as_django(patch, model_admin)
        assert more == _without_tokens(superuser_client.get(url).content.decode())
    assert _without_tokens(superuser_client.get(url).content.decode()) == first
    _as_django(monkeypatch, model_admin)
    assert _without_tokens(superuser_client.get(url).content.decode()) == first


def _compiled_selects(patch, model) -> list:
    """The SELECTs of ``model``'s rows that the ORM compiles from now on (``patch``: a
    monkeypatch)."""
    from django.db.models.sql.compiler import SQLCompiler

    compiled = []
    as_sql = SQLCompiler.as_sql

    def counting(self, *args, **kwargs):
        sql, params = as_sql(self, *args, **kwargs)
        if self.query.model is model and not self.query.values_select:
            compiled.append(sql)
        return sql, params

    patch.setattr(SQLCompiler, "as_sql", counting)
    return compiled


@pytest.mark.parametrize("page", ["", "?p=2", "?o=-3"])
def test_an_unfiltered_pages_rows_are_compiled_once(
    superuser_client, org, history, place_order, monkeypatch, page
):
    """The page's rows of a list without conditions are read by a statement kept per
    process: the next view compiles no select of its rows, and reads what changed since."""
    import itportal.admin
    from requests_app.admin import ServiceRequestAdmin

    monkeypatch.setattr(ServiceRequestAdmin, "list_per_page", 2)
    itportal.admin._KEPT_PAGE_ROWS.clear()
    url = f"/admin/requests_app/servicerequest/{page}"
    first = superuser_client.get(url)
    assert itportal.admin._KEPT_PAGE_ROWS.keys()
    compiled = _compiled_selects(monkeypatch, ServiceRequest)
    with CaptureQueriesContext(connection) as queries:
        again = superuser_client.get(url)
    assert compiled == []
    # The requester, the beneficiary, their user and the item by subqueries, not joined.
    (rows,) = [q["sql"] for q in queries if 'AS "_joinless_' in q["sql"]]
    assert " JOIN " not in rows
    assert isinstance(again.context["cl"].result_list, QuerySet)
    assert result_rows(again.content.decode()) == result_rows(first.content.decode())
    ServiceRequest.objects.update(state="rejected")
    changed = result_rows(superuser_client.get(url).content.decode())
    assert changed != result_rows(first.content.decode()) and changed.count("<tr") == 3
    monkeypatch.setattr(
        type(admin.site._registry[ServiceRequest]),
        "get_changelist",
        lambda self, request: ChangeList,
    )
    assert changed == result_rows(superuser_client.get(url).content.decode())


def test_a_filtered_or_searched_pages_rows_are_compiled_per_view(
    superuser_client, history, monkeypatch
):
    """A list with conditions (filters can depend on the day, a search on its words) keeps
    no statement: its rows are compiled as Django compiles them."""
    import itportal.admin

    itportal.admin._KEPT_PAGE_ROWS.clear()
    for url in (
        "/admin/requests_app/servicerequest/?state=approved",
        "/admin/requests_app/servicerequest/?q=Notebook",
    ):
        superuser_client.get(url)
        with monkeypatch.context() as patch:
            compiled = _compiled_selects(patch, ServiceRequest)
            assert superuser_client.get(url).status_code == 200
        assert compiled
    assert not itportal.admin._KEPT_PAGE_ROWS.keys()


def test_the_kept_choices_follow_the_items(rf, history):
    """The filter's choices, their statement kept, are read on every view: a service
    renamed or added is in the next list."""
    from django.contrib.admin import RelatedFieldListFilter

    from tests.factories import CatalogueItemFactory

    def choices():
        request = rf.get("/admin/provisioning/entitlement/")
        request.user = UserFactory(is_staff=True, is_superuser=True)
        changelist = admin.site._registry[Entitlement].get_changelist_instance(request)
        (spec,) = [s for s in changelist.filter_specs if s.field_path == "item"]
        field = Entitlement._meta.get_field("item")
        django = RelatedFieldListFilter.field_choices(
            spec, field, request, admin.site._registry[Entitlement]
        )
        assert spec.lookup_choices == django
        return spec.lookup_choices

    CatalogueItemFactory(name="Monitor")
    first = choices()
    history.name = "Zz renamed"
    history.save()
    CatalogueItemFactory(name="Aa new")
    second = choices()
    assert second != first and (history.pk, "Zz renamed") in second
    assert "Aa new" in [name for _pk, name in second] and len(second) == len(first) + 1


def test_the_kept_media_render_as_djangos():
    """A page's media rendered once per set of files is Django's rendering; files given as
    asset objects are Django's every time."""
    from django.forms import Media
    from django.forms.widgets import Script

    from itportal.admin import KeptMedia

    media = Media(js=["admin/js/core.js", "https://example.org/x.js"], css={"all": ["a.css"]})
    media += Media(js=["admin/js/actions.js", "admin/js/core.js"])
    for _round in range(2):
        kept = KeptMedia.of(media)
        assert isinstance(kept, KeptMedia)
        for name in ("js", "css"):
            assert str(kept[name]) == str(media[name])
            assert kept[name].__html__() == media[name].__html__()
            assert kept[name]._js == media[name]._js
    assert str(KeptMedia.of(media)) == str(media)
    scripted = Media(js=[Script("admin/js/core.js", defer=True)])
    assert KeptMedia.of(scripted) is scripted


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("query", ["", "?p=2", "?p=3&o=-3", "?q=Notebook&p=2", "?all="])
def test_the_kept_pagination_and_search_form_are_djangos(
    superuser_client, history, monkeypatch, language, query
):
    """The pages' links, the count and the search form, kept per process, are Django's
    for every page, order, search and language; the second view from the kept markup."""
    from requests_app.admin import ServiceRequestAdmin

    monkeypatch.setattr(ServiceRequestAdmin, "list_per_page", 2)
    superuser_client.cookies["django_language"] = language
    url = f"/admin/requests_app/servicerequest/{query}"
    first = _without_tokens(superuser_client.get(url).content.decode())
    assert _without_tokens(superuser_client.get(url).content.decode()) == first
    assert 'class="paginator"' in first
    _as_django(monkeypatch, admin.site._registry[ServiceRequest])
    assert _without_tokens(superuser_client.get(url).content.decode()) == first


KEPT_PAGES = [
    "/admin/provisioning/entitlement/",
    "/admin/provisioning/entitlement/?state=active",
    "/admin/requests_app/servicerequest/?o=3.-1",
    "/admin/requests_app/requestevent/",
]


@pytest.mark.parametrize("url", KEPT_PAGES)
def test_the_kept_parts_follow_what_they_show(client, history, monkeypatch, url):
    """The header, the sidebar, the filters and the table of rows, kept per process, show
    the viewer's name and the rows and choices as they are now: a second superuser after
    a service and a person were renamed sees Django's page for them."""
    from catalogue.models import Employee

    first = UserFactory(is_staff=True, is_superuser=True, username="chef", first_name="Erna")
    client.force_login(first)
    assert "<strong>Erna</strong>" in client.get(url).content.decode()
    history.name = "Renamed service"
    history.save()
    person = Employee.objects.filter(entitlements__isnull=False).first()
    person.user.last_name = "Renamed"
    person.user.save()
    client.force_login(
        UserFactory(is_staff=True, is_superuser=True, username="boss", first_name="Otto")
    )
    ours = client.get(url).content.decode()
    _as_django(monkeypatch, admin.site._registry[_model_of(url)])
    theirs = client.get(url).content.decode()
    assert _without_tokens(ours) == _without_tokens(theirs)
    assert "<strong>Otto</strong>" in ours and "Erna" not in ours
    if "entitlement" in url:
        assert "Renamed service" in ours and "Renamed" in result_rows(ours)


def _model_of(url: str):
    return {"entitlement": Entitlement, "servicerequest": ServiceRequest}.get(
        url.split("/")[3], RequestEvent
    )


def test_a_kept_part_has_the_views_own_csrf_token(superuser_client, history):
    """The logout form in the kept header carries the view's token, as the list's form."""
    from itportal.templatetags.admin_rows import _CSRF_MARK

    url = "/admin/provisioning/entitlement/"
    for _view in range(2):
        response = superuser_client.get(url)
        content = response.content.decode()
        tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]*)"', content)
        assert len(tokens) == 2 and tokens[0] == tokens[1]
        assert _CSRF_MARK not in content and len(tokens[0]) == 64


def test_a_kept_table_makes_no_objects(superuser_client, history, monkeypatch):
    """An unfiltered page whose table is kept makes none of its objects: it only counts
    them (the selection note)."""
    import itportal.admin

    made = []
    lists = []

    class Counting(itportal.admin.MadeWhenUsed):
        def __init__(self, length, make):
            lists.append(self)
            super().__init__(length, lambda: made.append(length) or make())

    monkeypatch.setattr(itportal.admin, "MadeWhenUsed", Counting)
    url = "/admin/provisioning/entitlement/"
    first = superuser_client.get(url).content.decode()
    assert made and lists
    made.clear()
    assert superuser_client.get(url).content.decode().count("<tr") == first.count("<tr")
    assert not made and len(lists) == 2 and len(lists[1]) == 3


def test_objects_made_when_used_are_a_list():
    from itportal.admin import MadeWhenUsed

    made = []
    rows = MadeWhenUsed(3, lambda: made.append(1) or ["a", "b", "c"])
    assert len(rows) == 3 and rows and not made
    assert rows[1:] == ["b", "c"] and list(rows) == ["a", "b", "c"] and made == [1]
    assert "b" in rows and len(rows) == 3 and not MadeWhenUsed(0, list)
