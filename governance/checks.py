"""Segregation-of-duties checks the request services run when ordering and approving."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from governance.sod import conflicts_of_order, group_label


def _other_holdings(hit) -> list[str]:
    """What else the person holds that breaks the rule, with the way a group is reached."""
    names = []
    for reach in (*hit.first, *hit.second):
        holding = reach.holding
        if holding.source == "order":
            continue
        name = f"“{holding.label}”"
        if holding.source == "manual":
            name = _("the directory group “%(group)s”") % {"group": group_label(holding.label)}
        if len(reach.group_path) > 1:
            name += " " + _("(through %(path)s)") % {
                "path": " → ".join(group_label(g) for g in reach.group_path)
            }
        if name not in names:
            names.append(name)
    return names


def refuse_conflicting_order(
    *, beneficiary, item, answers=None, needed_from=None, service_request=None
) -> None:
    """Refuse an order (or its approval) that would give one person both sides of a rule at
    overlapping times, unless an approved exception covers it; the message names what else
    is held and the rule's reason."""
    hits = conflicts_of_order(
        beneficiary=beneficiary,
        item=item,
        answers=answers,
        needed_from=needed_from,
        service_request=service_request,
    )
    messages = []
    for hit in hits:
        if hit.excepted_until is not None:
            continue
        others = _other_holdings(hit)
        template = (
            _(
                "%(person)s has an open request for %(other)s, which must not be combined "
                "with this service (rule “%(rule)s”, version %(version)s): %(reason)s"
            )
            if others
            and all(
                r.holding.source == "request"
                for r in (*hit.first, *hit.second)
                if r.holding.source != "order"
            )
            else _(
                "%(person)s holds %(other)s, which must not be combined with this service "
                "(rule “%(rule)s”, version %(version)s): %(reason)s"
            )
        )
        messages.append(
            template
            % {
                "person": beneficiary.display_name,
                "other": ", ".join(others),
                "rule": hit.rule.name,
                "version": hit.rule.version,
                "reason": hit.rule.reason,
            }
        )
    if messages:
        raise ValidationError({"item": messages})
