"""Who holds a directory membership (or an account's enabled state), and through what.

One membership can be held several times at once: the same item ordered twice, two
items granting the same group, a group also given by hand in the directory (known
from reconciliation). Revoking one of them must leave the membership while another
still needs it. Jobs on the same (group, member) run one at a time (``serialised``),
so the holder check and the write it leads to cannot interleave with another job's.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q, Subquery
from django.utils.translation import gettext as _

from itportal.locks import lock_key
from provisioning.backends.errors import TransientDirectoryError
from provisioning.choices import REVERSE, ActionKind, Direction, EntitlementState, JobState
from provisioning.models import ManualMembership, ProvisioningJob
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest

GROUP_KINDS = (ActionKind.ADD_TO_GROUP, ActionKind.REMOVE_FROM_GROUP)
IN_PROGRESS = (RequestState.APPROVED, RequestState.IN_FULFILMENT)
LOCK_WAIT_SECONDS = 20  # well inside the task's 60 s soft limit


def dn_key(dn: str) -> str:
    """A DN in one spelling: case and spaces around separators do not matter in LDAP.
    Escapes stay as they are (``\\,`` is part of a value, not a separator)."""
    rdns, current, escaped = [], [], False
    for char in dn.strip():
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char in ",;":
            rdns.append("".join(current))
            current = []
        else:
            current.append(char)
    rdns.append("".join(current))
    parts = []
    for rdn in rdns:
        name, _sep, value = rdn.partition("=")
        parts.append(f"{name.strip()}={value.strip()}".lower())
    return ",".join(parts)


def membership_key(job: ProvisioningJob) -> tuple[str, ...]:
    """What a job changes: one member of one group, or one account's state."""
    uid = job.user_uid.strip().lower()
    if job.kind in GROUP_KINDS:
        return ("member", dn_key(job.target_dn), uid)
    return ("account", uid)


@contextlib.contextmanager
def serialised(job: ProvisioningJob):
    """Hold a PostgreSQL advisory lock on what the job changes while it reads and writes.

    As in ``itportal.locks``: a transaction lock, held by a transaction on a connection of
    its own for as long as the job's directory work lasts (the work itself runs outside
    any transaction of the default connection, whose job log is committed before the
    write). A job that waits too long gets a transient error and retries with backoff.
    """
    key = lock_key("\x1f".join(membership_key(job)))
    holder = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        holder.ensure_connection()
        raw = holder.connection
        with raw.transaction(), raw.cursor() as cursor:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    raise TransientDirectoryError("Another job is changing the same membership.")
                time.sleep(0.05)
            yield
    finally:
        holder.close()


@dataclass(frozen=True)
class Holder:
    """One reason a membership should exist."""

    entitlement_id: int | None
    request_id: int | None
    item: str
    holder: str
    by_hand: bool = False

    def describe(self) -> str:
        if self.by_hand:
            return _("given by hand in the directory (found by reconciliation)")
        if self.entitlement_id is not None:
            return _("entitlement #%(entitlement)s (%(item)s, request #%(request)s)") % {
                "entitlement": self.entitlement_id,
                "item": self.item,
                "request": self.request_id,
            }
        return _("request #%(request)s being fulfilled (%(item)s)") % {
            "request": self.request_id,
            "item": self.item,
        }


def other_holders(job: ProvisioningJob, *, member_dn: str | None = None) -> list[Holder]:
    """Who else needs what the revoke ``job`` would undo, besides its own entitlement.

    Active entitlements whose grant did the same thing, requests whose grant is on its
    way (approved, being fulfilled; not failed), and, for a group, a membership known
    to be given by hand.
    """
    grant_kinds = [grant for grant, reverse in REVERSE.items() if reverse == job.kind]
    # The beneficiary's requests (an indexed key) rather than a scan for the uid.
    beneficiary = ServiceRequest.objects.filter(pk=job.request_id).values("beneficiary_id")
    candidates = (
        ProvisioningJob.objects.filter(
            direction=Direction.GRANT,
            kind__in=grant_kinds,
            request__beneficiary_id=Subquery(beneficiary),
        )
        .exclude(request_id=job.request_id)
        .filter(
            Q(request__entitlement__state=EntitlementState.ACTIVE)
            | (Q(request__state__in=IN_PROGRESS) & ~Q(state=JobState.FAILED))
        )
        .select_related("request__entitlement", "request__beneficiary__user")
        .order_by("request_id")
    )
    target = dn_key(job.target_dn) if job.target_dn else ""
    holders: dict[int, Holder] = {}
    for grant in candidates:
        same_account = grant.user_uid.lower() == job.user_uid.lower()
        if not same_account or (dn_key(grant.target_dn) if grant.target_dn else "") != target:
            continue
        entitlement = getattr(grant.request, "entitlement", None)
        active = entitlement is not None and entitlement.state == EntitlementState.ACTIVE
        holders[grant.request_id] = Holder(
            entitlement_id=entitlement.pk if active else None,
            request_id=grant.request_id,
            item=grant.request.item_name,
            holder=str(grant.request.beneficiary),
        )
    found = list(holders.values())
    by_hand = ManualMembership.objects.filter(group_dn=target, member_dn=dn_key(member_dn or ""))
    if job.kind == ActionKind.REMOVE_FROM_GROUP and member_dn and by_hand.exists():
        found.append(Holder(None, None, "", job.user_uid, by_hand=True))
    return found
