"""One identity per person (issue 9) and accounts the directory cannot take over (issue 13).

Against the private slapd: whatever spelling or alias a person types, the directory login
opens the one account the sync linked to their entry; nobody gets a new account by
logging in; superusers and people kept only in the portal are never opened by a
directory password; a person deactivated in the portal stays out.
"""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.urls import reverse

from catalogue.models import Employee
from devtools.devdirectory import ldif_entry
from itportal import roles
from provisioning.sync import sync_people
from tests.factories import EmployeeFactory, UserFactory
from tests.provisioning_support import ldapmodify
from tests.test_directory_sync import person

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("directory_login"),
]

PASSWORD = "Geheim-123"


@pytest.fixture
def directory_login(directory_settings, settings):
    settings.AUTHENTICATION_BACKENDS = [
        "provisioning.auth.DirectoryBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    return directory_settings


def add_alias(directory, uid, alias):
    """A second uid on the entry, as the demo gives its logins (uid=m10042 and mitarbeiterin)."""
    ldapmodify(
        directory, f"dn: {directory.user_dn(uid)}\nchangetype: modify\nadd: uid\nuid: {alias}\n"
    )


@pytest.fixture
def anna(directory_settings, org):
    """An employee whose entry carries her personnel number and her login name as uids."""
    employee = EmployeeFactory(
        personnel_number="m10042",
        department=org.department,
        user__username="mitarbeiterin",
        user__first_name="Anna",
    )
    directory_settings.load_ldif(person(directory_settings, "m10042", given="Anna", sn="Schmidt"))
    add_alias(directory_settings, "m10042", "mitarbeiterin")
    sync_people(full=True)
    employee.refresh_from_db()
    assert employee.directory_dn
    return employee


@pytest.mark.parametrize(
    "typed", ["mitarbeiterin", "MITARBEITERIN", "Mitarbeiterin", "m10042", "M10042"]
)
def test_every_spelling_and_alias_opens_the_one_account(anna, typed):
    users_before = get_user_model().objects.count()
    user = authenticate(username=typed, password=PASSWORD)
    assert user == anna.user
    assert user.username == "mitarbeiterin" and user.last_name == "Schmidt"
    assert get_user_model().objects.count() == users_before


def test_a_person_the_portal_does_not_know_is_refused_with_a_message(
    directory_settings, org, client
):
    directory_settings.load_ldif(person(directory_settings, "fremd1"))
    users_before = get_user_model().objects.count()
    response = client.post(reverse("login"), {"username": "fremd1", "password": PASSWORD})
    assert response.status_code == 200
    assert "not registered in the portal" in response.content.decode()
    assert get_user_model().objects.count() == users_before
    assert "_auth_user_id" not in client.session
    # A wrong password gets the usual answer, which tells nothing about the person.
    response = client.post(reverse("login"), {"username": "fremd1", "password": "falsch"})
    assert "not registered" not in response.content.decode()


def test_directory_password_never_opens_the_local_superuser(directory_settings, org):
    root = UserFactory(username="admin2", is_superuser=True, is_staff=True)
    root.set_password("lokal-Notfall-1")
    root.save()
    EmployeeFactory(user=root, personnel_number="admin2", department=org.department)
    # Somebody with rights in the directory creates an entry of that name ...
    directory_settings.load_ldif(person(directory_settings, "admin2"))
    sync_people(full=True)  # ... and the sync even links the employee to it.
    assert Employee.objects.get(user=root).directory_dn
    assert authenticate(username="admin2", password=PASSWORD) is None
    assert authenticate(username="ADMIN2", password=PASSWORD) is None
    # The break-glass account opens with its own password only.
    assert authenticate(username="admin2", password="lokal-Notfall-1") == root


def test_directory_never_opens_a_person_kept_only_in_the_portal(directory_settings, org):
    local = EmployeeFactory(personnel_number="lokal1", department=org.department)
    assert not local.directory_dn
    directory_settings.load_ldif(person(directory_settings, "lokal1"))
    assert authenticate(username="lokal1", password=PASSWORD) is None
    assert authenticate(username=local.user.username, password=PASSWORD) is None


@pytest.mark.parametrize("typed", ["mitarbeiterin", "MITARBEITERIN", "m10042"])
def test_a_person_deactivated_in_the_portal_stays_out_under_any_spelling(anna, typed, client):
    Employee.objects.filter(pk=anna.pk).update(is_active=False)
    users_before = get_user_model().objects.count()
    response = client.post(reverse("login"), {"username": typed, "password": PASSWORD})
    assert "deactivated" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert get_user_model().objects.count() == users_before
    # The nightly sync does not undo a deactivation made in the portal.
    sync_people(full=True)
    anna.refresh_from_db()
    assert not anna.is_active
    assert authenticate(username=typed, password=PASSWORD) is None


def test_a_deactivated_user_account_stays_out_too(anna):
    get_user_model().objects.filter(pk=anna.user_id).update(is_active=False)
    assert authenticate(username="M10042", password=PASSWORD) is None


def test_the_sync_readmits_a_person_it_deactivated_itself(anna, directory_settings):
    dn = directory_settings.user_dn("m10042")
    lock = (
        f"dn: {dn}\nchangetype: modify\n"
        "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )
    ldapmodify(directory_settings, lock)
    sync_people(full=True)
    anna.refresh_from_db()
    assert not anna.is_active and anna.deactivated_by_directory
    ldapmodify(directory_settings, f"dn: {dn}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
    sync_people(full=True)
    anna.refresh_from_db()
    assert anna.is_active and not anna.deactivated_by_directory
    assert authenticate(username="mitarbeiterin", password=PASSWORD) == anna.user


def test_an_alias_two_entries_share_opens_nobody(anna, directory_settings):
    directory_settings.load_ldif(person(directory_settings, "m20000"))
    add_alias(directory_settings, "m20000", "mitarbeiterin")
    assert authenticate(username="mitarbeiterin", password=PASSWORD) is None
    assert authenticate(username="m10042", password=PASSWORD) == anna.user


def test_roles_from_directory_groups_go_only_to_the_one_account(
    anna, directory_settings, settings, org
):
    admins = directory_settings.group_dn("portal-admins")
    directory_settings.load_ldif(
        ldif_entry(
            admins,
            {
                "objectClass": ["groupOfNames"],
                "cn": "portal-admins",
                "member": [directory_settings.user_dn("m10042")],
            },
        )
    )
    settings.DIRECTORY_IT_ADMIN_GROUP = admins
    for typed in ("MITARBEITERIN", "m10042", "Mitarbeiterin"):
        assert authenticate(username=typed, password=PASSWORD) == anna.user
    holders = get_user_model().objects.filter(groups__name=roles.IT_ADMIN)
    assert set(holders) == {anna.user, org.admin.user}  # the org fixture's admin holds it too
