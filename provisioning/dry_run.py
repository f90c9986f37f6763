"""Dry run of an item's provisioning actions: what they would do in the directory for one
person and sample answers, read from the directory and never written to it.

The same rendering as a real job (``templating``), and the same reads a job makes before it
writes (membership, account present, attribute values, account state); only the write is left
out. So "würde m10042 zu cn=vpn-users,… hinzufügen" is what the job would do now.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import ldap3
from django.conf import settings
from django.utils.translation import gettext as _

from provisioning import templating
from provisioning.backends import get_backend
from provisioning.backends.errors import DirectoryError
from provisioning.choices import ActionKind

CHANGE, NO_CHANGE, PROBLEM = "change", "no_change", "problem"
NO_SUCH_OBJECT = 32  # LDAP result code


@dataclass
class DryRunLine:
    action: str  # the action's kind, readable
    text: str
    outcome: str  # CHANGE / NO_CHANGE / PROBLEM


def parse_answers(text: str) -> dict[str, str]:
    """``key = value`` lines (the dry run's sample answers); raises ValueError."""
    answers = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(_("Line %(number)s: expected “key = value”.") % {"number": number})
        answers[key.strip()] = value.strip()
    return answers


def dry_run(*, actions, beneficiary, answers: dict[str, str]) -> list[DryRunLine]:
    """One line per action, in order. Reads only; a directory error becomes a line too."""
    if not settings.DIRECTORY.get("url"):
        return [DryRunLine("", _("No directory is configured: nothing can be checked."), PROBLEM)]
    request = SimpleNamespace(beneficiary=beneficiary, answers=answers, pk=0)
    context = templating.context_for(request)
    uid = beneficiary.personnel_number
    backend = get_backend()
    lines: list[DryRunLine] = []
    try:
        user = backend.find_user(uid)
    except DirectoryError as exc:
        return [
            DryRunLine("", _("The directory cannot be read: %(error)s") % {"error": exc}, PROBLEM)
        ]
    created = False  # an earlier action of this run would create the account
    for action in actions:
        label = str(ActionKind(action.kind).label) if action.kind in ActionKind else action.kind
        try:
            target = templating.render_dn(action.target, context) if action.target.strip() else ""
            attributes = {
                name: templating.render(template, context)
                for name, template in templating.parse_attribute_lines(action.attributes).items()
            }
        except (ValueError, TypeError) as exc:
            lines.append(
                DryRunLine(label, _("Cannot be filled in: %(error)s") % {"error": exc}, PROBLEM)
            )
            continue
        try:
            text, outcome = _one(backend, action.kind, uid, user, created, target, attributes)
        except DirectoryError as exc:
            if exc.code == NO_SUCH_OBJECT and target:
                text = _("The directory has no entry %(dn)s: the job would fail.") % {"dn": target}
            else:
                text = _("The directory answered: %(error)s") % {"error": exc}
            outcome = PROBLEM
        if action.kind == ActionKind.CREATE_ACCOUNT and outcome == CHANGE:
            created = True
        lines.append(DryRunLine(label, text, outcome))
    return lines


def _one(backend, kind, uid, user, created, target, attributes) -> tuple[str, str]:
    values = {"uid": uid, "group": target}
    if kind == ActionKind.CREATE_ACCOUNT:
        if user is not None:
            return _("The account %(uid)s exists already: no change.") % values, NO_CHANGE
        shown = ", ".join(f"{k} = {v}" for k, v in attributes.items())
        values["attributes"] = shown or "–"
        return _("would create the account %(uid)s (%(attributes)s)") % values, CHANGE
    if user is None:
        if created:
            user = SimpleNamespace(
                dn=backend.user_dn_for(uid) if hasattr(backend, "user_dn_for") else ""
            )
            if kind == ActionKind.ADD_TO_GROUP:
                return _("would add %(uid)s to %(group)s") % values, CHANGE
            return _("would apply to the account %(uid)s created before") % values, CHANGE
        return (
            _("The directory has no account %(uid)s: the job would fail.") % values,
            PROBLEM,
        )
    if kind in (ActionKind.ADD_TO_GROUP, ActionKind.REMOVE_FROM_GROUP):
        member = backend.is_member(target, user.dn)
        if kind == ActionKind.ADD_TO_GROUP:
            if member:
                return _("%(uid)s is already a member of %(group)s: no change.") % values, NO_CHANGE
            return _("would add %(uid)s to %(group)s") % values, CHANGE
        if not member:
            return _("%(uid)s is not a member of %(group)s: no change.") % values, NO_CHANGE
        return _("would remove %(uid)s from %(group)s") % values, CHANGE
    if kind == ActionKind.SET_ATTRIBUTES:
        found = backend.search(
            user.dn, "(objectClass=*)", attributes=list(attributes), scope=ldap3.BASE
        )
        current = found[0][1] if found else {}
        changes = [
            f"{name} = {value or '–'}"
            for name, value in attributes.items()
            if [str(v) for v in current.get(name, [])] != ([] if not value else [str(value)])
        ]
        if not changes:
            return _("The attributes of %(uid)s are already set: no change.") % values, NO_CHANGE
        values["changes"] = ", ".join(changes)
        return _("would set for %(uid)s: %(changes)s") % values, CHANGE
    if kind in (ActionKind.ENABLE_ACCOUNT, ActionKind.DISABLE_ACCOUNT):
        enabled = backend.is_enabled(user.dn)
        if kind == ActionKind.ENABLE_ACCOUNT:
            if enabled:
                return _("The account %(uid)s is already enabled: no change.") % values, NO_CHANGE
            return _("would enable the account %(uid)s") % values, CHANGE
        if not enabled:
            return _("The account %(uid)s is already disabled: no change.") % values, NO_CHANGE
        return _("would disable the account %(uid)s") % values, CHANGE
    return _("Unknown action."), PROBLEM
