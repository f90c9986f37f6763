"""Assistance on other apps' pages: ``{% load assist %}`` in their templates, so the apps
below (requests_app, catalogue) never import this one."""

from django import template

from assist import selectors
from catalogue.models import Employee

register = template.Library()


@register.inclusion_tag("assist/decision_support.html")
def decision_support(service_request, actions):
    """The approver's figures on the request page, for whoever may decide it now."""
    may_decide = any(action.name == "approve" for action in actions or ())
    if not (may_decide and selectors.enabled("decision_support")):
        return {"support": None}
    return {"support": selectors.decision_support(service_request)}


@register.inclusion_tag("assist/approvals_support.html")
def approvals_support(table):
    """One line per request of the approvals list's current page (one query for the page)."""
    if not selectors.enabled("decision_support"):
        return {"rows": []}
    page = getattr(table, "page", None)
    rows = page.object_list if page is not None else table.rows
    records = [row.record for row in rows]
    figures = selectors.decision_support_for_rows(records)
    return {"rows": [figures[r.pk] for r in records if r.pk in figures]}


@register.inclusion_tag("assist/recommendations.html")
def recommendations(employee, for_other=False):
    """Recommended for you (start page) or for your colleague (order page)."""
    # No employee record: the template hands over "" (or None).
    if not getattr(employee, "pk", None) or not selectors.enabled("recommendations"):
        return {"suggestions": []}
    return {
        "suggestions": selectors.recommendations_for(employee),
        "for_other": for_other,
        "person": employee,
    }


@register.simple_tag
def order_beneficiary(form, requester):
    """The colleague an order form names, if not the requester (else None): the valid
    answer of a sent form, or before sending the one the address named (``?fuer=``, the
    joiner mail's link), one query then."""
    cleaned = getattr(form, "cleaned_data", None) or {}
    beneficiary = cleaned.get("beneficiary")
    if beneficiary is None and not form.is_bound:
        number = str(form.initial.get("beneficiary") or "")
        if number:
            beneficiary = (
                Employee.objects.active()
                .select_related("user")
                .filter(personnel_number=number)
                .first()
            )
    if beneficiary is None or beneficiary.pk == getattr(requester, "pk", None):
        return None
    return beneficiary


@register.simple_tag
def assist_on(part):
    """Whether a part of the assistance is switched on (``ordering_in_words``, …)."""
    return selectors.enabled(part)
