"""Amounts and durations as people read them: the active language's separators, grouped
thousands; "3 days, 4 hours"."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timesince
from django.utils.formats import number_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _


def format_amount(value, places: int = 2) -> str:
    """``1149`` → "1.149,00" (German) or "1,149.00" (English); rounded half-even."""
    if value in (None, ""):
        return ""
    amount = round(Decimal(str(value)), places)
    return number_format(amount, decimal_pos=places, use_l10n=True, force_grouping=True)


def format_money(value) -> str:
    """An amount in euros: "1.149,00 €" (German), "€1,149.00" (English)."""
    if value in (None, ""):
        return ""
    # Translators: where the euro sign goes; German: "%(amount)s €".
    return _("€%(amount)s") % {"amount": format_amount(value)}


class _CountedText:
    """One of ``timesince``'s texts ("%(num)d days", an ``ngettext_lazy``) whose translation
    of each number is looked up once per language and process: the lazy text searched the
    plural form through every translation catalogue on each use, for every row of a list.
    Numbers stay small (minutes below 60, hours below 24 … and the years of a date)."""

    def __init__(self, text):
        self.text = text
        self.done = {}

    def __mod__(self, params):
        key = (get_language(), params["num"])
        text = self.done.get(key)
        if text is None:
            text = self.done[key] = self.text % params
        return text


# ``timesince(value, time_strings=TIME_STRINGS)``: Django's texts, translated as they are.
TIME_STRINGS = {name: _CountedText(text) for name, text in timesince.TIME_STRINGS.items()}
