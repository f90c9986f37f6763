"""The catalogue's cards and prices rendered in Python (catalogue/templatetags/portal.py)
give the markup of the templates they replaced (kept here as the reference)."""

from decimal import Decimal

import pytest
from django.template import Context, Engine
from django.utils import translation

from catalogue.models import CatalogueItem
from catalogue.templatetags.portal import item_cards, item_price

ENGINE = Engine(
    libraries={
        "i18n": "django.templatetags.i18n",
        "portal": "catalogue.templatetags.portal",
    }
)
# templates/catalogue/price.html and item_card.html as they were, the price included.
PRICE = (
    "{% load i18n portal %}{% if item.price_once or item.price_monthly %}{% if item.price_once %}"
    "{% blocktranslate with price=item.price_once|money %}{{ price }} once{% endblocktranslate %}"
    "{% endif %}{% if item.price_once and item.price_monthly %}, {% endif %}"
    "{% if item.price_monthly %}{% blocktranslate with price=item.price_monthly|money %}"
    "{{ price }} per month{% endblocktranslate %}{% endif %}{% else %}"
    '{% translate "free of charge" %}{% endif %}\n'
)
CARD = (
    '{% load i18n %}<li class="card">\n'
    '  <{{ card_heading|default:"h3" }} class="card-title">'
    "<a href=\"{% url 'catalogue:item' item.slug %}\">"
    '{{ item.name }}</a></{{ card_heading|default:"h3" }}>\n'
    "  {% if item.summary %}<p>{{ item.summary }}</p>{% endif %}\n"
    '  <p class="price">' + PRICE + "</p>\n</li>\n"
)

ITEMS = [
    CatalogueItem(name="Laptop", slug="laptop", summary="", price_once=Decimal("1149.00")),
    CatalogueItem(
        name='Quote " <b>tag</b> & more',
        slug="with_underscore-1",
        summary="Summary <script>alert(1)</script> & 'x'",
        price_once=Decimal("10.50"),
        price_monthly=Decimal("2.5"),
    ),
    CatalogueItem(name="Free", slug="free", summary="s", price_once=None, price_monthly=None),
    CatalogueItem(name="Zero", slug="zero", price_once=Decimal("0"), price_monthly=Decimal("3")),
]


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("heading", [None, "h2"])
def test_cards_equal_the_template(language, heading):
    card = ENGINE.from_string(CARD)
    with translation.override(language):
        expected = "".join(
            card.render(Context({"item": item, "card_heading": heading})) for item in ITEMS
        )
        got = item_cards(ITEMS, heading or "h3")
    assert got == expected


@pytest.mark.parametrize("language", ["de", "en"])
def test_price_equals_the_template(language):
    price = ENGINE.from_string(PRICE)
    with translation.override(language):
        for item in ITEMS:
            assert price.render(Context({"item": item})) == f"{item_price(item)}\n"


# templates/catalogue/index.html's categories as they were, before they were kept.
SECTIONS = (
    "{% load i18n portal %}{% for category in categories %}\n"
    '<section class="category" aria-labelledby="cat-{{ category.slug }}">\n'
    '  <h2 id="cat-{{ category.slug }}"><a href="{% url \'catalogue:category\' category.slug %}">'
    "{{ category.name }}</a></h2>\n"
    "  {% if category.description %}<p>{{ category.description }}</p>{% endif %}\n"
    '  <ul class="cards">\n'
    "    {% item_cards category.visible_items %}\n"
    "  </ul>\n"
    "</section>\n"
    "{% empty %}\n"
    '<p>{% translate "No services are available to you." %}</p>\n'
    "{% endfor %}"
)


@pytest.mark.parametrize("language", ["de", "en"])
def test_kept_sections_equal_the_template(language):
    """The catalogue's categories rendered from plain values and kept (catalogue_sections)
    are the markup the page's loop over categories and items made; kept per language."""
    from types import SimpleNamespace

    from catalogue.selectors import Card, Section
    from catalogue.templatetags.portal import catalogue_sections

    cards = tuple(
        Card(item.slug, item.name, item.summary, item.price_once, item.price_monthly)
        for item in ITEMS
    )
    cases = [
        (Section("a", "A & <b>", "Text <i>", cards[:2]), Section("b", "B", "", cards[2:])),
        (),
    ]
    for sections in cases:
        categories = [
            SimpleNamespace(
                slug=s.slug, name=s.name, description=s.description, visible_items=s.cards
            )
            for s in sections
        ]
        with translation.override(language):
            expected = ENGINE.from_string(SECTIONS).render(Context({"categories": categories}))
            for _ in range(2):  # made, then kept
                assert catalogue_sections(Context(), sections) == expected
