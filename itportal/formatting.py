"""Amounts, durations and dates as people read them: the active language's separators,
grouped thousands; "3 days, 4 hours"; "7. Dezember 2026 20:54"."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.utils import dateformat, dates, timesince
from django.utils.formats import get_format, number_format
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


_UTC = datetime.UTC
_MINUTE = datetime.timedelta(minutes=1)
_DAY = datetime.timedelta(days=1)
_MIDNIGHT = datetime.time()
# ``age`` texts by language and moment: (text, from, until), the span of "now" it holds for.
_AGES: dict[tuple, tuple[str, datetime.datetime, datetime.datetime]] = {}
_AGES_MAX = 8192


def age(moment: datetime.datetime, now: datetime.datetime) -> str:
    """``timesince(moment, now, time_strings=TIME_STRINGS)`` ("3 hours, 4 minutes"), kept
    per language and moment for as long as ``now`` gives the same text: a list of waiting
    times worked them out on every view, 14 µs each (a third of the fulfilment queue's
    rows). tests/test_date_formatter.py compares the texts with Django's."""
    if moment.tzinfo is not _UTC or now.tzinfo is not _UTC or now - moment < _MINUTE:
        return timesince.timesince(moment, now, time_strings=TIME_STRINGS)
    key = (get_language(), moment)
    kept = _AGES.get(key)
    if kept is not None and kept[1] <= now < kept[2]:
        return kept[0]
    text = timesince.timesince(moment, now, time_strings=TIME_STRINGS)
    if len(_AGES) >= _AGES_MAX:
        _AGES.clear()
    _AGES[key] = (text, now, _same_age_until(moment, now))
    return text


def _same_age_until(moment: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
    """The first instant after ``now`` at which timesince() may count differently (both in
    UTC: no daylight saving time). It counts whole calendar months, which change only where
    the day changes or at ``moment``'s time of day, then whole minutes from ``moment``
    moved by those months (to its second; to its microsecond while no month has passed),
    which change at the turn of such a minute: at ``moment``'s second and microsecond or at
    its second."""
    position = now.second * 1_000_000 + now.microsecond
    turns = (moment.second * 1_000_000 + moment.microsecond, moment.second * 1_000_000)
    wait = min((turn - position) % 60_000_000 or 60_000_000 for turn in turns)
    return min(
        now + datetime.timedelta(microseconds=wait),
        datetime.datetime.combine(now.date() + _DAY, _MIDNIGHT, _UTC),
    )


class DateFormatter:
    """``date_format(value, format_name)`` for the many dates of one page, in the language
    active when it is made: the format looked up, split and its month and day names
    translated once, not for each value. Django's ``dateformat`` splits the format with a
    regular expression, builds a formatter that works out the time zone's DST and
    translates the month's name through the catalogues for every date, 30 µs a cell of
    an admin changelist. Specifiers other than the day, month, year, hour, minute and
    second ones (time zone, am/pm, ordinals …) are Django's own, value by value.
    tests/test_formatting.py compares the output with Django's."""

    def __init__(self, format_name: str):
        self.format_string = str(get_format(format_name))
        pieces = dateformat.re_formatchars.split(self.format_string)
        self._parts = None
        parts = []
        for index, piece in enumerate(pieces):
            if index % 2:
                part = _SPECIFIERS.get(piece)
                if part is None:
                    return  # Django's formatting for every value
                parts.append(part(self))
            elif piece:
                parts.append(dateformat.re_escaped.sub(r"\1", piece))
        self._parts = parts
        self._time = any(piece in _TIME_SPECIFIERS for piece in pieces[1::2])

    @classmethod
    def of(cls, format_name: str) -> DateFormatter:
        """The formatter of ``format_name`` in the active language, made once per process
        for each language and format (they change only with the code)."""
        key = (get_language(), format_name, get_format(format_name))
        formatter = _FORMATTERS.get(key)
        if formatter is None:
            if len(_FORMATTERS) >= 64:
                _FORMATTERS.clear()
            formatter = _FORMATTERS[key] = cls(format_name)
        return formatter

    def __call__(self, value) -> str:
        parts = self._parts
        # A date (not a date-time) with a time specifier: Django's TypeError.
        if parts is None or (self._time and type(value) is datetime.date):
            return dateformat.format(value, self.format_string)
        return "".join([part if type(part) is str else part(value) for part in parts])

    def names(self, table) -> dict:
        """``table`` (dates.MONTHS, …: lazy texts) in the active language."""
        return {key: str(name) for key, name in table.items()}


_FORMATTERS: dict[tuple, DateFormatter] = {}


def _named(table, title=False):
    def made(formatter):
        names = formatter.names(table)
        if title:
            names = {key: name.title() for key, name in names.items()}
        return lambda value: names[value.month]

    return made


def _weekday(table):
    def made(formatter):
        names = formatter.names(table)
        return lambda value: names[value.weekday()]

    return made


# Specifier -> (formatter -> (value -> text)), as django.utils.dateformat.DateFormat's
# methods of the same names compute them.
_SPECIFIERS = {
    "d": lambda f: lambda value: f"{value.day:02d}",
    "j": lambda f: lambda value: str(value.day),
    "m": lambda f: lambda value: f"{value.month:02d}",
    "n": lambda f: lambda value: str(value.month),
    "y": lambda f: lambda value: f"{value.year % 100:02d}",
    "Y": lambda f: lambda value: f"{value.year:04d}",
    "F": _named(dates.MONTHS),
    "b": _named(dates.MONTHS_3),
    "M": _named(dates.MONTHS_3, title=True),
    "N": _named(dates.MONTHS_AP),
    "E": _named(dates.MONTHS_ALT),
    "D": _weekday(dates.WEEKDAYS_ABBR),
    "l": _weekday(dates.WEEKDAYS),
    "G": lambda f: lambda value: str(value.hour),
    "H": lambda f: lambda value: f"{value.hour:02d}",
    "i": lambda f: lambda value: f"{value.minute:02d}",
    "s": lambda f: lambda value: f"{value.second:02d}",
}
_TIME_SPECIFIERS = {name for name in _SPECIFIERS if hasattr(dateformat.TimeFormat, name)}
