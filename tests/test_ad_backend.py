"""The Active Directory dialect of the provisioning backend against a real Samba AD DC.

Each action is applied and read back through a separate admin connection;
running an action twice leaves the same state.
"""

import ldap3
import pytest

from provisioning.backends.active_directory import ActiveDirectoryBackend, encode_password
from provisioning.backends.base import DirectoryConfig
from provisioning.backends.errors import PermanentDirectoryError

GLOBAL_SECURITY_GROUP = "-2147483646"


@pytest.fixture
def ad(samba_dc, ad_ou):
    config = DirectoryConfig(
        dialect="ad", user_base=ad_ou, group_base=ad_ou, **samba_dc.config_kwargs("ldaps")
    )
    backend = ActiveDirectoryBackend(config)
    yield backend
    backend.close()


@pytest.fixture
def admin(samba_dc):
    conn = samba_dc.connection()
    yield conn
    conn.unbind()


def read(conn, dn, *attributes):
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=list(attributes))
    return conn.entries[0].entry_attributes_as_dict


def can_bind(samba_dc, dn, password) -> bool:
    conn = ldap3.Connection(samba_dc.ldap_server("ldaps"), user=dn, password=password)
    try:
        return conn.bind()
    finally:
        conn.unbind()


def use_active_directory(settings, samba_dc, ad_ou) -> None:
    """Point the portal's directory settings at the Samba DC (reset_backends() afterwards)."""
    from provisioning.backends import reset_backends

    settings.DIRECTORY = {
        **settings.DIRECTORY,
        "dialect": "ad",
        "user_base": ad_ou,
        "group_base": ad_ou,
        **samba_dc.config_kwargs("ldaps"),
    }
    reset_backends()


def make_group(admin, ad_ou, name):
    dn = f"CN={name},{ad_ou}"
    assert admin.add(
        dn, ["top", "group"], {"sAMAccountName": name, "groupType": GLOBAL_SECURITY_GROUP}
    )
    return dn


def test_create_account_with_password_enabled_and_idempotent(ad, admin, samba_dc):
    password = "Sehr-geheim-2026!"
    assert ad.create_user(
        "m10042", {"cn": "Anna Schmidt", "givenName": "Anna", "sn": "Schmidt"}, password
    )
    assert ad.create_user("m10042", {"cn": "Anna Schmidt"}, password) is False
    user = ad.require_user("m10042")
    attrs = read(admin, user.dn, "userAccountControl", "sAMAccountName")
    assert attrs["sAMAccountName"] == ["m10042"]
    assert int(attrs["userAccountControl"][0]) & 0x2 == 0
    assert can_bind(samba_dc, user.dn, password)


def test_disable_and_enable_change_what_the_directory_allows(ad, admin, samba_dc):
    password = "Sehr-geheim-2026!"
    ad.create_user("m10043", {"cn": "Jonas Wagner"}, password)
    user = ad.require_user("m10043")
    assert ad.set_enabled(user.dn, False) is True
    assert ad.set_enabled(user.dn, False) is False  # twice = same state
    assert int(read(admin, user.dn, "userAccountControl")["userAccountControl"][0]) & 0x2
    assert not can_bind(samba_dc, user.dn, password)
    assert ad.set_enabled(user.dn, True) is True
    assert can_bind(samba_dc, user.dn, password)


def test_group_membership_add_remove_read_back(ad, admin, ad_ou):
    ad.create_user("m10044", {"cn": "Eva Klein"}, None)
    user = ad.require_user("m10044")
    group = make_group(admin, ad_ou, "vpn-users")
    assert ad.add_member(group, user.dn) is True
    assert ad.add_member(group, user.dn) is False
    assert [str(g).lower() for g in read(admin, user.dn, "memberOf")["memberOf"]] == [group.lower()]
    assert ad.remove_member(group, user.dn) is True
    assert ad.remove_member(group, user.dn) is False
    assert read(admin, group, "member").get("member", []) == []
    # A concurrent change between our read and our write: AD's "already so" answers
    # (entryAlreadyExists / unwillingToPerform on member) count as done after a read-back.
    codes = []

    def by_hand(change):
        def write():
            assert admin.modify(group, {"member": [(change, [user.dn])]}), admin.result
            codes.append(change)

        return write

    assert ad.add_member(group, user.dn, before_write=by_hand(ldap3.MODIFY_ADD)) is False
    assert [str(m).lower() for m in read(admin, group, "member")["member"]] == [user.dn.lower()]
    assert ad.remove_member(group, user.dn, before_write=by_hand(ldap3.MODIFY_DELETE)) is False
    assert read(admin, group, "member").get("member", []) == []
    assert codes == [ldap3.MODIFY_ADD, ldap3.MODIFY_DELETE]


def test_missing_group_is_a_permanent_error(ad, ad_ou):
    ad.create_user("m10045", {"cn": "Ole Berg"}, None)
    user = ad.require_user("m10045")
    with pytest.raises(PermanentDirectoryError):
        ad.add_member(f"CN=no-such-group,{ad_ou}", user.dn)


def test_weak_password_is_a_permanent_error_with_the_directory_message(ad):
    with pytest.raises(PermanentDirectoryError) as info:
        ad.create_user("m10046", {"cn": "Kai Weak"}, "x")
    assert info.value.code == 19


def test_password_over_unencrypted_ldap_is_refused_before_sending(samba_dc, ad_ou):
    kwargs = samba_dc.config_kwargs("starttls")
    kwargs["tls"] = "none"  # plain LDAP on the same port
    backend = ActiveDirectoryBackend(DirectoryConfig(dialect="ad", user_base=ad_ou, **kwargs))
    try:
        with pytest.raises(PermanentDirectoryError, match="LDAPS or StartTLS"):
            backend.create_user("m10047", {"cn": "Plain Text"}, "Sehr-geheim-2026!")
        assert backend.find_user("m10047") is None
    finally:
        backend.close()


def test_injection_in_uid_is_harmless(ad, admin, ad_ou):
    ad.create_user("m10048", {"cn": "Real User"}, None)
    assert ad.find_user("*") is None
    assert ad.find_user("m10048)(|(sAMAccountName=*") is None
    # A comma in a name is escaped in the DN ...
    assert ad.create_user("m10049", {"cn": "Comma, Name"}, None)
    assert ad.find_user("m10049").dn.startswith("CN=Comma\\, Name,")
    # ... and one AD refuses in sAMAccountName fails with AD's own message, nothing created.
    with pytest.raises(PermanentDirectoryError, match="invalid ',' character"):
        ad.create_user("x,OU=evil", {"cn": "Evil"}, None)


def test_unicode_password_encoding():
    assert encode_password("Ä1!") == '"Ä1!"'.encode("utf-16-le")


@pytest.mark.django_db
def test_vpn_order_through_jobs_against_active_directory(
    samba_dc, ad_ou, admin, org, place_order, settings, django_capture_on_commit_callbacks
):
    """The same automated path as on OpenLDAP, with the AD dialect: grant, then revoke."""
    from provisioning import services
    from provisioning.backends import reset_backends
    from provisioning.models import Entitlement
    from requests_app import services as request_services
    from tests.provisioning_support import automated_item, group_action

    use_active_directory(settings, samba_dc, ad_ou)
    try:
        group = make_group(admin, ad_ou, "vpn-users")
        assert admin.add(
            f"CN=Bob,{ad_ou}",
            ["top", "person", "organizationalPerson", "user"],
            {"sAMAccountName": org.bob.personnel_number},
        )
        item = automated_item(org.service_desk, group_action(group))
        entitlements = []
        for _twice in range(2):  # the same item twice: one membership, two holders
            req = place_order(item, org.alice.user, beneficiary=org.bob)
            with django_capture_on_commit_callbacks(execute=True):
                request_services.request_approve(request_id=req.pk, user=org.manager.user)
            req.refresh_from_db()
            assert req.state == "fulfilled", req.resolution_note
            entitlements.append(Entitlement.objects.get(request=req))
        bob_dn = f"CN=Bob,{ad_ou}".lower()
        assert [str(m).lower() for m in read(admin, group, "member")["member"]] == [bob_dn]
        with django_capture_on_commit_callbacks(execute=True):
            services.entitlement_revoke(entitlement_id=entitlements[0].pk, user=None, reason="test")
        assert [str(m).lower() for m in read(admin, group, "member")["member"]] == [bob_dn]
        with django_capture_on_commit_callbacks(execute=True):
            services.entitlement_revoke(entitlement_id=entitlements[1].pk, user=None, reason="test")
        assert read(admin, group, "member").get("member", []) == []
    finally:
        reset_backends()


@pytest.mark.django_db
def test_sync_reads_the_last_sign_in_from_active_directory(ad, admin, samba_dc, ad_ou, settings):
    """AD's replicated lastLogonTimestamp (set at the first sign-in) is the last directory
    sign-in the sync stores; an account never used has none."""
    import datetime

    from django.utils import timezone

    from catalogue.models import Employee
    from provisioning.backends import reset_backends
    from provisioning.sync import sync_people

    password = "Sehr-geheim-2026!"
    ad.create_user("m10077", {"cn": "Lea Vogel", "givenName": "Lea", "sn": "Vogel"}, password)
    ad.create_user("m10078", {"cn": "Ole Kranz", "givenName": "Ole", "sn": "Kranz"}, password)
    before = timezone.now() - datetime.timedelta(minutes=5)
    assert can_bind(samba_dc, ad.require_user("m10077").dn, password)
    use_active_directory(settings, samba_dc, ad_ou)
    try:
        assert sync_people(full=True).succeeded
    finally:
        reset_backends()
    seen = Employee.objects.get(personnel_number="m10077").directory_last_logon
    assert seen is not None and before <= seen <= timezone.now() + datetime.timedelta(minutes=5)
    assert Employee.objects.get(personnel_number="m10078").directory_last_logon is None


def test_coalesced_membership_reads_and_one_modify(ad, admin, ad_ou):
    """provisioning.batch's reads and modify in the AD dialect: who is in, who is out, by
    filters on the members asked about, then many adds and removals in one modify."""
    dns = []
    for index in range(6):
        ad.create_user(f"m2010{index}", {"cn": f"Batch ({index})*"}, None)
        dns.append(ad.require_user(f"m2010{index}").dn)
    assert set(ad.find_user_dns([f"m2010{i}" for i in range(6)] + ["nobody"])) == {
        f"m2010{i}" for i in range(6)
    }
    group = make_group(admin, ad_ou, "batch-users")
    assert admin.modify(group, {"member": [(ldap3.MODIFY_ADD, dns[:2])]}), admin.result
    assert ad.members_present(group, dns) == {dn.lower() for dn in dns[:2]}
    assert ad.members_absent(group, dns) == {dn.lower() for dn in dns[2:]}
    ad.modify_members(group, add=dns[2:], delete=dns[:1])
    assert {str(m).lower() for m in read(admin, group, "member")["member"]} == {
        dn.lower() for dn in dns[1:]
    }
    # An "already so" member fails the whole modify (the batch then runs job by job).
    with pytest.raises(PermanentDirectoryError):
        ad.modify_members(group, add=dns[1:3])


@pytest.mark.django_db
def test_coalesced_jobs_against_active_directory(samba_dc, ad_ou, admin, org, settings):
    from provisioning import services
    from provisioning.backends import reset_backends
    from requests_app.choices import RequestState
    from tests.factories import EmployeeFactory
    from tests.fault_support import seed_group_jobs, seed_requests
    from tests.provisioning_support import automated_item, group_action

    settings.DIRECTORY = {
        **settings.DIRECTORY,
        "dialect": "ad",
        "user_base": ad_ou,
        "group_base": ad_ou,
        **samba_dc.config_kwargs("ldaps"),
    }
    reset_backends()
    try:
        group = make_group(admin, ad_ou, "vpn-batch")
        people = [EmployeeFactory(personnel_number=f"m3010{i}") for i in range(4)]
        for person in people:
            assert admin.add(
                f"CN={person.personnel_number},{ad_ou}",
                ["top", "person", "organizationalPerson", "user"],
                {"sAMAccountName": person.personnel_number},
            )
        item = automated_item(org.service_desk, group_action(group))
        jobs = seed_group_jobs(seed_requests(org, people, [item]), [group], dialect="ad")
        services.job_run(job_id=jobs[0].pk)
        for job in jobs:
            job.refresh_from_db()
            assert job.state == "succeeded", job.log
            job.request.refresh_from_db()
            assert job.request.state == RequestState.FULFILLED
        assert {str(m).lower() for m in read(admin, group, "member")["member"]} == {
            f"CN={p.personnel_number},{ad_ou}".lower() for p in people
        }
    finally:
        reset_backends()
