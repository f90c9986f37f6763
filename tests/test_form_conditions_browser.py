"""Conditional fields in the browser: static/js/form-conditions.js shows, hides and marks as
required what catalogue/conditions.py decides, on the real order page in Debian's Chromium;
the post that follows is judged by the server alike (axe as in test_accessibility)."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from catalogue.choices import ConditionEffect, ConditionOperator, FieldType, RuleKind
from catalogue.models import Bundle, BundleItem, FormRule
from tests.factories import CatalogueItemFactory, FormFieldFactory
from tests.test_accessibility import (
    AXE_OPTIONS,
    CHROMIUM,
    CHROMIUM_ARGS,
    FAILING_IMPACTS,
    SKIP_BROWSER,
    log_in,
    submit,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(SKIP_BROWSER and not CHROMIUM.exists(), reason="no Chromium"),
]


@pytest.fixture
def item(org):
    item = CatalogueItemFactory(name="Beamer", slug="beamer", service_owner=org.service_desk)
    FormFieldFactory(
        item=item,
        key="place",
        label="Wo?",
        field_type=FieldType.CHOICE,
        choices="Büro\nSaal",
        position=1,
    )
    FormFieldFactory(
        item=item,
        key="room",
        label="Raum",
        field_type=FieldType.TEXT,
        answer_format="room_number",
        position=2,
        condition_effect=ConditionEffect.SHOW,
        condition_field="place",
        condition_operator=ConditionOperator.EQUALS,
        condition_value="Saal",
    )
    FormFieldFactory(
        item=item, key="days", label="Tage", field_type=FieldType.NUMBER, required=False, position=3
    )
    FormFieldFactory(
        item=item,
        key="reason",
        label="Begründung",
        field_type=FieldType.TEXT,
        required=False,
        position=4,
        condition_effect=ConditionEffect.REQUIRE,
        condition_field="days",
        condition_operator=ConditionOperator.ONE_OF,
        condition_value="5\n6\n7",
    )
    FormFieldFactory(item=item, key="start", label="Von", field_type=FieldType.DATE, position=5)
    FormFieldFactory(item=item, key="end", label="Bis", field_type=FieldType.DATE, position=6)
    FormRule.objects.create(item=item, kind=RuleKind.AFTER, first_field="end", second_field="start")
    return item


@pytest.fixture
def page(item):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(locale="de-DE")
        page = context.new_page()
        errors = []
        # Script errors only (the failed post's 400 and a favicon's 404 are no script errors).
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.console_errors = errors
        try:
            yield page
        finally:
            browser.close()


def room_box(page):
    return page.locator('[data-form-field="f_room"]')


def test_fields_appear_and_become_required_as_answers_change(live_server, org, item, page):
    log_in(page, live_server.url, org.alice.user.username)
    page.goto(f"{live_server.url}/leistung/{item.slug}/bestellen/")
    assert room_box(page).is_hidden()
    page.select_option("#id_f_place", "Saal")
    assert room_box(page).is_visible()
    assert "Pflichtfeld" in room_box(page).locator("label").inner_text()
    assert "Raumnummer" in room_box(page).inner_text()  # the format's description
    page.select_option("#id_f_place", "Büro")
    assert room_box(page).is_hidden()

    reason = page.locator('[data-form-field="f_reason"]')
    assert reason.is_visible() and "Pflichtfeld" not in reason.inner_text()
    page.fill("#id_f_days", "6")
    assert "Pflichtfeld" in reason.locator("label").inner_text()
    assert reason.locator("input").get_attribute("aria-required") == "true"
    page.fill("#id_f_days", "2")
    assert "Pflichtfeld" not in reason.inner_text()

    results = Axe().run(page, options=AXE_OPTIONS).response
    serious = [v["id"] for v in results["violations"] if v["impact"] in FAILING_IMPACTS]
    assert serious == []

    # The server judges the same way: a room for the hall, the rule across the dates.
    page.select_option("#id_f_place", "Saal")
    page.fill("#id_f_room", "Saal 1")
    page.fill("#id_f_start", "2030-05-10")
    page.fill("#id_f_end", "2030-05-01")
    submit(page, "main form button.primary")
    text = page.locator("main").inner_text()
    assert "Erwartetes Format: Raumnummer" in text
    assert "„Bis“ muss nach „Von“ liegen." in text
    assert room_box(page).is_visible()  # after the failed post, still shown for the hall

    page.select_option("#id_f_place", "Büro")  # the bad room answer is now discarded
    page.fill("#id_f_end", "2030-05-12")
    submit(page, "main form button.primary")
    assert re.search(r"/antraege/[0-9]+/$", page.url), page.url
    assert page.console_errors == []
    # The request page lists the answers kept: the hidden room's is gone.
    text = page.locator("main").inner_text()
    assert "Büro" in text and "Saal 1" not in text


@pytest.fixture
def bundle_entry(item):
    """The same item in a bundle: its form appears with a prefix, next to other items'."""
    bundle = Bundle.objects.create(name="Veranstaltung", slug="veranstaltung")
    BundleItem.objects.create(bundle=bundle, item=CatalogueItemFactory(), position=1)
    return BundleItem.objects.create(bundle=bundle, item=item, position=2)


def test_conditions_work_per_item_on_a_bundle_page(live_server, org, item, bundle_entry, page):
    log_in(page, live_server.url, org.alice.user.username)
    page.goto(f"{live_server.url}/paket/veranstaltung/bestellen/")
    prefix = f"e{bundle_entry.pk}-"
    room = page.locator(f'[data-form-field="{prefix}f_room"]')
    assert room.is_hidden()
    page.select_option(f"#id_{prefix}f_place", "Saal")
    assert room.is_visible()
    assert "Pflichtfeld" in room.locator("label").inner_text()
    page.select_option(f"#id_{prefix}f_place", "Büro")
    assert room.is_hidden()
    assert page.console_errors == []


def test_conditions_in_the_cart_as_on_the_server(live_server, org, item, page):
    """Adding to the cart: the browser shows and requires what the server then checks; the
    line keeps only the answers of shown fields, and submitting the cart orders them."""
    log_in(page, live_server.url, org.alice.user.username)
    page.goto(f"{live_server.url}/leistung/{item.slug}/bestellen/")
    page.select_option("#id_f_place", "Saal")
    assert room_box(page).is_visible()
    page.fill("#id_f_room", "Saal 1")  # not a room number
    page.fill("#id_f_days", "6")  # the reason becomes required
    reason = page.locator('[data-form-field="f_reason"]')
    assert "Pflichtfeld" in reason.locator("label").inner_text()
    page.fill("#id_f_start", "2030-05-10")
    page.fill("#id_f_end", "2030-05-12")
    submit(page, "main form button[name=to_cart]")
    text = page.locator("main").inner_text()
    assert "Erwartetes Format: Raumnummer" in text  # the server: the shown room's format
    assert "Begründung" in page.locator(".error-summary").inner_text()  # and the reason
    assert room_box(page).is_visible() and "Pflichtfeld" in reason.locator("label").inner_text()

    page.select_option("#id_f_place", "Büro")  # the room is hidden: its bad answer goes
    assert room_box(page).is_hidden()
    page.fill("#id_f_reason", "Tagung")
    submit(page, "main form button[name=to_cart]")
    assert page.url.endswith("/warenkorb/"), page.url
    cart = page.locator("main").inner_text()
    assert "Beamer" in cart and "Büro" in cart and "Tagung" in cart
    assert "Saal 1" not in cart

    submit(page, "main form[action$='/warenkorb/'] button.primary")
    assert re.search(r"/bestellung/[0-9]+/$", page.url), page.url
    assert page.console_errors == []


def test_the_editor_preview_follows_conditions_like_the_order_page(live_server, org, item, page):
    """The catalogue editor's live preview of the order form (as an IT admin)."""
    log_in(page, live_server.url, org.admin.user.username)
    page.goto(f"{live_server.url}/katalog/verwaltung/{item.pk}/")
    preview = page.locator("#preview")
    room = preview.locator('[data-form-field="f_room"]')
    assert room.is_hidden()
    preview.locator("select#preview_f_place").select_option("Saal")
    assert room.is_visible()
    assert "Pflichtfeld" in room.locator("label").inner_text()
    preview.locator("select#preview_f_place").select_option("Büro")
    assert room.is_hidden()
    assert page.console_errors == []
