"""The apply step of a provisioning job: read the directory, write the difference.

Runs outside any database transaction (``services.job_run`` owns the job's state).
Before each write the intended change is committed to the job log, so a run whose
database commit failed after the directory write leaves a trace; the retry that then
finds the change in place says so instead of "was not a member". A revoke leaves a
membership (or an enabled account) alone while another entitlement still holds it.
"""

from __future__ import annotations

from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from provisioning.backends import get_backend
from provisioning.backends.errors import PermanentDirectoryError
from provisioning.choices import ActionKind, Direction
from provisioning.holders import other_holders, serialised
from provisioning.joblog import in_log_language, log_line
from provisioning.models import ProvisioningJob

# What each kind does, for the intent line and the notes: (intent, done, already so).
WORDS = {
    ActionKind.ADD_TO_GROUP: (
        gettext_lazy("add to group"),
        gettext_lazy("added to group"),
        gettext_lazy("already a member"),
    ),
    ActionKind.REMOVE_FROM_GROUP: (
        gettext_lazy("remove from group"),
        gettext_lazy("removed from group"),
        gettext_lazy("was not a member"),
    ),
    ActionKind.CREATE_ACCOUNT: (
        gettext_lazy("create account"),
        gettext_lazy("account created"),
        gettext_lazy("account already present"),
    ),
    ActionKind.SET_ATTRIBUTES: (
        gettext_lazy("set attributes"),
        gettext_lazy("attributes set"),
        gettext_lazy("attributes already set"),
    ),
    ActionKind.ENABLE_ACCOUNT: (
        gettext_lazy("enable account"),
        gettext_lazy("account state changed"),
        gettext_lazy("account state already right"),
    ),
    ActionKind.DISABLE_ACCOUNT: (
        gettext_lazy("disable account"),
        gettext_lazy("account state changed"),
        gettext_lazy("account state already right"),
    ),
}


def _append_log(job: ProvisioningJob, text: str) -> None:
    """Commit one log line now (autocommit in the worker), not with the job's next state."""
    line = log_line(text)
    job.log = f"{job.log}{line}"
    ProvisioningJob.objects.filter(pk=job.pk).update(
        log=Concat(F("log"), Value(line)), updated_at=timezone.now()
    )


def execute(job: ProvisioningJob) -> str:
    """Apply the job to the directory; returns what it did, for the job log."""
    if job.kind not in WORDS:
        raise PermanentDirectoryError(f"unknown action {job.kind}")
    with serialised(job), in_log_language():
        return _apply(job)


def _apply(job: ProvisioningJob) -> str:
    backend = get_backend()
    kind = job.kind
    intent, done, already = WORDS[kind]
    intent_line = _("intended: %(action)s %(target)s (account %(uid)s)") % {
        "action": intent,
        "target": job.target_dn,
        "uid": job.user_uid,
    }
    earlier = intent_line in job.log  # an earlier attempt got as far as writing
    written = []

    def before_write():
        _append_log(job, intent_line)
        written.append(True)

    if kind == ActionKind.CREATE_ACCOUNT:
        changed = backend.create_user(
            job.user_uid, dict(job.attributes), None, before_write=before_write
        )
        return _note(changed, written, earlier, intent, done, already)
    user = backend.require_user(job.user_uid)
    if job.direction == Direction.REVOKE:
        holders = other_holders(job, member_dn=user.dn)
        if holders:
            return held_note(job, holders)
    if kind == ActionKind.ADD_TO_GROUP:
        changed = backend.add_member(job.target_dn, user.dn, before_write=before_write)
    elif kind == ActionKind.REMOVE_FROM_GROUP:
        changed = backend.remove_member(job.target_dn, user.dn, before_write=before_write)
    elif kind == ActionKind.SET_ATTRIBUTES:
        changed = backend.set_attributes(user.dn, job.attributes, before_write=before_write)
    else:
        changed = backend.set_enabled(
            user.dn, kind == ActionKind.ENABLE_ACCOUNT, before_write=before_write
        )
    return _note(changed, written, earlier, intent, done, already)


def held_note(job: ProvisioningJob, holders) -> str:
    """A revoke left undone: the membership (or account state) is held through others."""
    reasons = "; ".join(holder.describe() for holder in holders)
    return _("left as it is (%(action)s not needed): still held through %(reasons)s") % {
        "action": WORDS[job.kind][0],
        "reasons": reasons,
    }


def _note(changed, written, earlier, intent, done, already) -> str:
    if changed:
        return str(done)
    if written:
        # The write was sent and the directory answered "already so" (confirmed by a read).
        return _("already applied, e.g. by an earlier attempt or by a concurrent job (%s)") % (
            intent
        )
    if earlier:
        return _("already applied, e.g. by an earlier attempt (%s)") % intent
    return str(already)
