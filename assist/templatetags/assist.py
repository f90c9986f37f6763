"""Assistance on other apps' pages: ``{% load assist %}`` in their templates, so the apps
below (requests_app, catalogue) never import this one."""

import time
from typing import NamedTuple

from django import template
from django.conf import settings
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from assist import selectors
from catalogue.models import Employee
from itportal import session_copies
from itportal.reversing import reverse_number
from requests_app.tables import person_name

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
    """One line per request of the approvals list's current page (one query for the page),
    whose rows are values (requests_app.tables.RequestRowTable)."""
    if not selectors.enabled("decision_support"):
        return {"rows": []}
    page = getattr(table, "page", None)
    rows = page.object_list if page is not None else table.rows
    records = [row.record for row in rows]
    figures = selectors.decision_support_for_rows(records)
    found = [figures[r["id"]] for r in records if r["id"] in figures]
    return {"rows": found, "rows_html": mark_safe("".join(_support_row(s) for s in found))}


def _text(value) -> str:
    """A value as ``{{ value }}`` or ``{% blocktranslate with x=value %}`` write it."""
    value = localize(value)
    return conditional_escape(value if isinstance(value, str) else str(value))


def peer_figures(peers) -> str:
    """templates/assist/peers.html in Python (tests/test_assist_rows.py compares them): the
    approvals list shows it for each of its rows, an include each."""
    if peers.too_few:
        text = gettext(
            "Too few colleagues to compare (fewer than %(minimum)s): no figures, so "
            "nobody's access can be inferred."
        ) % {"minimum": _text(peers.minimum)}
    elif peers.job_title:
        text = gettext(
            "%(holders)s of %(size)s colleagues in %(department)s with the job title "
            "“%(title)s” hold this service."
        ) % {
            "holders": _text(peers.holders),
            "size": _text(peers.size),
            "department": _text(peers.department),
            "title": _text(peers.job_title),
        }
    else:
        text = gettext(
            "%(holders)s of %(size)s colleagues in %(department)s hold this service."
        ) % {
            "holders": _text(peers.holders),
            "size": _text(peers.size),
            "department": _text(peers.department),
        }
    if peers.outlier:
        unusual = gettext("Unusual: fewer than %(percent)s %% of them hold it.") % {
            "percent": _text(peers.outlier_percent)
        }
        text += f' <strong class="assist-outlier">{unusual}</strong>'
    return text + "\n"


def _support_row(support) -> str:
    """One ``<li>`` of assist/approvals_support.html, as its loop wrote it over model rows;
    ``support.request`` is the list's row (values)."""
    row = support.request
    number = row["id"]
    link = gettext("#%(number)s %(item)s for %(beneficiary)s") % {
        "number": _text(number),
        "item": _text(row["item_name"]),
        "beneficiary": _text(person_name(row, "beneficiary")),
    }
    figures = {
        "approved": _text(support.approved_label),
        "rejected": _text(support.rejected_label),
    }
    if support.decisions_since is None:
        year = gettext("Last 12 months: %(approved)s approved, %(rejected)s rejected.") % figures
    else:
        # A busy service: the most recent decisions of the year, from the day they start.
        year = gettext(
            "Last %(count)s decisions (since %(since)s): %(approved)s approved, "
            "%(rejected)s rejected."
        ) % {**figures, "count": _text(support.decided_label), "since": _text(support.since_label)}
    # Outside the f-string: xgettext does not read calls inside one (makemessages dropped it).
    held = " " + conditional_escape(gettext("Held it before.")) if support.held_before else ""
    url = conditional_escape(reverse_number("requests:detail", "pk", number))
    return (
        f'\n    <li class="assist-row"><a href="{url}">'
        f"{link}</a>:\n      {peer_figures(support.peers)}\n      {year}{held}</li>\n    "
    )


@register.inclusion_tag("assist/recommendations.html", takes_context=True)
def recommendations(context, employee, for_other=False):
    """Recommended for you (start page) or for your colleague (order page)."""
    # No employee record: the template hands over "" (or None).
    if not getattr(employee, "pk", None) or not selectors.enabled("recommendations"):
        return {"suggestions": []}
    return {
        "suggestions": _kept_recommendations(context.get("request"), employee),
        "for_other": for_other,
        "person": employee,
    }


class _KeptItem(NamedTuple):
    """What the recommendations show of an item."""

    slug: str
    name: str


def _kept_recommendations(request, employee) -> list:
    """``recommendations_for(employee)``, kept in the session like the header's counts.

    Building its query through the ORM cost a quarter of the catalogue page's CPU, for a
    figure that changes with peers' holdings; a copy at most PORTAL_NAV_COUNTS_SECONDS old,
    dropped on every POST (itportal/session_copies.py), shows one's own order at once.
    """
    max_age = settings.PORTAL_NAV_COUNTS_SECONDS
    session = getattr(request, "session", None)
    user_pk = getattr(getattr(request, "user", None), "pk", None)
    if not max_age or session is None or user_pk is None:
        return selectors.recommendations_for(employee)
    now = time.time()
    stored = session.get(session_copies.RECOMMENDATIONS)
    if (
        stored
        and stored.get("user") == user_pk
        and stored.get("employee") == employee.pk
        and 0 <= now - stored.get("at", 0) < max_age
    ):
        return [
            selectors.Recommendation(
                item=_KeptItem(slug, name), holders=holders, peers=selectors.PeerFigures(*peers)
            )
            for slug, name, holders, peers in stored["rows"]
        ]
    found = selectors.recommendations_for(employee)
    session[session_copies.RECOMMENDATIONS] = {
        "user": user_pk,
        "employee": employee.pk,
        "at": now,
        "rows": [
            [
                r.item.slug,
                r.item.name,
                r.holders,
                [
                    r.peers.department,
                    r.peers.job_title,
                    r.peers.size,
                    r.peers.holders,
                    r.peers.minimum,
                ],
            ]
            for r in found
        ],
    }
    return found


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
