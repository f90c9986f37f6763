"""Segregation of duties over sets and directory groups, with validity periods, versions,
approved exceptions and the "Warum?" pages (BSI IT-Grundschutz ORP.4.A4, ORP.1.A4).

Pairs of services, the report's basics and the order page: tests/test_segregation.py.
"""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.formats import date_format

from governance import selectors, sod, sod_services
from governance.models import (
    GroupNesting,
    SodException,
    SodFinding,
    SodMatch,
    SodRuleMember,
    SodSide,
)
from itportal.exceptions import ActionConflict
from provisioning.choices import ActionKind, EntitlementState
from provisioning.models import Entitlement, ManualMembership, ProvisioningAction
from requests_app import services
from tests.factories import EmployeeFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db

LINE_MANAGER = {"approver_kind": "line_manager"}
KASSE = "cn=kasse,ou=groups,dc=musterstadt,dc=example"
KASSE_LESEN = "cn=kasse-lesen,ou=groups,dc=musterstadt,dc=example"
FREIGABE = "cn=freigabe,ou=groups,dc=musterstadt,dc=example"


def day(offset=0):
    return timezone.localdate() + datetime.timedelta(days=offset)


@pytest.fixture
def items(org):
    """Four services; "Buchen" adds its holder to cn=kasse-lesen, nested in cn=kasse."""
    made = {
        name: make_item(org.service_desk, LINE_MANAGER, name=name, slug=name.lower())
        for name in ("Anlegen", "Buchen", "Freigeben", "Pruefen")
    }
    ProvisioningAction.objects.create(
        item=made["Buchen"], kind=ActionKind.ADD_TO_GROUP, target=KASSE_LESEN
    )
    ProvisioningAction.objects.create(
        item=made["Freigeben"], kind=ActionKind.ADD_TO_GROUP, target=FREIGABE
    )
    return made


@pytest.fixture
def grant(org, place_order):
    def _grant(item, employee, **answers):
        req = place_order(item, employee.user, answers=answers or None)
        services.request_approve(request_id=req.pk, user=employee.manager.user)
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
        services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
        return Entitlement.objects.get(request=req, state=EntitlementState.ACTIVE)

    return _grant


def refused(place_order, item, employee, match=None):
    with pytest.raises(ValidationError) as caught:
        place_order(item, employee.user)
    text = " ".join(caught.value.message_dict["item"])
    if match:
        assert match in text, text
    return text


# --- sets --------------------------------------------------------------------------------


def test_all_of_needs_every_member_at_once(org, items, grant, place_order):
    """Anlegen AND Buchen together must not meet Freigeben; either alone may."""
    sod_services.sod_rule_create(
        name="Kasse",
        reason="Trennen.",
        first=[items["Anlegen"], items["Buchen"]],
        first_match=SodMatch.ALL,
        second=[items["Freigeben"]],
    )
    grant(items["Anlegen"], org.alice)
    grant(items["Freigeben"], org.alice)  # only one of the first side: allowed
    text = refused(place_order, items["Buchen"], org.alice, "Freigeben")
    assert "version 1" in text
    grant(items["Buchen"], org.bob)
    grant(items["Freigeben"], org.bob)  # bob lacks Anlegen


def test_any_of_on_both_sides(org, items, grant, place_order):
    sod_services.sod_rule_create(
        name="Kasse",
        reason="Trennen.",
        first=[items["Anlegen"], items["Buchen"]],
        second=[items["Freigeben"], items["Pruefen"]],
    )
    grant(items["Buchen"], org.alice)
    refused(place_order, items["Pruefen"], org.alice, "Buchen")
    refused(place_order, items["Freigeben"], org.alice, "Buchen")
    place_order(items["Anlegen"], org.alice.user)  # same side: no conflict


# --- nested directory groups --------------------------------------------------------------


def test_a_rule_over_a_group_reaches_members_of_nested_groups(org, items, grant, place_order):
    """Buchen adds alice to cn=kasse-lesen, which is a member of cn=kasse: she reaches
    cn=kasse, and the message names the path."""
    sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[KASSE], second=[items["Freigeben"]]
    )
    grant(items["Buchen"], org.alice)
    early = place_order(items["Freigeben"], org.alice.user)  # no nesting known yet
    services.request_cancel(request_id=early.pk, user=org.alice.user)
    GroupNesting.objects.create(parent_dn=KASSE, child_dn=KASSE_LESEN)
    text = refused(place_order, items["Freigeben"], org.alice, "Buchen")
    assert "kasse-lesen → kasse" in text
    # The other way round: holding Freigeben, ordering Buchen.
    grant(items["Freigeben"], org.bob)
    refused(place_order, items["Buchen"], org.bob, "Freigeben")


def test_nesting_loops_end(org, items, grant, place_order):
    GroupNesting.objects.create(parent_dn=KASSE, child_dn=KASSE_LESEN)
    GroupNesting.objects.create(parent_dn=KASSE_LESEN, child_dn=KASSE)
    paths = sod.group_paths(KASSE_LESEN, sod.group_parents())
    assert paths == {KASSE_LESEN: (KASSE_LESEN,), KASSE: (KASSE_LESEN, KASSE)}


def test_a_membership_given_by_hand_counts(org, items, place_order):
    """Reconciliation found alice in cn=kasse-lesen without a grant: nested in cn=kasse."""
    sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[KASSE], second=[items["Freigeben"]]
    )
    GroupNesting.objects.create(parent_dn=KASSE, child_dn=KASSE_LESEN)
    ManualMembership.objects.create(
        group_dn=KASSE_LESEN,
        member_dn=f"uid={org.alice.personnel_number},ou=people",
        member_uid=org.alice.personnel_number.upper(),
    )
    text = refused(place_order, items["Freigeben"], org.alice, "kasse-lesen")
    assert "directory group" in text
    place_order(items["Freigeben"], org.bob.user)


def test_group_nesting_is_read_from_the_directory(directory_settings):
    """Against the private slapd: cn=kasse-lesen is a member of cn=kasse."""
    from tests.provisioning_support import add_group, ldapmodify

    kasse = add_group(directory_settings, "kasse")
    lesen = add_group(directory_settings, "kasse-lesen")
    add_group(directory_settings, "andere")
    ldapmodify(
        directory_settings, f"dn: {kasse}\nchangetype: modify\nadd: member\nmember: {lesen}\n"
    )
    GroupNesting.objects.create(parent_dn="cn=alt,dc=x", child_dn="cn=weg,dc=x")
    counts = sod_services.group_nesting_refresh()
    assert counts["nested"] == 1 and counts["removed"] == 1
    from provisioning.holders import dn_key

    assert list(GroupNesting.objects.values_list("parent_dn", "child_dn")) == [
        (dn_key(kasse), dn_key(lesen))
    ]
    assert sod_services.group_nesting_refresh()["added"] == 0  # idempotent


# --- validity periods --------------------------------------------------------------------


def test_periods_that_do_not_overlap_do_not_conflict(org, items, grant, place_order):
    """Freigeben expired yesterday (the nightly removal has not run yet): ordering Anlegen
    from today does not conflict; the report does not list alice either."""
    sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[items["Anlegen"]], second=[items["Freigeben"]]
    )
    held = grant(items["Freigeben"], org.alice)
    Entitlement.objects.filter(pk=held.pk).update(
        granted_at=timezone.now() - datetime.timedelta(days=30), expires_on=day(-1)
    )
    req = place_order(items["Anlegen"], org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    services.request_take(request_id=req.pk, user=org.fulfiller.user)
    services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    sod_services.sod_scan()
    assert not SodFinding.objects.filter(holder=org.alice).exists()
    # Still valid until tomorrow: they overlap today and tomorrow.
    Entitlement.objects.filter(pk=held.pk).update(expires_on=day(1))
    sod_services.sod_scan()
    finding = SodFinding.objects.get(holder=org.alice, resolved_at__isnull=True)
    assert (finding.overlap_from, finding.overlap_until) == (day(0), day(1))


def test_an_order_needed_after_the_held_one_ends_does_not_conflict(org, items, grant, place_order):
    """Freigeben until day 10 (a stand-in); Anlegen needed from day 11 (provisioning waits
    for that day): no overlap. Needed from day 10: refused."""
    sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[items["Anlegen"]], second=[items["Freigeben"]]
    )
    held = grant(items["Freigeben"], org.alice)
    Entitlement.objects.filter(pk=held.pk).update(expires_on=day(10))
    with pytest.raises(ValidationError):
        place_order(items["Anlegen"], org.alice.user, needed_from=day(10))
    later = place_order(items["Anlegen"], org.alice.user, needed_from=day(11))
    services.request_approve(request_id=later.pk, user=org.manager.user)  # approving too


def test_window_arithmetic():
    a = sod.Window(day(0), day(10))
    assert a.intersect(sod.Window(day(11), None)) is None
    assert a.intersect(sod.Window(None, day(0))) == sod.Window(day(0), day(0))
    assert sod.Window().intersect(sod.Window()) == sod.Window()


# --- versions and the scan -------------------------------------------------------------


def test_each_change_is_a_version_and_findings_name_theirs(org, items, grant):
    grant(items["Anlegen"], org.alice)
    grant(items["Freigeben"], org.alice)
    rule = sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[items["Anlegen"]], second=[items["Freigeben"]]
    )
    sod_services.sod_scan()
    assert SodFinding.objects.get(holder=org.alice).rule_version == 1
    SodRuleMember.objects.create(rule=rule, side=SodSide.SECOND, item=items["Pruefen"])
    rule = sod_services.sod_rule_record_version(rule_id=rule.pk)
    assert rule.version == 2
    assert sod_services.sod_rule_record_version(rule_id=rule.pk).version == 2  # unchanged
    assert [v.version for v in rule.versions.all()] == [2, 1]
    assert rule.versions.get(version=1).content["second"] == [
        {"item": items["Freigeben"].pk, "name": "Freigeben"}
    ]
    sod_services.sod_scan()
    finding = SodFinding.objects.get(holder=org.alice)
    assert finding.rule_version == 2
    # Revoked: the next scan closes the finding; deactivating the rule would too.
    Entitlement.objects.filter(holder=org.alice, item=items["Anlegen"]).update(
        state=EntitlementState.REVOKED
    )
    assert sod_services.sod_scan()["resolved"] == 1
    finding.refresh_from_db()
    assert finding.resolved_at is not None
    assert not selectors.open_findings().exists()


def test_scan_one_holder_leaves_the_others(org, items, grant):
    for person in (org.alice, org.bob):
        grant(items["Anlegen"], person)
        grant(items["Freigeben"], person)
    sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[items["Anlegen"]], second=[items["Freigeben"]]
    )
    assert sod_services.sod_scan(holder_ids=[org.bob.pk])["found"] == 1
    assert list(SodFinding.objects.values_list("holder", flat=True)) == [org.bob.pk]
    sod_services.sod_scan()
    sod_services.sod_scan()  # idempotent: still one open row per person
    assert SodFinding.objects.filter(resolved_at__isnull=True).count() == 2


# --- exceptions ----------------------------------------------------------------------


@pytest.fixture
def officer(org, group):
    person = EmployeeFactory(department=org.department, user__username="dsb")
    person.user.groups.add(group("Datenschutz"))
    return person


@pytest.fixture
def kasse(items):
    return sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[items["Anlegen"]], second=[items["Freigeben"]]
    )


def ask(rule, holder, user, until=30):
    return sod_services.sod_exception_request(
        rule_id=rule.pk,
        holder=holder,
        user=user,
        justification="Kleine Kasse, nur eine Person.",
        compensating_control="Monatliche Stichprobe durch die Amtsleitung.",
        valid_until=day(until),
    )


def test_an_approved_exception_allows_the_order_until_it_expires(
    org, items, kasse, grant, place_order, officer
):
    grant(items["Anlegen"], org.alice)
    exception = ask(kasse, org.alice, org.admin.user)
    refused(place_order, items["Freigeben"], org.alice)  # not approved yet
    sod_services.sod_exception_decide(exception_id=exception.pk, user=officer.user, approve=True)
    req = place_order(items["Freigeben"], org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)  # approving too
    SodException.objects.filter(pk=exception.pk).update(valid_until=day(-1))  # expired
    with pytest.raises(ValidationError):
        place_order(items["Freigeben"], org.alice.user)


def test_nobody_approves_their_own_exception_nor_one_they_asked_for(
    org, items, kasse, officer, group
):
    org.alice.user.groups.add(group("Datenschutz"))
    exception = ask(kasse, org.alice, org.admin.user)
    for person, why in ((org.alice, "concerns themselves"), (org.admin, "asked for")):
        with pytest.raises(PermissionDenied, match=why):
            sod_services.sod_exception_decide(
                exception_id=exception.pk, user=person.user, approve=True
            )
    with pytest.raises(PermissionDenied):
        sod_services.sod_exception_decide(
            exception_id=exception.pk, user=org.manager.user, approve=True
        )
    # The database refuses it too.
    exception.state, exception.decided_by = SodException.State.APPROVED, org.admin.user
    with pytest.raises(IntegrityError), transaction.atomic():
        exception.save()
    # A rejection needs a reason; a decided exception is not decided again.
    with pytest.raises(ValidationError):
        sod_services.sod_exception_decide(
            exception_id=exception.pk, user=officer.user, approve=False
        )
    sod_services.sod_exception_decide(exception_id=exception.pk, user=officer.user, approve=True)
    with pytest.raises(ActionConflict):
        sod_services.sod_exception_decide(
            exception_id=exception.pk, user=officer.user, approve=False, comment="Doch nicht."
        )


def test_exception_input_is_checked(org, kasse):
    with pytest.raises(ValidationError, match="one year"):
        ask(kasse, org.alice, org.admin.user, until=400)
    with pytest.raises(ValidationError):
        sod_services.sod_exception_request(
            rule_id=kasse.pk, holder=org.alice, user=org.admin.user, justification=" ",
            compensating_control="x", valid_until=day(3),
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        ask(kasse, org.alice, org.manager.user)


def test_expiring_exceptions_are_re_certified(org, kasse, officer):
    """The selector the recertification uses lists exceptions due within 30 days; a renewal
    asked for takes it off the list, and is decided by another person again."""
    exception = ask(kasse, org.alice, org.admin.user, until=10)
    sod_services.sod_exception_decide(exception_id=exception.pk, user=officer.user, approve=True)
    assert list(sod.exceptions_to_recertify(within_days=30)) == [exception]
    assert list(sod.exceptions_to_recertify(within_days=5)) == []
    renewal = sod_services.sod_exception_renew(exception_id=exception.pk, user=officer.user)
    assert renewal.state == SodException.State.REQUESTED and renewal.renews == exception
    assert renewal.valid_until > exception.valid_until
    assert list(sod.exceptions_to_recertify(within_days=30)) == []
    with pytest.raises(ActionConflict):
        sod_services.sod_exception_renew(exception_id=exception.pk, user=officer.user)
    with pytest.raises(PermissionDenied, match="asked for"):
        sod_services.sod_exception_decide(exception_id=renewal.pk, user=officer.user, approve=True)
    sod_services.sod_exception_decide(exception_id=renewal.pk, user=org.admin.user, approve=True)


def test_report_marks_excepted_findings(org, items, kasse, grant, officer, client):
    grant(items["Anlegen"], org.alice)
    exception = ask(kasse, org.alice, org.admin.user)
    sod_services.sod_exception_decide(exception_id=exception.pk, user=officer.user, approve=True)
    grant(items["Freigeben"], org.alice)
    sod_services.sod_scan()
    row = selectors.open_findings().get()
    assert row.excepted_until == exception.valid_until
    client.force_login(officer.user)
    text = client.get("/funktionstrennung/?format=csv")
    body = b"".join(text.streaming_content).decode("utf-8-sig")
    assert exception.valid_until.isoformat() in body


def exception_mails():
    from notifications.models import OutgoingMail

    return list(
        OutgoingMail.objects.filter(kind="governance.sod_exception_expiring").order_by("id")
    )


def test_expiring_exceptions_remind_the_approver_then_lapse_and_the_conflict_returns(
    org, items, kasse, grant, officer, client, settings, place_order
):
    """Reminders in working days before expiry, once per exception and reminder, to whoever
    approved it (never the person concerned); the day after expiry it lapses and the
    report shows the conflict without an exception again."""
    from governance.tasks import sod_exceptions_remind_and_lapse
    from itportal.workdays import add_working_days
    from notifications.services import compose

    settings.SOD_EXCEPTION_REMINDER_WORKING_DAYS = [10, 3]
    assert settings.CELERY_TASK_ROUTES["governance.tasks.sod_exceptions_remind_and_lapse"] == {
        "queue": "reports"
    }
    start = add_working_days(day(), 0 if sod_services.workdays.is_working_day(day()) else 1)
    grant(items["Anlegen"], org.alice)
    exception = ask(kasse, org.alice, org.admin.user, until=0)
    SodException.objects.filter(pk=exception.pk).update(valid_until=add_working_days(start, 15))
    sod_services.sod_exception_decide(exception_id=exception.pk, user=officer.user, approve=True)
    grant(items["Freigeben"], org.alice)  # allowed by the exception
    sod_services.sod_scan()
    client.force_login(officer.user)
    report = client.get("/funktionstrennung/").content.decode()
    valid_until = add_working_days(start, 15)
    assert "until " in report and SodFinding.objects.filter(resolved_at__isnull=True).count() == 1

    def run(on):
        return sod_services.sod_exceptions_remind_and_lapse(today=on)

    assert run(start) == {"reminded": 0, "lapsed": 0}  # 15 working days left
    first = add_working_days(start, 5)  # 10 left
    assert run(first) == {"reminded": 1, "lapsed": 0}
    assert run(first) == {"reminded": 0, "lapsed": 0}  # once
    assert run(add_working_days(start, 8)) == {"reminded": 0, "lapsed": 0}
    (mail,) = exception_mails()
    assert mail.recipient == officer.user  # the approver, not the holder or the requester
    text = compose(mail)
    with translation.override("en"):
        assert "Kasse" in text.subject
        assert date_format(valid_until, "SHORT_DATE_FORMAT") in text.subject
    assert org.alice.display_name in text.body
    assert f"/funktionstrennung/ausnahmen/{exception.pk}/" in text.body
    # A later run that missed days sends the next reminder once, not the ones it missed.
    assert run(add_working_days(start, 13)) == {"reminded": 1, "lapsed": 0}
    assert run(add_working_days(start, 14)) == {"reminded": 0, "lapsed": 0}
    assert len(exception_mails()) == 2
    # The approver has gone: IT administration and data protection are reminded instead,
    # never the person concerned even where she is one of them.
    officer.user.is_active = False
    officer.user.save()
    exception.refresh_from_db()
    reviewers = sod_services.exception_reviewers(exception)
    assert org.admin.user in reviewers and org.alice.user not in reviewers
    # On the last day it holds; the day after, it lapses (beat task, eager as in production's
    # worker: routed, idempotent).
    assert run(valid_until)["lapsed"] == 0
    SodException.objects.filter(pk=exception.pk).update(valid_until=day(-1))
    assert sod_exceptions_remind_and_lapse.apply().get() == {"reminded": 0, "lapsed": 1}
    assert sod_exceptions_remind_and_lapse.apply().get()["lapsed"] == 0
    exception.refresh_from_db()
    assert exception.state == SodException.State.EXPIRED and not exception.is_effective()
    row = selectors.open_findings().get()
    assert row.excepted_until is None
    client.force_login(org.admin.user)
    report = client.get("/funktionstrennung/").content.decode()
    assert "until " not in report.split("<tbody")[1] and "Kasse" in report
    # Ordering again is refused: the conflict counts again.
    Entitlement.objects.filter(holder=org.alice, item=items["Freigeben"]).update(
        state=EntitlementState.REVOKED
    )
    refused(place_order, items["Freigeben"], org.alice)


def test_a_renewal_is_never_approved_by_the_person_concerned(
    org, items, kasse, officer, group, client, settings
):
    from itportal.workdays import add_working_days

    settings.SOD_EXCEPTION_REMINDER_WORKING_DAYS = [10, 3]
    org.alice.user.groups.add(group("Datenschutz"))  # she handles exceptions herself
    exception = ask(kasse, org.alice, org.admin.user, until=20)
    sod_services.sod_exception_decide(exception_id=exception.pk, user=officer.user, approve=True)
    # The reminder never goes to her, though she is data protection.
    remind_on = add_working_days(day(), 1)
    while sod_services.workdays.working_days_between(remind_on, exception.valid_until) > 10:
        remind_on = add_working_days(remind_on, 1)
    assert sod_services.sod_exceptions_remind_and_lapse(today=remind_on)["reminded"] == 1
    assert [m.recipient for m in exception_mails()] == [officer.user]
    renewal = sod_services.sod_exception_renew(exception_id=exception.pk, user=org.admin.user)
    # Nor by her on the page: refused, nothing decided.
    client.force_login(org.alice.user)
    page = client.get(f"/funktionstrennung/ausnahmen/{renewal.pk}/").content.decode()
    assert "Nobody decides an exception that concerns themselves." in page
    response = client.post(f"/funktionstrennung/ausnahmen/{renewal.pk}/", {"action": "approve"})
    assert response.status_code == 403
    with pytest.raises(PermissionDenied, match="concerns themselves"):
        sod_services.sod_exception_decide(
            exception_id=renewal.pk, user=org.alice.user, approve=True
        )
    renewal.refresh_from_db()
    assert renewal.state == SodException.State.REQUESTED and renewal.decided_by is None
    # A renewal asked for: no further reminder for the old one.
    last = add_working_days(remind_on, 8)
    assert sod_services.sod_exceptions_remind_and_lapse(today=last)["reminded"] == 0
    sod_services.sod_exception_decide(exception_id=renewal.pk, user=officer.user, approve=True)
    assert renewal.renews == exception


# --- pages -----------------------------------------------------------------------------


def test_finding_page_explains_and_takes_an_exception_request(org, items, grant, client, officer):
    grant(items["Buchen"], org.alice)
    grant(items["Freigeben"], org.alice)  # before the rule and the nesting were known
    GroupNesting.objects.create(parent_dn=KASSE, child_dn=KASSE_LESEN)
    sod_services.sod_rule_create(
        name="Kasse", reason="Trennen.", first=[KASSE], second=[items["Freigeben"]]
    )
    sod_services.sod_scan()
    finding = SodFinding.objects.get()
    client.force_login(org.admin.user)
    report = client.get("/funktionstrennung/").content.decode()
    assert f"/funktionstrennung/{finding.pk}/" in report
    page = client.get(f"/funktionstrennung/{finding.pk}/")
    body = page.content.decode()
    assert page.status_code == 200
    for text in ("Buchen", "kasse-lesen", "kasse", "version 1", org.manager.user.get_full_name()):
        assert text in body, text
    bad = client.post(f"/funktionstrennung/{finding.pk}/", {"valid_until": "x"})
    assert bad.status_code == 400
    made = client.post(
        f"/funktionstrennung/{finding.pk}/",
        {"justification": "Vertretung.", "compensating_control": "Stichprobe.",
         "valid_until": day(20).isoformat()},
    )  # fmt: skip
    exception = SodException.objects.get()
    assert (
        made.status_code == 302
        and made["Location"] == f"/funktionstrennung/ausnahmen/{exception.pk}/"
    )
    own = client.post(f"/funktionstrennung/ausnahmen/{exception.pk}/", {"action": "approve"})
    assert own.status_code == 403
    client.force_login(officer.user)
    assert client.get("/funktionstrennung/ausnahmen/").status_code == 200
    done = client.post(f"/funktionstrennung/ausnahmen/{exception.pk}/", {"action": "approve"})
    assert done.status_code == 302
    exception.refresh_from_db()
    assert exception.state == SodException.State.APPROVED
    assert exception.decided_by == officer.user
    assert (
        client.post(
            f"/funktionstrennung/ausnahmen/{exception.pk}/", {"action": "nonsense"}
        ).status_code
        == 400
    )
    for person in (org.alice, org.manager, org.fulfiller):
        client.force_login(person.user)
        for url in (
            f"/funktionstrennung/{finding.pk}/",
            "/funktionstrennung/ausnahmen/",
            f"/funktionstrennung/ausnahmen/{exception.pk}/",
        ):
            assert client.get(url).status_code == 403, (person, url)


def test_entitlement_why_page(org, items, grant, client, officer, settings):
    GroupNesting.objects.create(parent_dn=KASSE, child_dn=KASSE_LESEN)
    entitlement = grant(items["Buchen"], org.alice)
    url = f"/warum/berechtigung/{entitlement.pk}/"
    for person in (org.alice, org.manager, org.admin, officer):
        client.force_login(person.user)
        page = client.get(url)
        assert page.status_code == 200, person
        body = page.content.decode()
        assert "kasse-lesen" in body and "kasse" in body
        assert org.manager.user.get_full_name() in body  # who approved
    for person in (org.bob, org.fulfiller, org.outsider):
        client.force_login(person.user)
        assert client.get(url).status_code == 404
    client.force_login(org.alice.user)
    assert url.encode() in client.get("/provisionierung/berechtigungen/").content
    # A recertification: the reviewer, why them, and the stage's due date with its calendar.
    from governance import services as governance_services

    governance_services.campaign_start(name="Rezertifizierung 2027", due_on=day(20))
    settings.PORTAL_HOLIDAY_SUBDIVISION = "BY"
    body = client.get(url).content.decode()
    assert "Rezertifizierung 2027" in body and "Line manager" in body and "BY" in body
    assert org.manager.user.get_full_name() in body


def test_request_why_page_names_the_calendar(org, place_order, client, settings):
    settings.PORTAL_HOLIDAY_SUBDIVISION = "BY"
    item = make_item(org.service_desk, LINE_MANAGER, sla_target_days=3)
    req = place_order(item, org.alice.user)
    services.request_approve(request_id=req.pk, user=org.manager.user)
    req.refresh_from_db()
    assert req.fulfilment_due_on is not None
    client.force_login(org.alice.user)
    assert f"/warum/antrag/{req.pk}/".encode() in client.get(req.get_absolute_url()).content
    body = client.get(f"/warum/antrag/{req.pk}/").content.decode()
    assert "BY" in body and org.manager.user.get_full_name() in body
    client.force_login(org.outsider.user)
    assert client.get(f"/warum/antrag/{req.pk}/").status_code == 404
