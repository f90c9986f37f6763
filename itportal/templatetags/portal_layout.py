"""The page's chrome (templates/base.html): its stylesheet links and its header, kept per
process.

Every HTML page renders the same header for everyone with the same language, roles and
current section: two dozen links, each resolved, translated and compared with the current
page, the language switcher's list, the static files' URLs. That was a page's largest cost
after its own work, about as much CPU as the benchmark's floor view (bench/bench_cpu.py).

``templates/portal/head.html`` and ``templates/portal/header.html`` see only the values
given to them here (a plain ``Context``: no request, no user), so they depend on nothing
else. The values that are the same for many requests are the key of the kept markup; the
ones that change with every request or person (the CSRF token, the page's path for the
language switch, the person's name, the navigation's counts) are rendered as gaps and
filled per response with what ``{{ value }}`` renders, so neither a token nor a name is
ever kept. A gap's truth is part of the key (``{% if nav.mine %}``): the markup around a
count differs between none and some. tests/test_page_chrome.py renders the partials with
the real values and compares.
"""

from __future__ import annotations

from django import template
from django.dispatch import receiver
from django.template import Context
from django.template.base import render_value_in_context
from django.template.loader import get_template
from django.urls import get_script_prefix, get_urlconf
from django.utils import translation
from django.utils.autoreload import file_changed
from django.utils.safestring import mark_safe

from itportal.memo import Memo, is_value

register = template.Library()

# One entry per template, language, roles, section and which counts are non-zero: a few
# hundred in practice, of 2 to 8 kB each; and the catalogue's categories per set of items
# open to someone (catalogue_sections), a few dozen of about 10 kB.
CHROME_MEMO = Memo(2048, 8 << 20)

# Marks a gap in kept markup: no value of a key (settings, translations, URLs) holds it,
# and escaping leaves it as it is.
GAP = "\x00"

# The header's counts (home/context_processors.py): gaps, filled per response.
NAV_COUNTS = ("mine", "approvals", "reviews", "queue", "unread")
# Which menus apply: part of the key.
NAV_FLAGS = ("approver", "fulfiller")


@register.simple_tag(takes_context=True)
def page_head(context):
    """The stylesheet and script links of ``<head>`` (templates/portal/head.html)."""
    values = {"BRANDING_CSS_VERSION": context.get("BRANDING_CSS_VERSION")}
    return render_kept(context, "portal/head.html", values, {})


@register.simple_tag(takes_context=True)
def page_header(context):
    """The page's ``<header>`` (templates/portal/header.html): brand, navigation for the
    person's roles with the current page marked, notifications, account menu, language
    switch and logout."""
    request = context.get("request")
    user = context.get("user")
    match = getattr(request, "resolver_match", None)
    authenticated = bool(user is not None and user.is_authenticated)
    values = {
        "LANGUAGE_CODE": translation.get_language(),
        "PORTAL_KOPFZEILE": context.get("PORTAL_KOPFZEILE"),
        "PORTAL_CITY_NAME": context.get("PORTAL_CITY_NAME"),
        "PORTAL_LOGO": context.get("PORTAL_LOGO"),
        "authenticated": authenticated,
        "app_name": getattr(match, "app_name", None),
        "url_name": getattr(match, "url_name", None),
        "namespace": getattr(match, "namespace", None),
    }
    csrf = context.get("csrf_token")
    gaps = {
        # {% csrf_token %} renders nothing for these.
        "csrf_token": None if csrf == "NOTPROVIDED" else csrf,
        "path": request.get_full_path() if request is not None else "",
    }
    if authenticated:
        nav = context.get("nav") or {}
        values.update(
            is_it_admin=context.get("is_it_admin"),
            is_controlling=context.get("is_controlling"),
            is_data_protection_officer=context.get("is_data_protection_officer"),
            is_staff=user.is_staff,
            cart_count=context.get("cart_count"),
            nav={name: nav.get(name) for name in NAV_FLAGS},
        )
        gaps.update({f"nav.{name}": nav.get(name) for name in NAV_COUNTS})
        gaps["who"] = user.get_full_name() or user.username
    return render_kept(context, "portal/header.html", values, gaps)


def render_kept(context, name: str, values: dict, gaps: dict) -> str:
    """Template ``name`` rendered with ``values`` and ``gaps``, its markup kept under the
    values, the gaps' truth and what else it depends on (language, script prefix, URLconf,
    escaping, localisation), the gaps filled in for this response.

    ``values`` are plain (numbers, texts, dicts of them; anything else is rendered, not
    kept). A gap's name is the variable the template reads, ``nav.mine`` for the key
    ``mine`` of the dict ``nav``; the template only prints a gap (``{{ nav.mine }}``,
    ``{% csrf_token %}``) or tests its truth. A false gap (no count, no token) is no gap:
    the template renders it, and it is part of the key as it is."""
    key = (
        name,
        translation.get_language(),
        get_script_prefix(),
        get_urlconf(),
        context.autoescape,
        context.use_l10n,
        *((item, tuple(value.items()) if type(value) is dict else value)
          for item, value in values.items()),
        *((gap, True if value else value) for gap, value in gaps.items()),
    )  # fmt: skip
    if not (is_value(values) and is_value([value for value in gaps.values() if not value])):
        return mark_safe(render_partial(name, _placed(values, gaps), context))
    parts = CHROME_MEMO.get(key)
    if parts is None:
        marked = {gap: f"{GAP}{gap}{GAP}" if value else value for gap, value in gaps.items()}
        parts = tuple(render_partial(name, _placed(values, marked), context).split(GAP))
        # Every other part must name a gap: a value holding the mark is rendered as it is.
        if not (len(parts) % 2 and all(part in gaps for part in parts[1::2])):
            return mark_safe(render_partial(name, _placed(values, gaps), context))
        CHROME_MEMO.put(key, parts)
    if len(parts) == 1:
        return mark_safe(parts[0])
    filled = list(parts)
    for index in range(1, len(filled), 2):
        filled[index] = render_value_in_context(gaps[filled[index]], context)
    return mark_safe("".join(filled))


def render_partial(name: str, values: dict, context) -> str:
    """The partial rendered with ``values`` only, escaping and localising as ``context``."""
    partial = Context(values, autoescape=context.autoescape, use_l10n=context.use_l10n)
    return get_template(name).template.render(partial)


def _placed(values: dict, gaps: dict) -> dict:
    """``values`` with the gaps' values placed where the template reads them."""
    placed = {name: dict(value) if type(value) is dict else value for name, value in values.items()}
    for gap, value in gaps.items():
        outer, _dot, inner = gap.partition(".")
        if inner:
            placed.setdefault(outer, {})[inner] = value
        else:
            placed[gap] = value
    return placed


@receiver(file_changed, dispatch_uid="portal_layout_template_changed")
def _template_changed(sender, file_path, **kwargs):
    """runserver re-reads a changed template without a restart: so does the chrome."""
    if file_path.suffix == ".html":
        CHROME_MEMO.clear()
