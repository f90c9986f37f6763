"""The Active Directory dialect's LDAP operations against a real (Samba) DC, through ldap3.

Admin writes go over LDAPS with CA verification, as in production; the ldapi
socket and StartTLS are checked to work as well.
"""

import ssl

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError

GLOBAL_SECURITY_GROUP = "-2147483646"
ENABLED, DISABLED = "512", "514"


def encode_password(password):
    return f'"{password}"'.encode("utf-16-le")


@pytest.fixture
def admin(samba_dc):
    conn = samba_dc.connection(transport="ldaps")
    yield conn
    conn.unbind()


def add_user(conn, ou, name, dns_domain):
    dn = f"CN={name},{ou}"
    assert conn.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {
            "sAMAccountName": name,
            "userPrincipalName": f"{name}@{dns_domain}",
            "userAccountControl": DISABLED,
        },
    ), conn.result
    return dn


def add_group(conn, ou, name):
    dn = f"CN={name},{ou}"
    assert conn.add(
        dn, ["top", "group"], {"sAMAccountName": name, "groupType": GLOBAL_SECURITY_GROUP}
    ), conn.result
    return dn


def set_uac(conn, dn, value):
    assert conn.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [value])]}), conn.result


def bind_result(samba_dc, user, password):
    conn = ldap3.Connection(samba_dc.ldap_server("ldaps"), user=user, password=password)
    conn.bind()
    result = conn.result
    conn.unbind()
    return result


def read(conn, dn, attribute):
    """Values as strings (no schema is loaded, so ldap3 does not convert them)."""
    assert conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute]), conn.result
    return conn.response[0]["attributes"][attribute]


@pytest.fixture
def enabled_user(samba_dc, admin, ad_ou):
    """(dn, upn, password) of an enabled account with a password."""
    dn = add_user(admin, ad_ou, "plain.user", samba_dc.dns_domain)
    password = "Plain-Us3r-Passw0rd"
    assert admin.extend.microsoft.modify_password(dn, password), admin.result
    set_uac(admin, dn, ENABLED)
    return dn, f"plain.user@{samba_dc.dns_domain}", password


@pytest.mark.parametrize("transport", ["ldapi", "ldaps", "starttls"])
def test_admin_binds_and_reads(samba_dc, transport):
    conn = samba_dc.connection(transport=transport)
    try:
        assert "Domain Admins" in str(read(conn, samba_dc.admin_dn, "memberOf"))
    finally:
        conn.unbind()


def test_ldaps_verifies_the_certificate(samba_dc):
    # The system trust store does not know the DC's private CA: the handshake must fail.
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT)
    server = ldap3.Server(samba_dc.ldaps_url, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    with pytest.raises(LDAPSocketOpenError):
        ldap3.Connection(server, user=samba_dc.admin_user, password="x").open()


def test_account_password_enable_disable(samba_dc, admin, ad_ou):
    dn = add_user(admin, ad_ou, "erika.muster", samba_dc.dns_domain)
    upn = f"erika.muster@{samba_dc.dns_domain}"
    password = "Erika-Muster-2024!"
    assert admin.modify(
        dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encode_password(password)])]}
    ), admin.result

    disabled = bind_result(samba_dc, upn, password)
    assert disabled["result"] == 49 and "data 533" in disabled["message"]

    set_uac(admin, dn, ENABLED)
    assert bind_result(samba_dc, upn, password)["result"] == 0
    wrong = bind_result(samba_dc, upn, "Not-The-Passw0rd")
    assert wrong["result"] == 49 and "data 52e" in wrong["message"]

    set_uac(admin, dn, DISABLED)
    assert read(admin, dn, "userAccountControl") == [DISABLED]
    again = bind_result(samba_dc, upn, password)
    assert again["result"] == 49 and "data 533" in again["message"]


def test_password_reset_with_ldap3_extension(samba_dc, admin, enabled_user):
    dn, upn, _ = enabled_user
    assert admin.extend.microsoft.modify_password(dn, "N3w-Reset-Passw0rd"), admin.result
    assert bind_result(samba_dc, upn, "N3w-Reset-Passw0rd")["result"] == 0


def test_weak_password_is_a_constraint_violation(samba_dc, admin, ad_ou):
    dn = add_user(admin, ad_ou, "weak.pw", samba_dc.dns_domain)
    assert not admin.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encode_password("a")])]})
    assert admin.result["result"] == 19


def test_duplicate_sam_account_name(samba_dc, admin, ad_ou):
    add_user(admin, ad_ou, "twice", samba_dc.dns_domain)
    assert not admin.add(
        f"CN=twice-again,{ad_ou}",
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": "twice"},
    )
    assert admin.result["result"] == 68


def test_group_membership(samba_dc, admin, ad_ou):
    user = add_user(admin, ad_ou, "max.member", samba_dc.dns_domain)
    group = add_group(admin, ad_ou, "GG-VPN-Zugang")
    assert read(admin, group, "groupType") == [GLOBAL_SECURITY_GROUP]

    assert admin.modify(group, {"member": [(ldap3.MODIFY_ADD, [user])]}), admin.result
    assert read(admin, user, "memberOf") == [group]
    assert read(admin, group, "member") == [user]

    assert not admin.modify(group, {"member": [(ldap3.MODIFY_ADD, [user])]})
    assert admin.result["result"] == 68  # already a member

    assert admin.modify(group, {"member": [(ldap3.MODIFY_DELETE, [user])]}), admin.result
    assert read(admin, user, "memberOf") == []

    assert not admin.modify(group, {"member": [(ldap3.MODIFY_DELETE, [user])]})
    assert admin.result["result"] == 53  # not a member


def test_group_membership_with_ldap3_extension(samba_dc, admin, ad_ou):
    user = add_user(admin, ad_ou, "ext.member", samba_dc.dns_domain)
    group = add_group(admin, ad_ou, "GG-Netzlaufwerk")
    assert admin.extend.microsoft.add_members_to_groups([user], [group])
    assert read(admin, user, "memberOf") == [group]
    assert admin.extend.microsoft.remove_members_from_groups([user], [group])
    assert read(admin, user, "memberOf") == []


def test_plain_user_has_insufficient_rights(samba_dc, admin, ad_ou, enabled_user):
    dn, upn, password = enabled_user
    group = add_group(admin, ad_ou, "GG-Admins")
    conn = samba_dc.connection(upn, password, transport="ldaps")
    try:
        assert not conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]})
        assert conn.result["result"] == 50
    finally:
        conn.unbind()
