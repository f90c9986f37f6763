"""DateFormatter (itportal.formatting) writes what Django's ``date_format`` writes: every
format of both languages, dates and date-times across a year and the DST changes,
escaped letters, specifiers it leaves to Django, and Django's refusal of a time
specifier for a date."""

import datetime
import random
from calendar import monthrange

import pytest
from django.utils import dateformat, timezone, translation
from django.utils.formats import date_format

from itportal import formatting
from itportal.formatting import DateFormatter

FORMATS = [
    "DATE_FORMAT",
    "DATETIME_FORMAT",
    "SHORT_DATE_FORMAT",
    "SHORT_DATETIME_FORMAT",
    "YEAR_MONTH_FORMAT",
    "MONTH_DAY_FORMAT",
]


def moments():
    start = timezone.make_aware(datetime.datetime(2026, 1, 1, 0, 7, 3))
    # Every 37 hours for a year and a half: each month, weekday, hour; both DST changes.
    local = [timezone.localtime(start + datetime.timedelta(hours=37 * n)) for n in range(360)]
    early = datetime.datetime(987, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)  # years below 1000
    return [*local, early, early.date(), *(moment.date() for moment in local[::7])]


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("name", FORMATS)
def test_the_formats_of_both_languages_are_djangos(language, name):
    with translation.override(language):
        formatter = DateFormatter(name)
        for value in moments():
            try:
                expected = date_format(value, name)
            except TypeError:  # a time specifier for a date
                with pytest.raises(TypeError):
                    formatter(value)
            else:
                assert formatter(value) == expected, (value, name)


@pytest.mark.parametrize(
    "format_string",
    [
        r"D, l j. F Y \u\m H:i:s",  # names of days and months; an escaped letter
        "N b M E y n m d G",
        "jS F, P",  # English ordinals and a.m./p.m.: Django's own
        "c e O T",  # time zone specifiers: Django's own
        r"\\Y Y",
    ],
)
@pytest.mark.parametrize("language", ["de", "en"])
def test_any_format_string_is_djangos(monkeypatch, language, format_string):
    monkeypatch.setattr(formatting, "get_format", lambda name: format_string)
    with translation.override(language):
        formatter = DateFormatter("DATETIME_FORMAT")
        for value in moments()[:60]:
            if isinstance(value, datetime.datetime):
                assert formatter(value) == dateformat.format(value, format_string), value


def test_the_names_are_those_of_the_language_it_was_made_in():
    value = datetime.date(2026, 3, 1)
    with translation.override("de"):
        german = DateFormatter("DATE_FORMAT")
    with translation.override("en"):
        english = DateFormatter("DATE_FORMAT")
        assert german(value) == "1. März 2026"
        assert english(value) == "1 Mar 2026"


def test_the_kept_formatters_are_per_language_and_format():
    value = datetime.date(2026, 3, 1)
    with translation.override("de"):
        german = DateFormatter.of("DATE_FORMAT")
        assert DateFormatter.of("DATE_FORMAT") is german
        assert DateFormatter.of("SHORT_DATE_FORMAT")(value) == "01.03.2026"
    with translation.override("en"):
        assert DateFormatter.of("DATE_FORMAT")(value) == "1 Mar 2026"
    assert german(value) == "1. März 2026"


def _months_later(moment, months):
    year, month = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + year, month + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


@pytest.mark.parametrize("language", ["de", "en"])
def test_kept_ages_are_djangos_timesince(language):
    """``age`` keeps a text for as long as timesince() gives it: around every instant where
    it may count differently (the turn of a minute counted from the moment or from the
    moment moved by months, a week later, midnight, the moment's time of day on its day of
    the month),
    for moments at month ends, on 29 February and at midnight, with and without
    microseconds; "now" moving on in small and large steps, and back."""
    from django.utils.timesince import timesince

    rng = random.Random(10)
    days = [datetime.date(2024, 1, 31), datetime.date(2024, 2, 29), datetime.date(2023, 12, 1)]
    times = [datetime.time(), datetime.time(23, 59, 59, 999999), datetime.time(9, 30, 15, 600000)]
    moments = [datetime.datetime.combine(d, t, datetime.UTC) for d in days for t in times]
    formatting._AGES.clear()
    with translation.override(language):
        for moment in moments:
            for months in (0, 1, 2, 13):
                later = _months_later(moment, months)
                midnight = later.replace(hour=0, minute=0, second=0, microsecond=0)
                week = later.replace(microsecond=0) + datetime.timedelta(days=7)
                for anchor in (later, midnight, midnight + datetime.timedelta(days=1), week):
                    now = max(anchor - datetime.timedelta(seconds=70), moment)
                    while now < anchor + datetime.timedelta(seconds=70):
                        now += datetime.timedelta(microseconds=rng.randrange(1, 3_000_000))
                        expected = timesince(moment, now, time_strings=formatting.TIME_STRINGS)
                        assert formatting.age(moment, now) == expected, (moment, now)
            now = moment
            for _ in range(300):  # hours to weeks on, now and then back a little
                now += datetime.timedelta(seconds=rng.randrange(-600, 9 * 86400))
                if now >= moment:
                    expected = timesince(moment, now, time_strings=formatting.TIME_STRINGS)
                    assert formatting.age(moment, now) == expected, (moment, now)
    assert formatting._AGES  # kept
    formatting._AGES.clear()
