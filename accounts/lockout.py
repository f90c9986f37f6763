"""Lock-outs after repeated failed logins (django-axes): the name they count under, who is
locked, and lifting a lock.

django-axes counts failures per account and per address (``AXES_LOCKOUT_PARAMETERS``);
an account is locked when its failures within the cool-off period reach the limit, from
any address, and so is an address, for any account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.db.models import Count, Max, Sum
from django.shortcuts import render
from django.utils import timezone

from catalogue.models import Employee

logger = logging.getLogger("accounts.login")


def login_name(request, credentials: dict | None) -> str | None:
    """The name failures count under: the one account's user name, in lower case.

    ``MITARBEITERIN``, ``Mitarbeiterin`` and the personnel number ``m10042`` are the same
    person, so five failures spread over spellings lock the one account.
    """
    typed = (credentials or {}).get("username")
    if typed is None and request is not None and request.method == "POST":
        typed = request.POST.get("username")
    if not typed:
        return None
    name = str(typed).replace("\x00", "").strip()[:150]
    owner = (
        Employee.objects.filter(personnel_number__iexact=name)
        .values_list("user__username", flat=True)
        .first()
    )
    return (owner or name).casefold()


def cool_off_minutes() -> int:
    """Minutes a lock lasts by itself; 0 means until an IT admin lifts it."""
    cool_off = settings.AXES_COOLOFF_TIME
    return int(cool_off.total_seconds() // 60) if cool_off else 0


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out login gets (HTTP 429), in the portal's layout and language."""
    return render(
        request,
        "registration/locked_out.html",
        {"cool_off": cool_off_minutes()},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


def cool_off_start() -> datetime | None:
    cool_off = settings.AXES_COOLOFF_TIME
    return timezone.now() - cool_off if cool_off else None


@dataclass(frozen=True)
class Lock:
    key: str  # the account name or the address
    failures: int
    last_attempt: datetime
    sources: int  # addresses tried for an account, accounts tried from an address


def _locks(field: str, other: str) -> list[Lock]:
    attempts = AccessAttempt.objects.filter(**{f"{field}__isnull": False})
    if field == "username":
        attempts = attempts.exclude(username="")
    since = cool_off_start()
    if since is not None:
        attempts = attempts.filter(attempt_time__gte=since)
    rows = (
        attempts.values(field)
        .annotate(
            failures=Sum("failures_since_start"),
            last_attempt=Max("attempt_time"),
            sources=Count(other, distinct=True),
        )
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .order_by("-last_attempt")
    )
    return [Lock(row[field], row["failures"], row["last_attempt"], row["sources"]) for row in rows]


def locked_accounts() -> list[Lock]:
    return _locks("username", "ip_address")


def locked_addresses() -> list[Lock]:
    return _locks("ip_address", "username")


def lockout_lift(*, account: str = "", address: str = "", user) -> int:
    """Forget the failures of one account or one address; returns the records removed."""
    if bool(account) == bool(address):
        raise ValueError("lift either an account or an address")
    removed = reset(username=account) if account else reset(ip=address)
    logger.warning(
        "lock-out lifted by %s: %s %s (%d records)",
        user.get_username(),
        "account" if account else "address",
        account or address,
        removed,
    )
    return removed
