"""The city's look on top of KERN: its colour and logo, set in the environment (README,
"Look and feel").

KERN (npm ``@kern-ux/native``) brings the components and design tokens; a city changes only
the action colour (links, buttons, the navigation bar) and the text colour on it. Both are
checked when the settings load: a colour that does not reach WCAG AA contrast (4.5:1) against
white and against its text colour stops the portal from starting, instead of leaving pages
that fail the accessibility tests in production. The colours reach the pages as a small
stylesheet served by the portal itself (``/branding.css``), as the Content-Security-Policy
allows no inline styles.
"""

import hashlib
import re

from django.core.exceptions import ImproperlyConfigured

HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
WHITE = "#ffffff"
AA_CONTRAST = 4.5


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance of a #rrggbb colour (WCAG 2.1)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def brand_colours(colour: str, on_colour: str) -> tuple[str, str]:
    """The city's action colour and its text colour, validated; ("", "") keeps KERN's own.

    The action colour is link text on white pages and the background of buttons and the
    navigation bar, so it needs AA contrast against white and against ``on_colour``.
    """
    if not colour:
        return "", ""
    for name, value in (("PORTAL_BRAND_COLOUR", colour), ("PORTAL_BRAND_ON_COLOUR", on_colour)):
        if not HEX_COLOUR.fullmatch(value):
            raise ImproperlyConfigured(f"{name} must be a colour like #2044aa, not {value!r}")
    colour, on_colour = colour.lower(), on_colour.lower()
    for against, what in ((WHITE, "white pages"), (on_colour, "PORTAL_BRAND_ON_COLOUR")):
        ratio = contrast(colour, against)
        if ratio < AA_CONTRAST:
            raise ImproperlyConfigured(
                f"PORTAL_BRAND_COLOUR {colour} has a contrast of {ratio:.2f}:1 against {what}; "
                f"WCAG AA needs {AA_CONTRAST}:1 (choose a darker colour)"
            )
    return colour, on_colour


def stylesheet(colour: str, on_colour: str) -> str:
    """CSS that gives KERN's action tokens the city's colours (empty: KERN's own)."""
    if not colour:
        return "/* KERN's own colours (PORTAL_BRAND_COLOUR not set) */\n"
    # [data-kern-theme=light] sets KERN's defaults on <html> too: name it so this rule wins.
    return (
        ":root, :root[data-kern-theme=light] {\n"
        f"  --kern-color-action-default: {colour};\n"
        f"  --kern-color-action-on-default: {on_colour};\n"
        "}\n"
    )


def stylesheet_version(colour: str, on_colour: str) -> str:
    """Part of the stylesheet's URL, so a new colour is fetched at once despite caching."""
    return hashlib.sha256(stylesheet(colour, on_colour).encode()).hexdigest()[:12]
