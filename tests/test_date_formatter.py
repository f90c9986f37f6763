"""DateFormatter (itportal.formatting) writes what Django's ``date_format`` writes: every
format of both languages, dates and date-times across a year and the DST changes,
escaped letters, specifiers it leaves to Django, and Django's refusal of a time
specifier for a date."""

import datetime

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
