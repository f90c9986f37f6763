"""Directory sync and directory login against the private slapd."""

import pytest
from django.contrib.auth import authenticate
from django.test import override_settings

from catalogue.models import Department, Employee
from devtools.devdirectory import ldif_entry
from itportal import roles
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from provisioning.sync import sync_people
from tests.provisioning_support import ldapmodify

pytestmark = pytest.mark.django_db


@pytest.fixture
def ldap(directory_settings):
    return directory_settings


def person(directory, uid, *, manager=None, department="10", given="Vorname", sn=None, **extra):
    attributes = {
        "objectClass": ["inetOrgPerson"],
        "uid": uid,
        "cn": f"{given} {sn or uid}",
        "sn": sn or uid,
        "givenName": given,
        "mail": f"{uid}@musterstadt.example",
        "departmentNumber": department,
        "userPassword": "Geheim-123",
        **extra,
    }
    if manager:
        attributes["manager"] = directory.user_dn(manager)
    return ldif_entry(directory.user_dn(uid), attributes)


def test_full_sync_of_1000_people_with_a_manager_chain(ldap, org):
    # A top, 9 heads, 90 team leads, 900 staff: a four-level chain.
    entries = [person(ldap, "u0000", department="00")]
    for h in range(1, 10):
        entries.append(person(ldap, f"u{h:04d}", manager="u0000", department=f"{h:02d}"))
    for t in range(10, 100):
        entries.append(
            person(ldap, f"u{t:04d}", manager=f"u{t % 9 + 1:04d}", department=f"{t % 9 + 1:02d}")
        )
    for s in range(100, 1000):
        entries.append(
            person(
                ldap,
                f"u{s:04d}",
                manager=f"u{s % 90 + 10:04d}",
                department=f"{(s % 90 + 10) % 9 + 1:02d}",
            )
        )
    ldap.load_ldif("\n".join(entries))
    run = sync_people(full=True)
    assert run.succeeded
    assert run.counts["created"] == 1000
    synced = Employee.objects.filter(personnel_number__startswith="u").select_related("manager")
    assert synced.count() == 1000
    by_uid = {e.personnel_number: e for e in synced}
    assert by_uid["u0000"].manager is None
    assert by_uid["u0005"].manager.personnel_number == "u0000"
    staff = by_uid["u0500"]
    chain = []
    while staff.manager_id:
        staff = by_uid[Employee.objects.get(pk=staff.manager_id).personnel_number]
        chain.append(staff.personnel_number)
    assert chain[-1] == "u0000" and len(chain) == 3
    assert Department.objects.filter(code__in=[f"{d:02d}" for d in range(10)]).count() == 10
    # A second full run changes nothing.
    again = sync_people(full=True)
    assert again.counts["created"] == 0 and again.counts["unchanged"] == 1000


def test_leaver_is_deactivated_and_loses_entitlements(ldap, org, manual_item, place_order):
    from requests_app import services as request_services

    ldap.load_ldif(person(ldap, org.bob.personnel_number, department=org.department.code))
    sync_people(full=True)
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    request_services.request_take(request_id=req.pk, user=org.fulfiller.user)
    request_services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    entitlement = Entitlement.objects.get(request=req)
    # Disabled in the directory (password policy lock): a leaver.
    ldapmodify(
        ldap,
        f"dn: {ldap.user_dn(org.bob.personnel_number)}\nchangetype: modify\n"
        "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
    )
    run = sync_people(full=True)
    assert run.counts["leavers"] == 1
    org.bob.refresh_from_db()
    org.bob.user.refresh_from_db()
    assert not org.bob.is_active and not org.bob.user.is_active
    entitlement.refresh_from_db()
    assert entitlement.state == EntitlementState.REVOKED
    assert "leaver" in run.report


def test_person_gone_from_directory_is_a_leaver_on_full_sync(ldap, org):
    ldap.load_ldif(person(ldap, "gone1") + "\n" + person(ldap, "stays1"))
    sync_people(full=True)
    ldapmodify(ldap, f"dn: {ldap.user_dn('gone1')}\nchangetype: delete\n")
    run = sync_people(full=True)
    assert run.counts["leavers"] == 1
    assert not Employee.objects.get(personnel_number="gone1").is_active
    assert Employee.objects.get(personnel_number="stays1").is_active


def test_mover_flags_entitlements_for_review(ldap, org, manual_item, place_order):
    from requests_app import services as request_services

    ldap.load_ldif(person(ldap, org.bob.personnel_number, department=org.department.code))
    sync_people(full=True)
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    request_services.request_take(request_id=req.pk, user=org.fulfiller.user)
    request_services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
    ldapmodify(
        ldap,
        f"dn: {ldap.user_dn(org.bob.personnel_number)}\nchangetype: modify\n"
        "replace: departmentNumber\ndepartmentNumber: 99\n",
    )
    run = sync_people(full=False)
    assert run.counts["movers"] == 1
    entitlement = Entitlement.objects.get(request=req)
    assert entitlement.state == EntitlementState.ACTIVE
    assert "moved" in entitlement.review_note


def test_injection_uid_in_directory_is_stored_verbatim_and_harmless(ldap, org):
    evil = "x*)(uid=*"
    ldap.load_ldif(person(ldap, evil) + "\n" + person(ldap, "plain1"))
    sync_people(full=True)
    assert Employee.objects.filter(personnel_number=evil).exists()
    from provisioning.backends import get_backend

    assert get_backend().find_user(evil).uid == evil
    assert get_backend().find_user("*") is None


def test_directory_login_and_roles(ldap, org, settings):
    admins = ldap.group_dn("portal-admins")
    ldap.load_ldif(
        person(ldap, "login1", given="Lena", sn="Login")
        + "\n"
        + ldif_entry(
            admins,
            {
                "objectClass": ["groupOfNames"],
                "cn": "portal-admins",
                "member": [ldap.user_dn("login1")],
            },
        )
    )
    settings.DIRECTORY_IT_ADMIN_GROUP = admins
    sync_people(full=True)  # links the entry to its portal account
    with override_settings(
        AUTHENTICATION_BACKENDS=[
            "provisioning.auth.DirectoryBackend",
            "django.contrib.auth.backends.ModelBackend",
        ]
    ):
        assert authenticate(username="login1", password="falsch") is None
        assert authenticate(username="login1*", password="Geheim-123") is None
        assert authenticate(username="*", password="Geheim-123") is None
        user = authenticate(username="login1", password="Geheim-123")
        assert user is not None
        assert (user.first_name, user.last_name) == ("Lena", "Login")
        assert user.groups.filter(name=roles.IT_ADMIN).exists() and user.is_staff
        # Local break-glass accounts still work.
        org.admin.user.set_password("lokal-123")
        org.admin.user.save()
        assert (
            authenticate(username=org.admin.user.username, password="lokal-123") == org.admin.user
        )


def test_leavers_open_requests_are_cancelled_with_a_note(ldap, org, manual_item, place_order):
    """Not yet approved, and approved but not taken: cancelled, the requester told why.
    Already being fulfilled: left for the fulfiller, who sees the person has left."""
    from requests_app import services as request_services
    from requests_app.choices import EventKind, RequestState

    ldap.load_ldif(person(ldap, org.bob.personnel_number, department=org.department.code))
    sync_people(full=True)
    waiting = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    approved = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=approved.pk, user=org.manager.user)
    taken = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=taken.pk, user=org.manager.user)
    request_services.request_take(request_id=taken.pk, user=org.fulfiller.user)
    others = place_order(manual_item, org.bob.user, beneficiary=org.alice)  # for a colleague
    ldapmodify(ldap, f"dn: {ldap.user_dn(org.bob.personnel_number)}\nchangetype: delete\n")
    run = sync_people(full=True)
    assert run.counts["withdrawn"] == 2
    for req in (waiting, approved):
        req.refresh_from_db()
        assert req.state == RequestState.CANCELLED
        event = req.events.get(kind=EventKind.CANCEL)
        assert event.actor is None and "no longer in the directory" in event.comment
        assert not req.approvals.filter(status="pending").exists()
    taken.refresh_from_db()
    others.refresh_from_db()
    assert taken.state == RequestState.IN_FULFILMENT
    assert others.state == RequestState.AWAITING_APPROVAL  # alice still works here
    assert sync_people(full=True).counts["withdrawn"] == 0  # a rerun finds nothing more


def test_joiner_offers_the_manager_the_bundle_prefilled(ldap, org, settings, client):
    """A new person under the manager: one mail to the manager, with a link that opens the
    joiner bundle for the new colleague; a second sync offers nothing again."""
    from catalogue.models import Bundle, BundleItem
    from notifications.models import OutgoingMail
    from notifications.services import compose
    from tests.factories import CatalogueItemFactory

    settings.PORTAL_JOINER_BUNDLE = "neu"
    bundle = Bundle.objects.create(name="Neue Mitarbeiterin / neuer Mitarbeiter", slug="neu")
    BundleItem.objects.create(bundle=bundle, item=CatalogueItemFactory(), position=1)
    manager_uid = org.manager.personnel_number
    ldap.load_ldif(
        person(ldap, manager_uid, department=org.department.code)
        + "\n"
        + person(ldap, "neu1", manager=manager_uid, department=org.department.code, sn="Neumann")
    )
    run = sync_people(full=True)
    assert run.counts["joiner_offers"] == 1
    mail = OutgoingMail.objects.get(kind="provisioning.joiner_offer")
    assert mail.recipient_id == org.manager.user.pk
    message = compose(mail)
    assert "/paket/neu/bestellen/?fuer=neu1" in message.body
    assert "Neumann" in message.subject
    client.force_login(org.manager.user)
    page = client.get("/paket/neu/bestellen/?fuer=neu1").content.decode()
    assert 'value="neu1"' in page
    assert sync_people(full=True).counts["joiner_offers"] == 0
    # No bundle configured (or retired): no offer, no error.
    settings.PORTAL_JOINER_BUNDLE = ""
    ldap.load_ldif(person(ldap, "neu2", manager=manager_uid, department=org.department.code))
    assert sync_people(full=True).counts["joiner_offers"] == 0


def test_joiner_start_date_is_read_and_prefills_the_bundle_order(ldap, org, settings, client):
    """The directory's start date (itportalStartDate, the portal's schema on the real slapd)
    lands on the person; the manager's mail and portal notification link the bundle for the
    joiner, needed from that day, and the order keeps the date on each request."""
    import datetime

    from django.utils import timezone

    from catalogue.models import Bundle, BundleItem, Employee
    from notifications.models import Notification, OutgoingMail
    from notifications.services import compose
    from requests_app.models import ServiceRequest
    from tests.factories import CatalogueItemFactory

    settings.PORTAL_JOINER_BUNDLE = "neu"
    bundle = Bundle.objects.create(name="Neue Mitarbeiterin / neuer Mitarbeiter", slug="neu")
    entry = BundleItem.objects.create(bundle=bundle, item=CatalogueItemFactory(), position=1)
    start = timezone.localdate() + datetime.timedelta(days=20)
    manager_uid = org.manager.personnel_number
    ldap.load_ldif(
        person(ldap, manager_uid, department=org.department.code)
        + "\n"
        + person(
            ldap,
            "neu3",
            manager=manager_uid,
            department=org.department.code,
            sn="Becker",
            objectClass=["inetOrgPerson", "itportalPerson"],
            itportalStartDate=start.strftime("%Y%m%d000000Z"),
        )
    )
    sync_people(full=True)
    joiner = Employee.objects.get(personnel_number="neu3")
    assert joiner.start_date == start
    link = f"/paket/neu/bestellen/?fuer=neu3&ab={start.isoformat()}"
    mail = OutgoingMail.objects.get(kind="provisioning.joiner_offer")
    message = compose(mail)
    assert link in message.body
    assert "First working day" in message.body or "Erster Arbeitstag" in message.body
    inbox = Notification.objects.get(recipient=org.manager.user, kind=mail.kind)
    assert inbox.url == link
    client.force_login(org.manager.user)
    page = client.get(link).content.decode()
    assert 'value="neu3"' in page and f'value="{start.isoformat()}"' in page
    posted = client.post(
        "/paket/neu/bestellen/",
        {
            "beneficiary": "neu3",
            "needed_from": start.isoformat(),
            "chosen": [entry.pk],
            f"e{entry.pk}-item_version": entry.item.version,
        },
    )
    assert posted.status_code == 302, posted.content.decode()[:2000]
    ordered = ServiceRequest.objects.get(beneficiary=joiner)
    assert ordered.needed_from == start
    assert "Needed from" in client.get(ordered.get_absolute_url()).content.decode()
    # A later change of the date in the directory follows; a date in the past is refused.
    ldapmodify(
        ldap,
        f"dn: {ldap.user_dn('neu3')}\nchangetype: modify\n"
        "replace: itportalStartDate\nitportalStartDate: 20270301000000Z\n",
    )
    sync_people(full=True)
    joiner.refresh_from_db()
    assert joiner.start_date == datetime.date(2027, 3, 1)
    past = client.post(
        "/paket/neu/bestellen/",
        {"beneficiary": "neu3", "needed_from": "2020-01-01", "chosen": [entry.pk],
         f"e{entry.pk}-item_version": entry.item.version},
    )  # fmt: skip
    assert past.status_code == 400 and ServiceRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20270104000000Z", (2027, 1, 4)),
        ("2027-01-04", (2027, 1, 4)),
        ("20271304000000Z", None),
        ("", None),
        ("gestern", None),
    ],
)
def test_start_date_formats(raw, expected):
    import datetime

    from provisioning.sync import parse_start_date

    assert parse_start_date(raw) == (datetime.date(*expected) if expected else None)


def test_the_directory_sign_in_is_read_from_lastbind(ldap, org):
    """OpenLDAP's lastbind overlay (loaded by the private slapd) stamps authTimestamp on a
    successful bind; the sync stores it as the last directory sign-in. A sign-in is no change
    of the person (the run reports them unchanged), and a person who never bound has none."""
    import datetime

    import ldap3
    from django.utils import timezone

    ldap.load_ldif(person(ldap, "aktiv1") + "\n" + person(ldap, "ruhig1"))
    sync_people(full=True)
    assert Employee.objects.get(personnel_number="aktiv1").directory_last_logon is None
    before = timezone.now() - datetime.timedelta(seconds=5)
    conn = ldap3.Connection(
        ldap3.Server(ldap.url), user=ldap.user_dn("aktiv1"), password="Geheim-123"
    )
    assert conn.bind()
    conn.unbind()
    run = sync_people(full=True)
    assert run.counts["updated"] == 0
    seen = Employee.objects.get(personnel_number="aktiv1").directory_last_logon
    assert seen is not None and before <= seen <= timezone.now() + datetime.timedelta(seconds=5)
    assert Employee.objects.get(personnel_number="ruhig1").directory_last_logon is None
    # A wrong password leaves no trace.
    wrong = ldap3.Connection(ldap3.Server(ldap.url), user=ldap.user_dn("ruhig1"), password="falsch")
    assert not wrong.bind()
    sync_people(full=True)
    assert Employee.objects.get(personnel_number="ruhig1").directory_last_logon is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20261205101500Z", "2026-12-05T10:15:00+00:00"),
        (["20261205101500.5Z"], "2026-12-05T10:15:00+00:00"),
        ("134094033000000000", "2025-12-05T10:15:00+00:00"),  # AD FILETIME
        ("0", None),  # AD: never
        ("9223372036854775807", None),  # AD: never expires / nonsense
        ("", None),
        (None, None),
        ([], None),
        ("gestern", None),
        ("16010101000000Z", None),  # ldap3's rendering of AD's 0
    ],
)
def test_logon_times_as_directories_write_them(raw, expected):
    from provisioning.sync import parse_logon_time

    parsed = parse_logon_time(raw)
    assert (parsed.isoformat() if parsed else None) == expected
