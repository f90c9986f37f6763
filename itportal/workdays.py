"""Working days: Monday to Friday, without the public holidays of the configured Land."""

from datetime import date, timedelta
from functools import lru_cache

import holidays
from django.conf import settings


@lru_cache(maxsize=32)
def _holidays(subdivision: str, year: int) -> holidays.HolidayBase:
    return holidays.Germany(subdiv=subdivision or None, years=year)


def is_working_day(day: date, subdivision: str | None = None) -> bool:
    subdivision = subdivision if subdivision is not None else settings.PORTAL_HOLIDAY_SUBDIVISION
    return day.weekday() < 5 and day not in _holidays(subdivision, day.year)


def add_working_days(start: date, days: int, subdivision: str | None = None) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself when days is 0)."""
    day = start
    while days > 0:
        day += timedelta(days=1)
        if is_working_day(day, subdivision):
            days -= 1
    return day


def working_days_between(start: date, end: date, subdivision: str | None = None) -> int:
    """Working days after ``start`` up to and including ``end`` (0 if end <= start)."""
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        if is_working_day(day, subdivision):
            count += 1
        day += timedelta(days=1)
    return count
