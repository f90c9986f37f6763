"""Segregation-of-duties checks the request services run when ordering and approving."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from governance.selectors import conflicts_of


def refuse_conflicting_order(*, beneficiary, item, service_request=None) -> None:
    """Refuse an order (or its approval) that would give one person two services a rule
    keeps apart; the message names the other service and the rule's reason."""
    conflicts = conflicts_of(
        beneficiary_id=beneficiary.pk,
        item_id=item.pk,
        ignore_request_id=service_request.pk if service_request is not None else None,
    )
    if not conflicts:
        return
    messages = []
    for conflict in conflicts:
        template = (
            _(
                "%(person)s holds “%(other)s”, which must not be combined with this "
                "service: %(reason)s"
            )
            if conflict.held
            else _(
                "%(person)s has an open request for “%(other)s”, which must not be combined "
                "with this service: %(reason)s"
            )
        )
        messages.append(
            template
            % {
                "person": beneficiary.display_name,
                "other": conflict.other_item_name,
                "reason": conflict.rule.reason,
            }
        )
    raise ValidationError({"item": messages})
