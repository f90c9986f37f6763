"""KERN served by the portal itself, and the city's colours: checked for contrast at start-up,
delivered as a stylesheet under the strict Content-Security-Policy."""

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured

from itportal import branding

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "kern/kern.min.css",
        "kern/fonts/fira-sans.css",
        "kern/fonts/fira-sans/FiraSans-Regular.woff2",
    ],
)
def test_kern_is_installed_and_found_as_a_static_file(path):
    # scripts/bootstrap.sh installs it from frontend/package-lock.json (npm ci).
    assert finders.find(path), f"{path} missing: run `make install` (npm ci in frontend/)"


def test_pages_load_kern_and_the_city_colours_from_the_portal(client):
    response = client.get("/accounts/login/")
    html = response.content.decode()
    assert '/static/kern/kern.min.css"' in html
    assert '/static/kern/fonts/fira-sans.css"' in html
    assert 'href="/branding.css?v=' in html
    assert 'data-kern-theme="light"' in html
    # No CDN, nothing inline: the policy stays 'self' only.
    policy = response["Content-Security-Policy"]
    assert "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "https://" not in html.split("<body>")[0]


def test_branding_stylesheet_sets_kerns_action_colour(client, settings):
    settings.PORTAL_BRAND_COLOUR, settings.PORTAL_BRAND_ON_COLOUR = "#005a3c", "#ffffff"
    response = client.get("/branding.css?v=1")  # anonymous: the login page needs it too
    assert response.status_code == 200
    assert response["Content-Type"] == "text/css; charset=utf-8"
    css = response.content.decode()
    assert "--kern-color-action-default: #005a3c;" in css
    assert "--kern-color-action-on-default: #ffffff;" in css


def test_without_a_city_colour_kern_keeps_its_own(client, settings):
    settings.PORTAL_BRAND_COLOUR, settings.PORTAL_BRAND_ON_COLOUR = "", ""
    assert "--kern-color" not in client.get("/branding.css").content.decode()


def test_a_new_colour_gets_a_new_stylesheet_url():
    first = branding.stylesheet_version("#005a3c", "#ffffff")
    assert first != branding.stylesheet_version("#00457d", "#ffffff")
    assert first == branding.stylesheet_version("#005a3c", "#ffffff")


@pytest.mark.parametrize(
    ("colour", "on_colour"),
    [("#00457d", "#ffffff"), ("#A4000F", "#FFFFFF"), ("#1b2a4a", "#ffcc00")],
)
def test_colours_with_aa_contrast_are_accepted(colour, on_colour):
    assert branding.brand_colours(colour, on_colour) == (colour.lower(), on_colour.lower())


@pytest.mark.parametrize(
    ("colour", "on_colour", "says"),
    [
        ("#ffcc00", "#000000", "against white pages"),  # yellow links on white
        ("#0080c0", "#ffffff", "against white pages"),  # 4.2:1, just short
        ("#00457d", "#1b2a4a", "PORTAL_BRAND_ON_COLOUR"),  # dark on dark
        ("red", "#ffffff", "must be a colour"),
        ("#fff", "#000000", "must be a colour"),
        ("#00457d;}body{x", "#ffffff", "must be a colour"),  # no CSS smuggled in
        ("#00457d", "white", "must be a colour"),
    ],
)
def test_colours_without_aa_contrast_stop_the_start(colour, on_colour, says):
    with pytest.raises(ImproperlyConfigured, match=says):
        branding.brand_colours(colour, on_colour)


def test_contrast_matches_wcag_reference_values():
    assert branding.contrast("#000000", "#ffffff") == pytest.approx(21)
    assert branding.contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
