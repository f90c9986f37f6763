"""Movers in the directory sync, on the real slapd: a new department or line manager flags
the person's access for the new manager, due within PORTAL_MOVER_REVIEW_WORKING_DAYS working
days, with the old department's access marked; a reminder before, removal of what is still
undecided after the due day (through the usual revocation); a decision clears the flag."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from catalogue.models import Department
from itportal.workdays import add_working_days
from notifications.models import OutgoingMail
from notifications.services import compose
from provisioning import movers
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from provisioning.sync import sync_people
from requests_app.models import FulfilmentTask
from tests.factories import CostCentreFactory, DepartmentFactory
from tests.provisioning_support import add_person, ldapmodify
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db

MAIL = "provisioning.mover_review"


@pytest.fixture
def moved(org, directory_settings, place_order, settings):
    """Bob (FB10, under the manager) holds a token charged to FB10 and a licence charged
    elsewhere; the directory then moves him to FB20 under the department head."""
    settings.PORTAL_MOVER_REVIEW_WORKING_DAYS = 10
    settings.PORTAL_MOVER_REMINDER_WORKING_DAYS = 3
    ldap = directory_settings
    DepartmentFactory(code="FB20", cost_centre=CostCentreFactory(code="KS2000"))
    for person, manager in ((org.head, None), (org.manager, org.head), (org.bob, org.manager)):
        extra = {"departmentNumber": org.department.code,
                 "mail": f"{person.personnel_number}@musterstadt.example"}  # fmt: skip
        if manager is not None:
            extra["manager"] = ldap.user_dn(manager.personnel_number)
        add_person(ldap, person, **extra)
    sync_people(full=True)
    held = {}
    for slug in ("token", "licence"):
        item = make_item(org.service_desk, name=slug.title(), slug=slug)
        req = place_order(item, org.alice.user, beneficiary=org.bob)
        held[slug] = Entitlement.objects.create(request=req, holder=org.bob, item=item)
    other = CostCentreFactory(code="KS9000")
    type(held["licence"].request).objects.filter(pk=held["licence"].request_id).update(
        cost_centre=other
    )
    ldapmodify(
        ldap,
        f"dn: {ldap.user_dn(org.bob.personnel_number)}\nchangetype: modify\n"
        "replace: departmentNumber\ndepartmentNumber: FB20\n-\n"
        f"replace: manager\nmanager: {ldap.user_dn(org.head.personnel_number)}\n",
    )
    return ldap, held


def test_a_mover_is_reviewed_by_the_new_manager_within_the_period(org, moved, client):
    _ldap, held = moved
    today = timezone.localdate()
    run = sync_people(full=True)
    assert run.counts["movers"] == 1
    org.bob.refresh_from_db()
    assert org.bob.department == Department.objects.get(code="FB20")
    assert org.bob.manager == org.head
    token, licence = (Entitlement.objects.get(pk=held[k].pk) for k in ("token", "licence"))
    due = add_working_days(today, 10)
    assert (token.review_due_on, licence.review_due_on) == (due, due)
    assert "moved from FB10 to FB20" in token.review_note
    assert (token.review_old_department, licence.review_old_department) == (True, False)
    # The new manager is asked, with the due date and the list.
    mail = OutgoingMail.objects.get(kind=MAIL)
    assert mail.recipient == org.head.user
    body = compose(mail).body
    assert "Token (access of the old department)" in body and "Licence" in body
    assert "/zugriffspruefung/#moved-heading" in body
    # Their review page shows both with the due date; the old manager sees nothing.
    client.force_login(org.head.user)
    page = client.get(reverse("reviews:pending")).content.decode()
    assert "access of the old department" in page and f'name="flag-{token.pk}"' in page
    with translation.override("en"):
        assert date_format(due, "SHORT_DATE_FORMAT") in page
    client.force_login(org.manager.user)
    assert f'name="flag-{token.pk}"' not in client.get(reverse("reviews:pending")).content.decode()
    # The new manager keeps the licence: its flag clears.
    client.force_login(org.head.user)
    client.post(reverse("reviews:pending"), {f"flag-{licence.pk}": "keep"})
    licence.refresh_from_db()
    assert (licence.review_note, licence.state) == ("", EntitlementState.ACTIVE)

    # A rerun of the sync flags nothing again.
    assert sync_people(full=True).counts["movers"] == 0

    # Three working days before the due day: one reminder, once.
    reminder_day = add_working_days(today, 7)
    assert movers.movers_sweep(today=reminder_day) == {"reminded": 1, "removed": 0}
    assert movers.movers_sweep(today=reminder_day) == {"reminded": 0, "removed": 0}
    reminder = OutgoingMail.objects.filter(kind=MAIL).order_by("created_at").last()
    assert reminder.params["event"] == "reminder" and reminder.recipient == org.head.user
    assert "Token" in compose(reminder).body and "Licence" not in compose(reminder).body
    # On the due day nothing is removed; the day after, the undecided token is.
    assert movers.movers_sweep(today=due)["removed"] == 0
    after = due + datetime.timedelta(days=1)
    assert movers.movers_sweep(today=after) == {"reminded": 0, "removed": 1}
    token.refresh_from_db()
    licence.refresh_from_db()
    assert token.state == EntitlementState.REVOKED and token.review_note == ""
    assert "Not confirmed by the new line manager" in token.revoke_reason
    assert licence.state == EntitlementState.ACTIVE
    # A manual token: removed through the usual revocation, so its group gets the task.
    assert FulfilmentTask.objects.filter(request=token.request, kind="remove_access").exists()
    assert movers.movers_sweep(today=after) == {"reminded": 0, "removed": 0}


def test_a_new_line_manager_alone_makes_a_mover(org, directory_settings, place_order):
    ldap = directory_settings
    for person, manager in ((org.head, None), (org.manager, org.head), (org.bob, org.manager)):
        extra = {"departmentNumber": org.department.code}
        if manager is not None:
            extra["manager"] = ldap.user_dn(manager.personnel_number)
        add_person(ldap, person, **extra)
    sync_people(full=True)
    item = make_item(org.service_desk, name="Token", slug="token")
    req = place_order(item, org.alice.user, beneficiary=org.bob)
    token = Entitlement.objects.create(request=req, holder=org.bob, item=item)
    ldapmodify(
        ldap,
        f"dn: {ldap.user_dn(org.bob.personnel_number)}\nchangetype: modify\n"
        f"replace: manager\nmanager: {ldap.user_dn(org.head.personnel_number)}\n",
    )
    run = sync_people(full=False)
    assert run.counts["movers"] == 1
    token.refresh_from_db()
    assert "new line manager" in token.review_note
    assert token.review_due_on and token.review_old_department is False
    # Nothing flagged, nothing to remove: a sweep on any later day leaves it to the manager
    # until its due day.
    assert movers.movers_sweep(today=timezone.localdate())["removed"] == 0


def test_a_decided_review_is_done_its_due_date_no_longer_counts(org, moved, client):
    """Once the new manager has decided every flagged access, the review is done: no due
    date left, no reminder before it and no removal after it."""
    _ldap, held = moved
    today = timezone.localdate()
    sync_people(full=True)
    client.force_login(org.head.user)
    token, licence = held["token"], held["licence"]
    client.post(reverse("reviews:pending"), {f"flag-{token.pk}": "keep"})
    client.post(reverse("reviews:pending"), {f"flag-{licence.pk}": "remove"})
    token.refresh_from_db()
    licence.refresh_from_db()
    assert (token.review_note, token.review_due_on, token.review_reminded_at) == ("", None, None)
    assert (licence.review_due_on, licence.state) == (None, EntitlementState.REVOKED)
    mails = OutgoingMail.objects.filter(kind=MAIL).count()
    due = add_working_days(today, 10)
    for day in (add_working_days(today, 7), due, due + datetime.timedelta(days=1)):
        assert movers.movers_sweep(today=day) == {"reminded": 0, "removed": 0}
    token.refresh_from_db()
    assert token.state == EntitlementState.ACTIVE
    assert OutgoingMail.objects.filter(kind=MAIL).count() == mails
    # The review page lists nothing left to decide for Bob.
    page = client.get(reverse("reviews:pending")).content.decode()
    assert f'name="flag-{token.pk}"' not in page
