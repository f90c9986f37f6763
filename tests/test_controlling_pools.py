"""Licence pools: used / free, warnings and the exhaustion date, computed by hand.

"Now" is 2025-06-30 12:00 Berlin; the trend window is the 90 days before it, i.e. after
2025-04-01 12:00.

Visio, pool 20 (warning level by default a tenth: 2):
  E1–E5   active, granted 2025-01-10           → held, before the window
  E6      being revoked, granted 2025-02-01    → still held (licence not yet returned)
  E7      revoked 2025-05-15 (granted Jan)     → a revocation in the window
  E8      revoked 2025-03-01 (granted Jan)     → before the window, not counted
  E9–E17  active, granted weekly 2025-04-10 … 2025-06-05 → 9 grants in the window
  R1      approved, no entitlement yet; R2 in fulfilment → 2 reserved
  R3      rejected, R4 cancelled               → not counted
  held 5 + 1 + 9 = 15, reserved 2, used 17, free 3, 85.0 % used.
  Net growth 9 − 1 = 8 in 90 days. 3 free licences last 3 × 90 / 8 = 33.75 → 34 days:
  2025-06-30 + 34 days = 2025-08-03.
Fax, pool 10: one grant and one revocation in the window → net 0 → no exhaustion expected.
Plotter, pool 2: two active → free 0 → exhausted now.
VPN: no pool → not listed.
"""

import datetime
import xml.etree.ElementTree as ET

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from catalogue.models import CatalogueItem
from metrics.controlling import selectors
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.factories import CatalogueItemFactory, UserFactory
from tests.test_controlling import at, make_request

NOW = at(2025, 6, 30)
ACTIVE, REVOKING, REVOKED = (
    EntitlementState.ACTIVE,
    EntitlementState.REVOKING,
    EntitlementState.REVOKED,
)
EN = {"headers": {"accept-language": "en"}}


class Pools:
    def __init__(self, org):
        self.org = org
        self.visio = CatalogueItemFactory(name="Visio", slug="visio", licence_pool_size=20)
        self.fax = CatalogueItemFactory(name="Fax", slug="fax", licence_pool_size=10)
        self.plotter = CatalogueItemFactory(name="Plotter", slug="plotter", licence_pool_size=2)
        self.vpn = CatalogueItemFactory(name="VPN", slug="vpn")
        visio_grants = [at(2025, 4, 10) + datetime.timedelta(days=7 * i) for i in range(9)]
        assert visio_grants[-1] == at(2025, 6, 5)
        self.entitle(self.visio, [(at(2025, 1, 10), ACTIVE, None)] * 5)
        self.entitle(self.visio, [(at(2025, 2, 1), REVOKING, None)])
        self.entitle(self.visio, [(at(2025, 1, 15), REVOKED, at(2025, 5, 15))])
        self.entitle(self.visio, [(at(2025, 1, 15), REVOKED, at(2025, 3, 1))])
        self.entitle(self.visio, [(when, ACTIVE, None) for when in visio_grants])
        self.requests(self.visio, [RequestState.APPROVED, RequestState.IN_FULFILMENT,
                                   RequestState.REJECTED, RequestState.CANCELLED])  # fmt: skip
        self.entitle(self.fax, [(at(2025, 5, 2), ACTIVE, None)])
        self.entitle(self.fax, [(at(2025, 1, 2), REVOKED, at(2025, 5, 3))])
        self.entitle(self.plotter, [(at(2025, 1, 2), ACTIVE, None)] * 2)
        self.entitle(self.vpn, [(at(2025, 5, 2), ACTIVE, None)])

    def requests(self, item, states):
        org = self.org
        return ServiceRequest.objects.bulk_create(
            [make_request(item, org.bob, org.cost_centre, price_once="0", price_monthly="0",
                          state=state, submitted=at(2025, 6, 1)) for state in states]
        )  # fmt: skip

    def entitle(self, item, grants):
        requests = self.requests(item, [RequestState.FULFILLED] * len(grants))
        Entitlement.objects.bulk_create(
            [
                Entitlement(holder=self.org.bob, item=item, request=request, state=state,
                            granted_at=granted, revoked_at=revoked)
                for request, (granted, state, revoked) in zip(requests, grants, strict=True)
            ]
        )  # fmt: skip


@pytest.fixture
def pools(org):
    return Pools(org)


@pytest.fixture
def controller(org):
    return UserFactory(username="controller", groups=[org.controlling])


def by_name(**kwargs):
    return {row.service: row for row in selectors.licence_pools(now=NOW, **kwargs)}


@pytest.mark.django_db
def test_used_free_and_exhaustion_by_hand(pools):
    rows = by_name()
    assert set(rows) == {"Visio", "Fax", "Plotter"}
    visio = rows["Visio"]
    assert (visio.in_use, visio.reserved, visio.used, visio.free) == (15, 2, 17, 3)
    assert str(visio.percent_used) == "85.0"
    assert (visio.granted, visio.revoked, visio.net_growth) == (9, 1, 8)
    assert str(visio.growth_per_30_days) == "2.7"  # 8 × 30 / 90 = 2.67
    assert visio.warning_level == 2
    assert not visio.is_warning
    assert visio.exhausted_on == datetime.date(2025, 8, 3)


@pytest.mark.django_db
def test_flat_trend_and_exhausted_pool(pools):
    rows = by_name()
    fax = rows["Fax"]
    assert (fax.used, fax.free, fax.net_growth) == (1, 9, 0)
    assert fax.exhausted_on is None
    plotter = rows["Plotter"]
    assert plotter.free == 0
    assert plotter.is_exhausted and plotter.is_warning
    assert plotter.exhausted_on == datetime.date(2025, 6, 30)


@pytest.mark.django_db
def test_warning_threshold(pools):
    CatalogueItem.objects.filter(pk=pools.visio.pk).update(licence_warning_below=4)
    visio = by_name()["Visio"]
    assert visio.warning_level == 4
    assert visio.is_warning  # 3 free < 4


@pytest.mark.django_db
def test_trend_window_is_configurable(pools):
    # 30 days (after 2025-05-31 12:00): one Visio grant (Jun 5), no revocation.
    # 3 free × 30 / 1 = 90 days → 2025-06-30 + 90 days = 2025-09-28
    # (July 31 days → Jul 30 is day 30, Aug 29 day 60, Sep 28 day 90).
    visio = by_name(trend_days=30)["Visio"]
    assert (visio.granted, visio.revoked) == (1, 0)
    assert visio.exhausted_on == datetime.date(2025, 9, 28)


@pytest.mark.django_db
def test_the_statement_is_compiled_once_per_set_of_items(pools, monkeypatch):
    """The pools are read by a statement compiled once per set of items (the category
    filter), the trend window's ends bound per call: the same rows as compiled anew."""
    selectors._POOL_STATEMENTS.clear()
    first = by_name()
    other_window = by_name(trend_days=30)
    category = CatalogueItem.objects.filter(category=pools.fax.category_id)
    in_category = selectors.licence_pools(category, now=NOW)
    assert len(selectors._POOL_STATEMENTS) == 2  # all items, one category

    def no_compiling(items):
        raise AssertionError("compiled again")

    monkeypatch.setattr(selectors, "_pools_statement", no_compiling)
    assert by_name() == first
    assert by_name(trend_days=30) == other_window
    assert selectors.licence_pools(category, now=NOW) == in_category
    assert other_window["Visio"].granted == 1 != first["Visio"].granted
    assert selectors.licence_pools(CatalogueItem.objects.none(), now=NOW) == []


@pytest.mark.django_db
def test_pool_validation(org):
    item = CatalogueItemFactory()
    item.licence_pool_size, item.licence_warning_below = 10, 11
    with pytest.raises(ValidationError) as error:
        item.full_clean()
    assert "licence_warning_below" in error.value.message_dict
    assert "(10)" in " ".join(error.value.message_dict["licence_warning_below"])
    item.licence_pool_size = None
    with pytest.raises(ValidationError) as error:
        item.full_clean()
    assert "licence_warning_below" in error.value.message_dict
    item.licence_pool_size, item.licence_warning_below = -1, None
    with pytest.raises(ValidationError) as error:
        item.full_clean()
    assert "licence_pool_size" in error.value.message_dict
    item.licence_pool_size, item.licence_warning_below = 0, 0
    item.full_clean()  # a pool of 0 is allowed: nothing may be handed out
    assert item.licence_warning_level == 0
    item.licence_warning_below = None
    item.licence_pool_size = 150
    assert item.licence_warning_level == 15
    item.licence_pool_size = 151
    assert item.licence_warning_level == 16  # rounded up


@pytest.mark.django_db
def test_database_refuses_threshold_above_pool(org):
    with pytest.raises(IntegrityError), transaction.atomic():
        CatalogueItemFactory(licence_pool_size=5, licence_warning_below=6)


@pytest.mark.django_db
def test_admin_form_shows_clear_errors(client, org):
    """The IT admin edits the pool on the item's admin page; bad values come back as errors."""
    org.admin.user.is_staff = True
    org.admin.user.is_superuser = True
    org.admin.user.save()
    item = CatalogueItemFactory(name="Visio", slug="visio")
    client.force_login(org.admin.user)
    url = f"/admin/catalogue/catalogueitem/{item.pk}/change/"
    page = client.get(url, **EN)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["allowed_departments"] = []
    data["allowed_groups"] = []
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    for size, below, message in [
        ("-3", "", "greater than or equal to 0"),
        ("abc", "", "Enter a whole number."),
        ("10", "11", "cannot exceed the licence pool size (10)"),
        ("", "2", "A warning threshold needs a licence pool size."),
    ]:
        response = client.post(
            url, {**data, "licence_pool_size": size, "licence_warning_below": below}, **EN
        )
        assert response.status_code == 200, size
        assert message in response.content.decode(), (size, below)
    response = client.post(url, {**data, "licence_pool_size": "150", "licence_warning_below": ""})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.licence_pool_size == 150
    assert item.version == 1  # resizing the pool is no new version of the order form
    response = client.post(url, {**data, "name": "Visio 2024", "licence_pool_size": "150"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.version == 2


@pytest.mark.django_db
def test_pools_page(client, pools, controller):
    client.force_login(controller)
    response = client.get("/controlling/lizenzpools/", **EN)
    assert response.status_code == 200
    body = response.content.decode()
    table = body.split("<table")[-1]
    assert "Visio" in table and "VPN" not in table
    # The warning is said in words, not colour only.
    assert "Plotter: exhausted, no free licence." in body
    assert "Exhausted: no free licence" in table
    assert "no exhaustion expected" in table
    assert 'role="img"' in body and "How the figures are computed" in body
    assert "1 of 3 pools are below their warning level." in body  # Plotter only
    assert "Fullest: Plotter with 100.0 % in use." in body
    only = client.get("/controlling/lizenzpools/", {"attention_only": "on"}, **EN)
    table = only.content.decode().split("<table")[-1]
    assert "Plotter" in table and "Fax" not in table


@pytest.mark.django_db
def test_item_page_shows_free_licences_and_still_orders(client, pools, org):
    client.force_login(org.alice.user)
    body = client.get("/leistung/fax/", **EN).content.decode()
    assert "9 of 10 licences free." in body
    body = client.get("/leistung/plotter/", **EN).content.decode()
    assert "No licence is free at the moment." in body
    assert "/leistung/plotter/bestellen/" in body  # ordering stays possible, flagged
    order = client.get("/leistung/plotter/bestellen/", **EN)
    assert order.status_code == 200
    assert "No licence is free at the moment." in order.content.decode()
    body = client.get("/leistung/vpn/", **EN).content.decode()
    assert "licences free" not in body and "No licence is free" not in body


@pytest.mark.django_db
def test_pools_page_query_count_constant(client, pools, controller):
    """More pools and more entitlements must not mean more queries."""
    client.force_login(controller)
    counts = []
    for batch in range(2):
        for i in range(10 * batch):
            item = CatalogueItemFactory(name=f"Pool {batch}-{i}", licence_pool_size=5 + i)
            pools.entitle(item, [(at(2025, 5, 2), ACTIVE, None)] * 2)
            pools.requests(item, [RequestState.APPROVED])
        client.get("/controlling/lizenzpools/")  # warm
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/controlling/lizenzpools/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    for path in ("/leistung/visio/", "/leistung/visio/bestellen/"):
        client.force_login(pools.org.alice.user)
        client.get(path)
        with CaptureQueriesContext(connection) as ctx:
            client.get(path)
        before = len(ctx.captured_queries)
        pools.entitle(pools.visio, [(at(2025, 5, 2), ACTIVE, None)] * 5)
        with CaptureQueriesContext(connection) as ctx:
            client.get(path)
        assert len(ctx.captured_queries) == before


@pytest.mark.django_db
def test_service_named_like_markup_stays_inert_in_chart_and_table(client, pools, controller):
    evil = '<script>alert("x")</script>'
    CatalogueItem.objects.filter(pk=pools.fax.pk).update(name=evil)
    client.force_login(controller)
    body = client.get("/controlling/lizenzpools/", **EN).content.decode()
    assert evil not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body  # table and chart data
    svg = body[body.index("<svg") : body.index("</svg>") + 6]
    root = ET.fromstring(svg)  # noqa: S314 - the portal's own markup
    assert not [e for e in root.iter() if e.tag.endswith("script")]
