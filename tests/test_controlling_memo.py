"""Controlling markup kept per process (itportal/memo.py, metrics/templatetags/reports.py,
the chart tag, the rows of value tables in portal_tables): the same output as rendering,
and a changed figure shows at once, with no invalidation to forget."""

from __future__ import annotations

import dataclasses
import datetime
import re
from decimal import Decimal

import django_tables2 as tables
import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from assist import reclaim
from itportal.memo import Memo, kept_value_key, value_key, weight
from itportal.templatetags.portal_tables import ROW_MEMO
from metrics.controlling import rollup
from metrics.controlling.selectors import CostRow, SatisfactionRow
from metrics.controlling.tables import CostTable, RatingCommentTable, SatisfactionTable
from metrics.templatetags.charts import CHART_MEMO
from metrics.templatetags.reports import FILTERS_MEMO, REPORT_BODIES, TABLE_MEMO
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.test_controlling import PERIOD, Data, at, make_request


@pytest.fixture(autouse=True)
def empty_memos():
    from metrics.controlling.selectors import _KEPT_ROWS

    for memo in (ROW_MEMO, TABLE_MEMO, CHART_MEMO, FILTERS_MEMO, REPORT_BODIES, _KEPT_ROWS):
        memo.clear()


@dataclasses.dataclass(frozen=True)
class Inner:
    values: list[float]


@dataclasses.dataclass(frozen=True)
class Outer:
    amount: Decimal
    inner: Inner


@dataclasses.dataclass(frozen=True)
class Hidden:
    shown: int
    hidden: int = dataclasses.field(default=0, repr=False)


@dataclasses.dataclass(frozen=True)
class HoldsAnObject:
    thing: object


def test_value_key_tells_apart_what_renders_differently():
    assert value_key(Outer(Decimal("5"), Inner([1.0]))) != value_key(
        Outer(Decimal("5.00"), Inner([1.0]))
    )
    assert value_key(Outer(Decimal("5"), Inner([1]))) != value_key(
        Outer(Decimal("5"), Inner([True]))
    )
    assert value_key(Outer(Decimal("5"), Inner([1.5]))) == value_key(
        Outer(Decimal("5"), Inner([1.5]))
    )


def test_value_key_is_none_for_what_it_cannot_vouch_for():
    assert value_key(Hidden(1, 2)) is None  # a field left out of the repr
    assert value_key(HoldsAnObject(object())) is None  # e.g. a model instance
    assert value_key({"a": 1}) is None
    assert value_key(("a", 1)) is None


def test_kept_value_key_is_value_key_kept_for_frozen_rows():
    row = Outer(Decimal("5"), Inner([1.5]))
    assert kept_value_key(row) == value_key(row)
    assert kept_value_key(row) is kept_value_key(row)  # kept: the same tuple
    # An equal row is another object: its own key, equal to the first.
    twin = Outer(Decimal("5"), Inner([1.5]))
    assert kept_value_key(twin) == kept_value_key(row) and kept_value_key(twin) is not (
        kept_value_key(row)
    )
    assert kept_value_key(Hidden(1, 2)) is None

    @dataclasses.dataclass
    class Changing:
        value: int

    changing = Changing(1)
    assert kept_value_key(changing) == value_key(changing)
    changing.value = 2  # not frozen: never kept
    assert kept_value_key(changing) == value_key(Changing(2))


def test_memo_keeps_the_most_recently_used():
    memo = Memo(2, 1 << 20)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # now the most recent
    memo.put("c", 3)
    assert memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3
    assert len(memo) == 2


def test_memo_keeps_within_its_budget():
    """Large entries push out the oldest until the weights fit; one heavier than the whole
    budget is not kept at all (a process cannot grow without limit)."""
    memo = Memo(100, 3000)
    for name in "abc":
        memo.put(name, name * 900)
    assert memo.get("a") is None and memo.get("b") and memo.get("c")
    assert memo._weight <= 3000
    memo.put("huge", "x" * 4000)
    assert memo.get("huge") is None and memo.get("c")
    memo.put("c", "short")  # replacing an entry gives its weight back
    assert memo._weight == weight("c") + weight("short") + weight("b") + weight("b" * 900)
    assert weight(("ab", [1, 2.5])) > weight("ab") and weight({"k": "v" * 100}) > 100


def cost_rows(count: int) -> list[CostRow]:
    return [
        CostRow(datetime.date(2025, 1 + i, 1), f"KS{i}", f"<Amt {i}>", i, Decimal("1.50"), i,
                Decimal(f"{i}.25"))
        for i in range(count)
    ]  # fmt: skip


def satisfaction_rows() -> list[SatisfactionRow]:
    return [
        SatisfactionRow(1, "VPN", 3, 2, Decimal("4.50"), 0, 0, 0, 1, 1),
        SatisfactionRow(None, "", 3, 2, Decimal("4.50"), 0, 0, 0, 1, 1),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "table_class, rows",
    [
        (CostTable, cost_rows(3)),
        (CostTable, cost_rows(0)),
        (SatisfactionTable, satisfaction_rows()),
    ],
)
def test_report_table_renders_as_render_table_again_and_again(table_class, rows):
    request = RequestFactory().get("/controlling/", {"page": "1"})
    rendered = Template("{% load django_tables2 %}{% render_table table %}")
    kept = Template("{% load reports %}{% report_table table %}")
    with translation.override("de"):
        expected = rendered.render(Context({"table": table_class(rows), "request": request}))
        for _ in range(3):  # rendered, then from the memo
            table = table_class(rows)
            assert kept.render(Context({"table": table, "request": request})) == expected
        # The rows' own memo as well (the table memo emptied): every row from it.
        TABLE_MEMO.clear()
        table = table_class(rows)
        assert kept.render(Context({"table": table, "request": request})) == expected
    with translation.override("en"):
        english = kept.render(Context({"table": table_class(rows), "request": request}))
    assert english != expected and ("Month" in english or "Service" in english)


@pytest.fixture
def controller(org):
    from tests.factories import UserFactory

    return UserFactory(username="controller", groups=[org.controlling])


def page(client, params) -> str:
    body = client.get("/controlling/", params).content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)


@pytest.mark.django_db
def test_a_back_dated_change_rolled_up_again_shows_at_once(client, org, controller):
    data = Data(org)
    rollup.refresh()
    client.force_login(controller)
    params = {**PERIOD, "cost_centre": data.ks1000.pk}
    first = page(client, params)
    assert page(client, params) == first  # from the memos
    assert "18.00" in first and "19.00" not in first  # February: 12.40 once + 5.60 monthly
    # A request fulfilled in February, entered late: the trigger marks the month dirty.
    ServiceRequest.objects.bulk_create(
        [
            make_request(data.vpn, org.bob, data.ks1000, price_once="1.00", price_monthly="0.00",
                         state=RequestState.FULFILLED, submitted=at(2025, 2, 2),
                         closed=at(2025, 2, 3))
        ]
    )  # fmt: skip
    live = page(client, params)  # the month read live
    assert "19.00" in live
    assert "2025-02" in rollup.refresh()["computed"]
    rolled = page(client, params)  # the new roll-up
    assert rolled == live


@pytest.mark.django_db
def test_a_report_page_kept_whole_is_the_page_rendered(client, org, controller, monkeypatch):
    """Costs, usage and lead times keep their figures' markup under the rows' token and the
    query string (views.ControllingTableView.body_key): a page shown from it is the page
    rendered anew, per page, filter, breakdown and language, and builds no chart."""
    from metrics.controlling import figures
    from metrics.controlling.selectors import _KEPT_ROWS

    data = Data(org)
    rollup.refresh()
    client.force_login(controller)
    pages = {
        "/controlling/": [{}, PERIOD, {**PERIOD, "cost_centre": data.ks1000.pk}],
        "/controlling/nutzung/": [PERIOD, {**PERIOD, "breakdown": "department"}],
        "/controlling/durchlaufzeiten/": [PERIOD, {"period_from": "2019-01"}],
    }

    def view(path, params, language):
        response = client.get(path, params, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())

    shown = {}
    for path, variants in pages.items():
        for params in variants:
            for language in ("de", "en"):
                shown[path, str(params), language] = view(path, params, language)
    assert len(REPORT_BODIES) == len(shown)
    assert len(set(shown.values())) == len(shown)
    for name in ("cost_chart", "usage_chart", "lead_time_chart"):
        monkeypatch.setattr(figures, name, None)  # kept: no chart is built
    for path, variants in pages.items():
        for params in variants:
            for language in ("de", "en"):
                assert view(path, params, language) == shown[path, str(params), language]
    monkeypatch.undo()
    for memo in (REPORT_BODIES, TABLE_MEMO, CHART_MEMO, _KEPT_ROWS):
        memo.clear()
    for (path, params, language), html in shown.items():
        params = dict(next(p for p in pages[path] if str(p) == params))
        assert view(path, params, language) == html  # rendered anew


@pytest.mark.django_db
def test_stored_rows_are_the_stored_candidates_in_plain_values(org, settings):
    from tests.test_assist_reclaim_ranked import Crowd

    Crowd(org, settings)
    as_of, candidates = reclaim.stored_candidates(limit=10)
    again, rows = reclaim.stored_rows(limit=10)
    assert again == as_of and len(rows) == len(candidates) > 0
    for row, candidate in zip(rows, candidates, strict=True):
        entitlement = candidate.entitlement
        assert row == reclaim.CandidateRow(
            holder=entitlement.holder.display_name,
            department=entitlement.holder.department.name,
            service=entitlement.item.name,
            since=entitlement.granted_at,
            monthly=candidate.monthly,
            risk=candidate.risk,
            reasons=tuple(candidate.reasons),
        )
        assert value_key(row) is not None


@pytest.mark.django_db
def test_comments_past_the_first_page_are_values_too(org):
    """The pager chooses a later page's ratings by id; they are read as ``CommentRow``s as
    on the first page, with the service and the fulfilment date."""
    from metrics.controlling import selectors
    from metrics.controlling.views import CommentPaginator
    from tests.test_ratings import JANUARY, Ratings

    Ratings(org)

    def ratings():
        return selectors.rating_comments(ServiceRequest.objects.all(), **JANUARY)

    expected = [
        selectors.CommentRow(r.request.item.name, r.score, r.comment, r.request.closed_at,
                             r.rated_at)
        for r in ratings()
    ]  # fmt: skip
    assert len(expected) == 3
    table = RatingCommentTable(selectors.CommentRows(ratings()))
    table.paginate(paginator_class=CommentPaginator, per_page=1, page=2)
    assert [row.record for row in table.paginated_rows] == expected[1:2]
    assert table.paginator.count == 3
    assert list(selectors.CommentRows(ratings())) == expected


@pytest.mark.django_db
def test_the_kept_filter_form_follows_its_options_and_data(client, org, controller):
    client.force_login(controller)
    department = org.department
    first = page(client, {})
    assert f">{department.code} {department.name}</option>" in first
    assert page(client, {}) == first and len(FILTERS_MEMO) == 1
    department.name = "Umbenanntes Amt"
    department.save()
    assert f">{department.code} Umbenanntes Amt</option>" in page(client, {})
    # Other data, another form: the choice shown as selected, a bad one as an error.
    chosen = page(client, {"department": department.pk})
    assert f'<option value="{department.pk}" selected>' in chosen
    bad = page(client, {"department": 999999})
    assert 'class="errors"' in bad and 'class="errors"' not in chosen


def test_a_chart_is_kept_only_when_its_fields_are_plain_values():
    """A lazy translation's repr says where it lives, not what it reads: such a chart is
    drawn every time; a plain one under its fields, the language and the time zone."""
    from django.utils.translation import gettext_lazy

    from metrics.charts import Chart, Series
    from metrics.templatetags.charts import chart_key

    def make(title):
        return Chart("bar", "c1", title, ["01/2025"], [Series("KS1000", [Decimal("1.50")])])

    assert chart_key(make(gettext_lazy("Costs"))) is None
    with translation.override("de"):
        german = chart_key(make("Kosten"))
    assert german is not None and german != chart_key(make("Kosten"))
    assert chart_key(make("Kosten")) == chart_key(make("Kosten"))


def test_the_demand_chart_is_kept_for_the_same_rows():
    from metrics.controlling.figures import demand_chart, kept_demand_chart
    from metrics.controlling.forecast import Forecast
    from metrics.controlling.selectors import ForecastRow

    def row(last_orders):
        forecast = Forecast(
            months=[datetime.date(2026, 12, 1)], values=[4.0], slope=0.5, intercept=1.0,
            seasonal=False, indices={},
        )  # fmt: skip
        return ForecastRow(
            item_id=1, service="Notebook", category="Hardware",
            first_month=datetime.date(2026, 9, 1), history=[2, 3, last_orders],
            forecast=forecast,
        )  # fmt: skip

    period = (datetime.date(2026, 9, 1), datetime.date(2026, 11, 1))
    rows = [row(4)]
    with translation.override("en"):
        chart = kept_demand_chart(rows, *period)
        assert chart == demand_chart(rows, *period)
        assert kept_demand_chart(list(rows), *period) is chart  # the same rows: kept
        changed = kept_demand_chart([row(5)], *period)  # other figures: another chart
        assert changed is not chart and changed == demand_chart([row(5)], *period)
    with translation.override("de"):
        assert kept_demand_chart(rows, *period) == demand_chart(rows, *period) != chart


@pytest.mark.django_db
def test_stored_rows_are_kept_per_language_and_rows(org, settings):
    """The same objects while the rows read and the language stay the same (the table is
    then found by their identity); the reasons in the language, a changed name at once."""
    from tests.test_assist_reclaim_ranked import Crowd

    Crowd(org, settings)
    with translation.override("en"):
        _, rows = reclaim.stored_rows(limit=10)
        _, again = reclaim.stored_rows(limit=10)
    assert rows and all(a is b for a, b in zip(again, rows, strict=True))
    with translation.override("de"):
        _, german = reclaim.stored_rows(limit=10)
    assert german[0] is not rows[0] and german[0].reasons != rows[0].reasons
    entitlement = reclaim.stored_candidates(limit=1)[1][0].entitlement
    user = entitlement.holder.user
    user.first_name, user.last_name = "Renamed", "Holder"
    user.save()
    with translation.override("en"):
        _, renamed = reclaim.stored_rows(limit=10)
    assert renamed[0].holder == "Renamed Holder" and renamed[0] is not rows[0]


@pytest.mark.django_db
def test_the_controlling_navigation_marks_the_current_page(client, org, controller):
    """The navigation is kept per current page and language: each page marks itself."""
    client.force_login(controller)
    for url in ("/controlling/", "/controlling/sla/", "/controlling/auffaelligkeiten/"):
        for language in ("de", "en"):
            client.cookies["django_language"] = language
            body = client.get(url).content.decode()
            nav = body[body.index('<nav aria-label="Controlling">') :]
            nav = nav[: nav.index("</ul>")]
            assert re.findall(r'<a href="([^"]+)" aria-current="page"', nav) == [url]
            assert "/controlling/auffaelligkeiten/" in nav
            assert ("Costs per cost centre" in nav) == (language == "en")


@dataclasses.dataclass(frozen=True)
class One:
    value: object


@dataclasses.dataclass(frozen=True)
class NoFields:
    pass


def test_value_key_of_one_field_no_field_and_mixed_values():
    # The fields' values are read by one getter per class: one field and none too.
    assert value_key(One(1)) == (One, "1") and value_key(One(1)) != value_key(One(True))
    assert value_key(One([1, Decimal("2.0")])) == (One, "[1, Decimal('2.0')]")
    assert value_key(One(object())) is None and value_key(One([object()])) is None
    assert value_key(NoFields()) == (NoFields,)
    row = cost_rows(2)[1]
    assert value_key(row) == (CostRow, *(repr(getattr(row, f.name)) for f in
                                         dataclasses.fields(CostRow)))  # fmt: skip


@pytest.mark.django_db
def test_report_table_columns_key_follows_the_shown_columns_and_language():
    """The columns' part of a report table's key is kept per class: a view that excludes a
    column (usage by service) or adds its own (the forecast's months) is told apart."""
    from metrics.controlling.selectors import UsageRow
    from metrics.controlling.tables import UsageTable
    from metrics.templatetags.reports import _column_key, _columns_key

    rows = [UsageRow(datetime.date(2025, 1, 1), "VPN", "D1 IT", 2, 3)]
    request = RequestFactory().get("/controlling/nutzung/")
    rendered = Template("{% load django_tables2 %}{% render_table table %}")
    kept = Template("{% load reports %}{% report_table table %}")
    for kwargs in ({}, {"exclude": ("group",)}, {}, {"exclude": ("group",)}):
        for language in ("de", "en"):
            with translation.override(language):
                table = UsageTable(rows, **kwargs)
                assert table.head_is_declared
                assert _columns_key(table) == tuple(_column_key(c) for c in table.columns)
                expected = rendered.render(
                    Context({"table": UsageTable(rows, **kwargs), "request": request})
                )
                assert kept.render(Context({"table": table, "request": request})) == expected
    extra = UsageTable(rows, extra_columns=[("more", tables.Column(verbose_name="More"))])
    assert not extra.head_is_declared and "More" in str(_columns_key(extra))


@pytest.mark.django_db
def test_comment_pages_by_a_kept_statement_are_the_orms(org):
    """The satisfaction page's comment pages are read by a statement compiled once per
    scope, period and slice: the same rows as the ORM's, each scope its own."""
    from metrics.controlling import selectors
    from metrics.controlling.rollup import Scope
    from tests.test_ratings import JANUARY, Ratings

    Ratings(org)
    requests = ServiceRequest.objects.all()
    key = ("test", Scope(), *JANUARY.values())
    for _ in range(2):  # compiled, then kept
        rows = selectors.CommentRows(selectors.rating_comments(requests, **JANUARY), key=key)
        plain = selectors.CommentRows(selectors.rating_comments(requests, **JANUARY))
        assert rows[0:2] == plain[0:2] and len(rows[0:2]) == 2
        assert rows[1:3] == plain[1:3] and rows[0:25] == list(plain)
    # A scope whose requests are none: no statement, no rows.
    none = selectors.CommentRows(
        selectors.rating_comments(requests.none(), **JANUARY), key=("test", Scope(nothing=True))
    )
    assert none[0:25] == []
