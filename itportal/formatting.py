"""Amounts as people read them: the active language's separators, grouped thousands."""

from __future__ import annotations

from decimal import Decimal

from django.utils.formats import number_format
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
