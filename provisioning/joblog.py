"""Lines of a provisioning job's log: in the portal's language and in local time.

A log is written once and read later by anyone, so it is written in the portal's language
(``LANGUAGE_CODE``), not in the language of whoever happened to trigger the line, and
stamped in the portal's time zone, as every other time the portal shows.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.utils import formats, timezone, translation


@contextlib.contextmanager
def in_log_language():
    with translation.override(settings.LANGUAGE_CODE):
        yield


def log_line(text: str) -> str:
    """``text`` stamped with the local date and time, e.g. "04.12.2026 20:54:07 …\\n"."""
    now = timezone.localtime()
    with in_log_language():
        day = formats.date_format(now, "SHORT_DATE_FORMAT")
    return f"{day} {now:%H:%M:%S} {text}\n"
