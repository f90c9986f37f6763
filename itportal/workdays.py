"""Working days: Monday to Friday, without the public holidays of the configured Land;
working time: the business hours of those days (local time)."""

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone


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


# --- working time: business hours on working days ---------------------------------------


@lru_cache(maxsize=8)
def _hours(start: str, end: str) -> tuple[time, time]:
    opens, closes = time.fromisoformat(start), time.fromisoformat(end)
    if closes <= opens:
        raise ImproperlyConfigured("PORTAL_BUSINESS_HOURS_END must be after the start.")
    return opens, closes


def business_hours() -> tuple[time, time]:
    return _hours(settings.PORTAL_BUSINESS_HOURS_START, settings.PORTAL_BUSINESS_HOURS_END)


def _window(day: date) -> tuple[datetime, datetime]:
    tz = timezone.get_default_timezone()
    opens, closes = business_hours()
    return (
        timezone.make_aware(datetime.combine(day, opens), tz),
        timezone.make_aware(datetime.combine(day, closes), tz),
    )


def close_of_business(day: date) -> datetime:
    """The end of the business hours of ``day`` (a due day's last moment)."""
    return _window(day)[1]


def working_seconds_between(start: datetime, end: datetime, subdivision: str | None = None) -> int:
    """Seconds of business hours on working days between two instants."""
    if end <= start:
        return 0
    tz = timezone.get_default_timezone()
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    total = 0.0
    day = first
    while day <= last:
        if is_working_day(day, subdivision):
            opens, closes = _window(day)
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return int(total)


def add_working_seconds(start: datetime, seconds: int, subdivision: str | None = None) -> datetime:
    """The instant ``seconds`` of business hours on working days after ``start`` (``start``
    itself for 0). Lands on a closing time rather than the next opening when it fits."""
    if seconds <= 0:
        return start
    tz = timezone.get_default_timezone()
    day = start.astimezone(tz).date()
    while True:
        if is_working_day(day, subdivision):
            opens, closes = _window(day)
            lo = max(opens, start)
            if lo < closes:
                available = (closes - lo).total_seconds()
                if seconds <= available:
                    return lo + timedelta(seconds=seconds)
                seconds -= available
        day += timedelta(days=1)
