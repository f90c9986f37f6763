"""django-tables2 made cheaper per cell (itportal/tables.py) gives the same answers."""

import datetime
import zoneinfo

import django_tables2 as tables
import pytest
from django.utils import translation
from django_tables2 import utils
from django_tables2.columns.datecolumn import DateColumn as LibraryDateColumn
from django_tables2.columns.datetimecolumn import DateTimeColumn as LibraryDateTimeColumn

from itportal.tables import DateColumn, DateTimeColumn

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


class _Holder:
    def render_x(self, record, value):
        return value

    def render_y(self, value, **kwargs):
        return value

    def __call__(self, record):
        return record


def _function(record, bound_column, *args):
    return record


CALLABLES = [
    _function,
    lambda value: value,
    lambda **kwargs: kwargs,
    _Holder().render_x,
    _Holder().render_y,
    _Holder(),
]


def test_signatures_are_memoised_and_equal_the_librarys():
    assert getattr(utils.signature, "memoised", False), "ItportalConfig.ready patches it"
    uncached = utils.signature.__closure__  # the wrapper keeps the library's function
    library = next(c.cell_contents for c in uncached if callable(c.cell_contents))
    for fn in CALLABLES:
        assert utils.signature(fn) == library(fn)
        assert utils.signature(fn) == library(fn)  # the cached answer, asked again


def test_a_bound_method_of_another_instance_gets_the_same_signature():
    first, second = _Holder(), _Holder()
    assert utils.signature(first.render_x) == (("record", "value"), None)
    assert utils.signature(second.render_x) == (("record", "value"), None)
    assert utils.signature(second.render_y) == (("value",), "kwargs")


class _Row:
    def __init__(self, day, moment):
        self.day = day
        self.moment = moment


def _table(date_column, datetime_column, rows):
    attrs = {
        "day": date_column(format="SHORT_DATE_FORMAT", default="—"),
        "moment": datetime_column(format="SHORT_DATETIME_FORMAT", default="—"),
    }
    table_class = type("T", (tables.Table,), attrs)
    return table_class(rows)


@pytest.mark.parametrize("language", ["de", "en"])
def test_date_columns_render_like_the_librarys(language, settings):
    settings.USE_TZ = True
    rows = [
        _Row(
            datetime.date(2026, 12, 7), datetime.datetime(2026, 12, 4, 19, 54, tzinfo=datetime.UTC)
        ),
        _Row(None, None),
        _Row(
            datetime.date(2025, 1, 31), datetime.datetime(2025, 6, 30, 23, 30, tzinfo=datetime.UTC)
        ),
    ]
    with translation.override(language):
        ours = _table(DateColumn, DateTimeColumn, rows)
        theirs = _table(LibraryDateColumn, LibraryDateTimeColumn, rows)
        ours_cells = [[row.get_cell(c) for c in ("day", "moment")] for row in ours.rows]
        their_cells = [[row.get_cell(c) for c in ("day", "moment")] for row in theirs.rows]
    assert [[str(v) for v in r] for r in ours_cells] == [[str(v) for v in r] for r in their_cells]
    if language == "de":
        # Local time (CET), German order: 19:54 UTC is 20:54 in Berlin.
        assert str(ours_cells[0][0]) == "07.12.2026"
        assert str(ours_cells[0][1]) == "04.12.2026 20:54"
    assert [str(v) for v in ours_cells[1]] == ["—", "—"]


def test_date_columns_export_iso_8601():
    rows = [_Row(datetime.date(2026, 12, 7), datetime.datetime(2026, 12, 4, 20, 54, tzinfo=BERLIN))]
    ours = _table(DateColumn, DateTimeColumn, rows)
    exported = list(ours.as_values())
    assert exported[1] == ["2026-12-07", "2026-12-04 20:54:00+01:00"]


def test_model_date_fields_get_the_fast_columns():
    from provisioning.models import ProvisioningJob

    table_class = type(
        "JobDates",
        (tables.Table,),
        {"Meta": type("Meta", (), {"model": ProvisioningJob, "fields": ("created_at",)})},
    )
    assert isinstance(table_class.base_columns["created_at"], DateTimeColumn)


# The row markup the template rendered before itportal/templatetags/portal_tables.py.
TEMPLATE_ROWS = (
    "{% load l10n %}{% for row in table.paginated_rows %}\n"
    "<tr {{ row.attrs.as_html }}>{% for column, cell in row.items %}\n"
    '  <td data-label="{{ column.header }}" {{ column.attrs.td.as_html }}>'
    "{% if column.localize == None %}{{ cell }}{% else %}{% if column.localize %}"
    "{{ cell|localize }}{% else %}{{ cell|unlocalize }}{% endif %}{% endif %}</td>"
    "{% endfor %}\n</tr>{% empty %}{% if table.empty_text %}"
    '<tr><td colspan="{{ table.columns|length }}">{{ table.empty_text }}</td></tr>'
    "{% endif %}{% endfor %}"
)


class _Thing:
    def __init__(self, pk, name, price, day):
        self.pk, self.name, self.price, self.day = pk, name, price, day

    def get_absolute_url(self):
        return f"/things/{self.pk}/"


class _ThingTable(tables.Table):
    pk = tables.Column(verbose_name="No.", linkify=True)
    name = tables.Column(verbose_name="Name <&>", attrs={"td": {"class": "url"}})
    price = tables.Column(verbose_name="Price", localize=True)
    raw = tables.Column(verbose_name="Raw", accessor="price", localize=False)
    day = DateColumn(verbose_name="Day", default="—")

    def render_name(self, value):
        return value.upper()


class _CallableAttrsTable(_ThingTable):
    class Meta:
        attrs = {"td": {"data-pk": lambda record: record.pk}}


@pytest.mark.parametrize("table_class", [_ThingTable, _CallableAttrsTable])
@pytest.mark.parametrize("language", ["de", "en"])
def test_rows_in_python_equal_the_templates(table_class, language):
    from decimal import Decimal

    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.templatetags.portal_tables import table_rows

    rows = [
        _Thing(1, "Notebook <b>", Decimal("1149.00"), datetime.date(2026, 12, 7)),
        _Thing(2, "VPN & Co", Decimal("12345.5"), None),
    ]
    request = RequestFactory().get("/")
    with translation.override(language):
        for data in (rows, []):
            table = table_class(data, empty_text="Nothing <here>")
            table.request = request
            context = Context({"table": table})
            expected = Template(TEMPLATE_ROWS).render(context)
            assert str(table_rows(context, table)) == expected


@pytest.mark.parametrize("language", ["de", "en"])
def test_choice_displays_are_kept_and_equal_djangos(language):
    from django.db.models import Model

    from requests_app.choices import RequestState
    from requests_app.models import ServiceRequest

    field = ServiceRequest._meta.get_field("state")
    with translation.override(language):
        for value in [*RequestState.values, "no-such-state", None]:
            request = ServiceRequest(state=value)
            assert request.get_state_display() == Model._get_FIELD_display(request, field)
    assert "_portal_choice_labels" in field.__dict__  # kept, not rebuilt per call
    with translation.override("de"):
        german = ServiceRequest(state=RequestState.APPROVED).get_state_display()
    with translation.override("en"):
        english = ServiceRequest(state=RequestState.APPROVED).get_state_display()
    assert german != english  # the label is still translated per call


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["de", "en"])
def test_model_rows_in_python_equal_the_templates(language, monkeypatch):
    """The cells ``_Cell`` computes for model rows (related rows, missing relations, states
    with choices, links, defaults) are django-tables2's, on the portal's own tables."""
    from django.core.management import call_command
    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.templatetags.portal_tables import table_rows
    from provisioning.models import Entitlement, ProvisioningJob
    from provisioning.selectors import entitlement_list_rows, job_list_rows
    from provisioning.tables import EntitlementTable, JobTable
    from requests_app.models import ServiceRequest
    from requests_app.selectors import list_rows
    from requests_app.tables import MyRequestTable, QueueTable, RequestTable

    call_command("seed_demo", verbosity=0)
    call_command("seed_history", count=60, months=2, verbosity=0)
    requests = ServiceRequest.objects.order_by("-pk")
    for index, service_request in enumerate(requests[:3]):
        ProvisioningJob.objects.create(
            request=service_request, direction="grant", kind="add_to_group",
            user_uid=f"u{index} <&>", target_dn="cn=x,ou=groups" if index else "",
            dialect="openldap", last_error="" if index else "Server <down> & out",
        )  # fmt: skip
    cases = [
        (RequestTable, requests),
        (MyRequestTable, list_rows(requests, MyRequestTable.row_columns)),
        (QueueTable, list_rows(requests.exclude(approved_at=None), QueueTable.row_columns)),
        (EntitlementTable, entitlement_list_rows(Entitlement.objects.order_by("-pk"))),
        (JobTable, job_list_rows(ProvisioningJob.objects.order_by("-pk"))),
    ]
    request = RequestFactory().get("/")
    from django.utils import timesince, timezone
    from django_tables2.rows import BoundRow

    # "Waiting since ... ago": both renders at one instant (a slow run crosses a minute).
    now = timezone.now()
    monkeypatch.setattr(
        "requests_app.tables.age",
        lambda value, *args, **kwargs: timesince.timesince(value, now=now),
    )
    library_cells = []
    get_cell = BoundRow.get_cell
    monkeypatch.setattr(
        BoundRow, "get_cell", lambda row, name: library_cells.append(name) or get_cell(row, name)
    )
    with translation.override(language):
        for table_class, rows in cases:
            assert rows.exists(), table_class
            table = table_class(list(rows[:40]), order_by=())
            table.request = request
            context = Context({"table": table})
            expected = Template(TEMPLATE_ROWS).render(context)
            table = table_class(list(rows[:40]), order_by=())
            table.request = request
            library_cells.clear()
            assert str(table_rows(Context({"table": table}), table)) == expected, table_class
            assert not library_cells, "model rows take the fast path"


@pytest.mark.parametrize("approvals", [False, True], ids=["my requests", "approvals"])
def test_my_request_rows_are_kept_until_their_values_change(approvals):
    """The "my requests" and approvals tables keep each row's markup per process
    (``rows_are_values``): a row read again renders from the memo as the template would, a
    changed value anew."""
    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.memo import values_row_key
    from itportal.templatetags.portal_tables import ROW_MEMO, table_rows
    from requests_app.tables import ApprovalTable, MyRequestTable

    table_class = ApprovalTable if approvals else MyRequestTable
    row = {
        "id": 7,
        "state": "approved",
        "created_at": datetime.datetime(2026, 12, 7, 9, 30, tzinfo=datetime.UTC),
        "item_name": "Notebook <b>",
        "beneficiary_first_name": "Anna",
        "beneficiary_last_name": "Schmidt & Co",
        "beneficiary_username": "anna",
        "cost_centre_code": "KS-33-100",
    }
    if approvals:
        row |= {"requester_first_name": "", "requester_last_name": "", "requester_username": "bo"}
    assert values_row_key(row) is not None
    assert values_row_key({**row, "state": "fulfilled"}) != values_row_key(row)
    assert values_row_key({**row, "id": object()}) is None  # nothing it cannot vouch for
    assert values_row_key([("id", 7)]) is None

    def rendered(rows, *, template=False):
        table = table_class(rows, order_by=())
        table.request = RequestFactory().get("/")
        context = Context({"table": table})
        return Template(TEMPLATE_ROWS).render(context) if template else table_rows(context, table)

    ROW_MEMO.clear()
    with translation.override("de"):
        first = rendered([row])
        assert len(ROW_MEMO) == 1
        assert rendered([row]) == first == rendered([row], template=True)
        fulfilled = {**row, "state": "fulfilled"}
        assert rendered([fulfilled]) == rendered([fulfilled], template=True) != first
    with translation.override("en"):
        assert rendered([row]) == rendered([row], template=True) != first
    ROW_MEMO.clear()


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["de", "en"])
def test_report_rows_in_python_equal_the_templates(language, monkeypatch):
    """The controlling reports' rows are dataclasses: ``_Cell`` looks their attributes up
    (nested ones, properties, missing values, render methods with the record) and gives
    django-tables2's cells."""
    from django.core.management import call_command
    from django.template import Context, Template
    from django.test import RequestFactory
    from django_tables2.rows import BoundRow

    from catalogue.models import CatalogueItem
    from itportal.templatetags.portal_tables import table_rows
    from metrics.controlling import selectors
    from metrics.controlling import tables as report_tables
    from metrics.controlling.rollup import ALL

    call_command("seed_demo", verbosity=0)
    call_command("seed_history", count=300, months=14, verbosity=0)
    first, last = selectors.default_period()
    period = {"first": first, "last": last}
    forecast_last = selectors.last_complete_month()
    cases = [
        (report_tables.CostTable, selectors.costs_per_cost_centre(ALL, **period)),
        (report_tables.UsageTable, selectors.usage_per_service(ALL, **period)),
        (report_tables.LeadTimeTable, selectors.lead_times_per_service(ALL, **period)),
        (report_tables.AutomationTable, selectors.lead_times_per_service(ALL, **period)),
        (report_tables.SatisfactionTable, selectors.satisfaction_per_service(ALL, **period)),
        (report_tables.PoolTable, selectors.licence_pools(CatalogueItem.objects.all())),
        (
            report_tables.ForecastTable,
            selectors.demand_forecast(ALL, history_months=12, last=forecast_last),
        ),
        (
            report_tables.RareTable,
            selectors.rarely_ordered(
                ALL, CatalogueItem.objects.active(), **period, fewer_than=10**6
            ),
        ),
    ]
    request = RequestFactory().get("/")
    library_cells = []
    get_cell = BoundRow.get_cell
    monkeypatch.setattr(
        BoundRow, "get_cell", lambda row, name: library_cells.append(name) or get_cell(row, name)
    )
    with translation.override(language):
        for table_class, rows in cases:
            assert rows, table_class
            table = table_class(rows)
            table.request = request
            expected = Template(TEMPLATE_ROWS).render(Context({"table": table}))
            table = table_class(rows)
            table.request = request
            library_cells.clear()
            assert str(table_rows(Context({"table": table}), table)) == expected, table_class
            # Only cells whose row has no such attribute (a render method with the record).
            assert not any(hasattr(rows[0], name) for name in library_cells), table_class


# The header cells the template rendered before itportal/templatetags/portal_tables.py.
TEMPLATE_HEAD = (
    "{% load i18n django_tables2 %}{% for column in table.columns %}\n"
    '    <th scope="col" {{ column.attrs.th.as_html }}{% if column.orderable and '
    'column.is_ordered %} aria-sort="{% if column.order_by_alias.is_descending %}descending'
    '{% else %}ascending{% endif %}"{% endif %}>\n'
    '      {% if column.orderable %}<a href="{% querystring_replace '
    'table.prefixed_order_by_field=column.order_by_alias.next %}">{{ column.header }}'
    '<span class="visually-hidden"> – {% translate "sort" %}</span></a>{% else %}'
    "{{ column.header }}{% endif %}\n    </th>{% endfor %}"
)


class _SortedThingTable(_ThingTable):
    day = DateColumn(verbose_name="Day", orderable=False, attrs={"th": {"class": "narrow"}})


@pytest.mark.parametrize("table_class", [_ThingTable, _SortedThingTable])
@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize(
    ("query", "prefix"),
    [
        ("", ""),
        ("?sort=name", ""),
        ("?sort=-price&state=a&state=b&q=%3Cx%3E+%26+%C3%A4", ""),
        ("?page=3&sort=pk", ""),
        ("?t-sort=-raw&sort=name", "t-"),
    ],
)
def test_header_cells_in_python_equal_the_templates(table_class, language, query, prefix):
    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.templatetags.portal_tables import table_head_cells

    request = RequestFactory().get("/list/" + query)
    with translation.override(language):
        table = table_class([], prefix=prefix)
        tables.RequestConfig(request).configure(table)
        context = Context({"table": table, "request": request})
        expected = Template(TEMPLATE_HEAD).render(context)
        assert str(table_head_cells(context, table)) == expected
    assert "aria-sort" in expected or "sort=" not in query


@pytest.mark.parametrize("table_name", ["QueueTable", "MyRequestTable", "ApprovalTable"])
def test_static_header_rows_are_kept_and_equal_the_templates(table_name):
    """A ``head_is_static`` table's header row is kept per process (``HEAD_MEMO``) under its
    sort, query string and language: every view, the first and those from the memo, shows
    what the template rendered, and another sort, query or language is another entry."""
    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.templatetags.portal_tables import HEAD_MEMO, table_head_cells
    from requests_app import tables as request_tables

    table_class = getattr(request_tables, table_name)
    assert table_class.head_is_static
    queries = [
        "",
        "?sort=item",
        "?sort=-item",
        "?tab=mine&sort=item",
        "?sort=-approved_at&q=%3Cx%3E+%26+%C3%A4&state=a&state=b",
        "?tab=all&page=3",
    ]
    HEAD_MEMO.clear()
    for _view in range(2):
        for language in ("de", "en"):
            for query in queries:
                request = RequestFactory().get("/list/" + query)
                with translation.override(language):
                    table = table_class([])
                    tables.RequestConfig(request).configure(table)
                    context = Context({"table": table, "request": request})
                    expected = Template(TEMPLATE_HEAD).render(context)
                    assert str(table_head_cells(context, table)) == expected, (language, query)
    assert len(HEAD_MEMO) == 2 * len(queries)
    # Sorted by the view (no ?sort=): the same query string, another header.
    request = RequestFactory().get("/list/")
    table = table_class([], order_by=("-item",))
    context = Context({"table": table, "request": request})
    expected = Template(TEMPLATE_HEAD).render(context)
    assert 'aria-sort="descending"' in expected
    assert str(table_head_cells(context, table)) == expected
    HEAD_MEMO.clear()


# The pager's page links the template rendered before portal_tables.table_page_links.
TEMPLATE_PAGES = (
    "{% load i18n django_tables2 %}{% for p in table.page|table_page_range:table.paginator %}"
    "<li>{% if p == '...' %}<span aria-hidden=\"true\">…</span>{% elif p == table.page.number %}"
    '<a href="{% querystring_replace table.prefixed_page_field=p %}" aria-current="page">'
    '<span class="visually-hidden">{% translate "Page" %} </span>{{ p }}</a>{% else %}'
    '<a href="{% querystring_replace table.prefixed_page_field=p %}"><span '
    'class="visually-hidden">{% translate "Page" %} </span>{{ p }}</a>{% endif %}</li>'
    "{% endfor %}"
)


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("rows", [7, 2400])  # a few pages; more than ten, with gaps
@pytest.mark.parametrize(
    ("query", "prefix"),
    [("", ""), ("?page=6&sort=-name&q=%3Cx%3E+%26", ""), ("?t-page=1200&page=2", "t-")],
)
def test_page_links_in_python_equal_the_templates(language, rows, query, prefix):
    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.templatetags.portal_tables import table_page_links

    things = [_Thing(n, f"Thing {n}", n, None) for n in range(rows)]
    request = RequestFactory().get("/list/" + query)
    with translation.override(language):
        table = _ThingTable(things, prefix=prefix)
        tables.RequestConfig(request, paginate={"per_page": 2}).configure(table)
        context = Context({"table": table, "request": request})
        expected = Template(TEMPLATE_PAGES).render(context)
        assert str(table_page_links(context, table)) == expected
    assert expected.count("<li>") == min(table.paginator.num_pages, 10)


# templates/tables/table.html before it was written out whole (tables/table.html extending
# the library's django_tables2/table.html and overriding three of its blocks).
TEMPLATE_TABLE = (
    '{% extends "django_tables2/table.html" %}{% load i18n django_tables2 '
    "portal_tables %}\n"
    "{% block table.thead %}{% if table.show_header %}\n"
    "<thead {{ table.attrs.thead.as_html }}>\n"
    "  <tr>{% table_head_cells table %}\n"
    "  </tr>\n"
    "</thead>{% endif %}{% endblock table.thead %}\n"
    "{% block table.tbody %}\n"
    "<tbody {{ table.attrs.tbody.as_html }}>{% table_rows table %}</tbody>\n"
    "{% endblock table.tbody %}\n"
    "{% block pagination %}{% if table.page and table.paginator.num_pages > 1 %}\n"
    '<nav aria-label="{% translate \'Pages\' %}" class="pagination">\n'
    "  <p>{% if table.paginator.count_is_exact is False %}{% blocktranslate with "
    "page=table.page.number pages=table.paginator.num_pages "
    "count=table.paginator.count %}Page {{ page }} of {{ pages }} (more than {{ "
    "count }} entries: the pages show the first {{ count }}; filter to narrow the "
    "list){% endblocktranslate %}{% else %}{% blocktranslate with "
    "page=table.page.number pages=table.paginator.num_pages "
    "count=table.paginator.count %}Page {{ page }} of {{ pages }} ({{ count }} "
    "entries){% endblocktranslate %}{% endif %}</p>\n"
    "  <ul>\n"
    '    {% if table.page.has_previous %}<li><a href="{% querystring_replace '
    'table.prefixed_page_field=table.page.previous_page_number %}" rel="prev">{% '
    'translate "Previous page" %}</a></li>{% endif %}\n'
    "    {% table_page_links table %}\n"
    '    {% if table.page.has_next %}<li><a href="{% if table.page.next_after %}{% '
    "querystring_replace table.prefixed_page_field=table.page.next_page_number "
    '"after"=table.page.next_after %}{% else %}{% querystring_replace '
    'table.prefixed_page_field=table.page.next_page_number %}{% endif %}" '
    'rel="next">{% translate "Next page" %}</a></li>{% endif %}\n'
    "  </ul>\n"
    "</nav>{% endif %}{% endblock pagination %}\n"
)


class _FooterThingTable(_ThingTable):
    price = tables.Column(verbose_name="Price", localize=True, footer="Σ <all>")


@pytest.mark.parametrize("table_class", [_ThingTable, _FooterThingTable])
@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("rows", [0, 1, 7, 2400])  # empty, one page, a few, with gaps
@pytest.mark.parametrize(("query", "prefix"), [("", ""), ("?page=3&sort=-name&q=%3Cx%3E", "")])
def test_table_template_equals_the_one_extending_the_librarys(
    table_class, language, rows, query, prefix
):
    """tables/table.html, a template of its own, renders what it rendered extending the
    library's; the controlling tables still extend its blocks (tests/test_controlling*)."""
    from django.template import Context, Template
    from django.template.loader import get_template
    from django.test import RequestFactory

    things = [_Thing(n, f"Thing <{n}>", n, None) for n in range(rows)]
    request = RequestFactory().get("/list/" + query)

    def context():
        table = table_class(things, prefix=prefix)
        tables.RequestConfig(request, paginate={"per_page": 2}).configure(table)
        return {"table": table, "request": request}

    with translation.override(language):
        expected = Template(TEMPLATE_TABLE).render(Context(context()))
        assert get_template("tables/table.html").render(context()) == expected
    assert ("<tfoot" in expected) == (table_class is _FooterThingTable)


def test_tables_built_in_sequence_keep_their_columns_apart():
    # Each table copies its columns shallowly (itportal.tables.copy_tables2_columns_shallowly):
    # what one table sets on its columns must reach neither the class nor the next table.
    from django.test import RequestFactory

    things = [_Thing(2, "b", 3, None), _Thing(1, "a", 5, None)]
    first = _ThingTable(things, request=RequestFactory().get("/?sort=-name"))
    first.columns.hide("price")
    second = _ThingTable(things, request=RequestFactory().get("/"))

    assert first.columns["pk"].column is not _ThingTable.base_columns["pk"]
    assert first.columns["pk"].column is not second.columns["pk"].column
    assert not first.columns["price"].visible
    assert second.columns["price"].visible
    assert _ThingTable.base_columns["price"].visible
    assert [str(o) for o in first.order_by] == ["-name"]
    assert not second.order_by
    assert [row.record.pk for row in first.rows] == [2, 1]
    assert [row.record.pk for row in second.rows] == [2, 1]
    # An unset accessor is filled in on the table's copy only.
    assert _ThingTable.base_columns["name"].accessor is None
    assert first.columns["name"].accessor == "name"


def test_shallow_column_copies_render_as_deep_ones():
    import copy

    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.tables import copy_tables2_columns_shallowly

    things = [_Thing(1, "a <b>", 5, datetime.date(2026, 1, 2))]
    template = Template("{% load django_tables2 %}{% render_table table %}")
    request = RequestFactory().get("/?sort=price")

    def render():
        table = _CallableAttrsTable(things, request=request)
        table.columns.hide("raw")
        return template.render(Context({"table": table, "request": request}))

    shallow = render()
    del tables.Column.__deepcopy__, tables.Column._portal_shallow_copies
    try:
        assert copy.deepcopy(_ThingTable.base_columns["pk"]).attrs is not (
            _ThingTable.base_columns["pk"].attrs
        )
        assert render() == shallow
    finally:
        copy_tables2_columns_shallowly()
    assert _ThingTable.base_columns["raw"].visible


@pytest.mark.parametrize("language", ["de", "en"])
def test_page_table_renders_as_render_table(rf, language):
    """``{% page_table %}`` (the list pages' table, rendered in the page's context) gives
    django-tables2's ``{% render_table %}``: header with sorting links, rows, pager."""
    from decimal import Decimal

    from django.template import RequestContext, Template

    rows = [
        _Thing(n, f"Notebook <{n}>", Decimal(n), datetime.date(2026, 12, n % 28 + 1))
        for n in range(1, 30)
    ]
    request = rf.get("/things/", {"sort": "-name", "page": "2", "q": "a&b"})
    with translation.override(language):
        rendered = []
        for tag in ("{% load django_tables2 %}{% render_table table %}",
                    "{% load portal_tables %}{% page_table table %}"):  # fmt: skip
            table = _ThingTable(rows, order_by=request.GET["sort"])
            table.paginate(page=2, per_page=10)
            rendered.append(Template(tag).render(RequestContext(request, {"table": table})))
    assert rendered[0] == rendered[1]
    assert 'aria-current="page"' in rendered[1] and "NOTEBOOK &lt;" in rendered[1]


# The pager's markup in TEMPLATE_TABLE: its block's content where there are pages.
_PAGER_OPEN = "{% block pagination %}{% if table.page and table.paginator.num_pages > 1 %}"
_PAGER_CLOSE = "{% endif %}{% endblock pagination %}"
TEMPLATE_PAGER = TEMPLATE_TABLE.split(_PAGER_OPEN)[1].split(_PAGER_CLOSE)[0]


@pytest.mark.parametrize("language", ["de", "en"])
def test_kept_pagers_equal_the_templates(language):
    """A pager kept per process (``kept_pager``) is the markup the template renders for
    the page, its query string and language; each page and query has its own."""
    from django.template import Context, Template
    from django.test import RequestFactory

    from itportal.templatetags.portal_tables import PAGER_MEMO

    PAGER_MEMO.clear()
    things = [_Thing(n, f"Thing {n}", n, None) for n in range(2400)]
    load = "{% load i18n django_tables2 portal_tables %}"
    kept = Template(f"{load}{{% kept_pager table %}}{TEMPLATE_PAGER}{{% endkept_pager %}}")
    plain = Template(load + TEMPLATE_PAGER)
    queries = ["", "?page=2", "?page=600&sort=-name&q=%3Cx%3E+%26", "?page=1200", "?page=2&x=1"]
    seen = set()
    with translation.override(language):
        for _round in range(2):  # rendered, then kept
            for query in queries:
                request = RequestFactory().get("/list/" + query)
                table = _ThingTable(things)
                tables.RequestConfig(request, paginate={"per_page": 2}).configure(table)
                context = Context({"table": table, "request": request})
                expected = plain.render(context)
                assert kept.render(context) == expected, query
                seen.add(expected)
    assert len(seen) == len(queries) == len(PAGER_MEMO)
    PAGER_MEMO.clear()
