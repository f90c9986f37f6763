"""Lines of a provisioning job's log: in the portal's language and in local time.

A log is written once and read later by anyone, so it is written in the portal's language
(``LANGUAGE_CODE``), not in the language of whoever happened to trigger the line, and
stamped in the portal's time zone, as every other time the portal shows.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import formats, timezone, translation


@contextlib.contextmanager
def in_log_language():
    with translation.override(settings.LANGUAGE_CODE):
        yield


# The stamp of the last line and what it was made for (second, time zone, language): a
# batch writes two lines per job within the same second or two, and formatting the date in
# the log language (a translation switch and a format lookup) cost more than the rest of a
# line. One entry, so nothing grows.
_last_stamp: tuple[tuple, str] = ((), "")


def log_line(text: str) -> str:
    """``text`` stamped with the local date and time, e.g. "04.12.2026 20:54:07 …\\n"."""
    global _last_stamp
    now = timezone.localtime()
    key = (now.replace(microsecond=0, tzinfo=None), now.tzinfo, settings.LANGUAGE_CODE)
    made_for, stamp = _last_stamp
    if made_for != key:
        with in_log_language():
            day = formats.date_format(now, "SHORT_DATE_FORMAT")
        stamp = f"{day} {now:%H:%M:%S}"
        _last_stamp = (key, stamp)
    return f"{stamp} {text}\n"


@receiver(setting_changed)
def _forget_stamp(**kwargs) -> None:
    """A test changed a format or the time zone: the next line formats its stamp anew."""
    global _last_stamp
    _last_stamp = ((), "")
