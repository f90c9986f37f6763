"""``reverse()`` for the many links of a list page that differ only in a number.

Django's ``reverse()`` walks the resolver's candidates and quotes the result for every
call; a 25-row list links each row's number (``get_absolute_url``), and that was the
largest single part of a row's cells. The URL of a view with one integer argument is the
same string around the number, so it is reversed once per view, script prefix and URLconf
(with a placeholder number) and the number put in its place afterwards.
"""

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

_PLACEHOLDER = "7350918264"
_kept: dict[tuple, tuple[str, str] | None] = {}


def reverse_number(viewname: str, name: str, number: int) -> str:
    """``reverse(viewname, kwargs={name: number})`` for an ``<int:…>`` argument."""
    key = (viewname, name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    parts = _kept.get(key, False)
    if parts is False:
        url = reverse(viewname, kwargs={name: int(_PLACEHOLDER)})
        before, found, after = url.partition(_PLACEHOLDER)
        # Anything unusual (the placeholder twice, not at all): reverse() every time.
        parts = (before, after) if found and _PLACEHOLDER not in after else None
        if len(_kept) < 1000:
            _kept[key] = parts
    if parts is None or isinstance(number, bool) or not isinstance(number, int) or number < 0:
        return reverse(viewname, kwargs={name: number})
    return f"{parts[0]}{number}{parts[1]}"


def number_reverser(viewname: str, name: str):
    """``reverse_number`` with ``viewname`` and ``name`` fixed, the URL's parts looked up
    once: for a loop that links many rows to the same view."""
    key = (viewname, name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    if key not in _kept:
        reverse_number(viewname, name, 0)
    parts = _kept.get(key)
    if parts is None:
        return lambda number: reverse_number(viewname, name, number)
    before, after = parts

    def url(number: int) -> str:
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            return reverse(viewname, kwargs={name: number})
        return f"{before}{number}{after}"

    return url
