"""The private OpenLDAP slapd (devtools/devdirectory.py) and the demo directory export.

Everything written through our code is read back with the real ``ldapsearch`` binary.
"""

import socket
import time

import ldap3
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from catalogue.models import Department, Employee
from devtools.demo_directory import DemoTree, build_demo_ldif, person_entry
from devtools.devdirectory import (
    PrivateSlapd,
    SlapdError,
    filter_value,
    normalize_dn,
    parse_ldif,
    rdn_value,
    ssha,
)
from itportal import roles
from tests.factories import DepartmentFactory, EmployeeFactory, UserFactory

INSUFFICIENT_ACCESS = 50
PASSWORD = "pw-1"
INJECTION = "x*)(uid=*),\\y+z"  # filter metacharacters, a comma, a backslash, a plus


def service(directory):
    return directory.connection(directory.bind_dn, directory.bind_password)


def add_person(conn, directory, uid, password=PASSWORD):
    dn = directory.user_dn(uid)
    assert conn.add(
        dn, ["inetOrgPerson"], {"uid": uid, "cn": uid, "sn": uid, "userPassword": password}
    ), conn.result
    return dn


def entries(directory, *args):
    return parse_ldif(directory.ldapsearch(*args))


def port_open(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- the server -------------------------------------------------------------------------


def test_starts_fast_restarts_on_its_port_and_stops(tmp_path):
    server = PrivateSlapd(tmp_path / "slapd", dbnosync=True)
    started = time.monotonic()
    with server:
        elapsed = time.monotonic() - started
        assert server.running and port_open(server.port)
        port, pid = server.port, server.pid
        assert elapsed < 2, server.timings  # about 0.05 s here; generous for loaded CI
        assert port != 389
        dns = [dn for dn, _ in entries(server, "-s", "one", "1.1")]
        for ou in ("people", "groups", "departments", "services", "policies"):
            assert f"ou={ou},{server.suffix}" in dns

        conn = server.connection()
        add_person(conn, server, "kept")
        conn.unbind()
        server.stop()
        assert not server.running and not port_open(port)
        assert not server.pid_file.exists()

        server.start()  # same port, same data
        assert server.port == port and server.pid != pid
        assert entries(server, "(uid=kept)", "uid")[0][1]["uid"] == ["kept"]
    assert not server.running and not port_open(port)
    # Secrets are private and the config holds no clear-text password.
    assert server.admin_password_file.stat().st_mode & 0o777 == 0o600
    assert server.admin_password not in server.conf_path.read_text()


def test_fixture_server_is_private(directory):
    assert directory.url.startswith("ldap://127.0.0.1:")
    assert directory.port != 389
    assert "dbnosync" in directory.conf_path.read_text().splitlines()


def test_reset_empties_people_groups_and_departments(directory):
    conn = directory.connection()
    person = add_person(conn, directory, "gone")
    assert conn.add(f"ou=sub,{directory.group_base}", ["organizationalUnit"], {"ou": "sub"})
    assert conn.add(directory.group_dn("g", "sub"), ["groupOfNames"], {"member": [person]})
    conn.unbind()
    directory.reset()
    assert entries(directory, "-b", directory.people_base, "1.1") == [(directory.people_base, {})]
    assert entries(directory, "-b", directory.group_base, "1.1") == [(directory.group_base, {})]
    # The service account survives.
    service(directory).unbind()


# --- least privilege -----------------------------------------------------------------------


def test_service_account_writes_people_and_groups(directory):
    conn = service(directory)
    person = add_person(conn, directory, "erika")
    group = directory.group_dn("vpn-users")
    assert conn.add(group, ["groupOfNames"], {"cn": "vpn-users", "member": [directory.bind_dn]})
    assert conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [person])]}), conn.result
    assert conn.modify(person, {"title": [(ldap3.MODIFY_REPLACE, ["Sachbearbeiterin"])]})
    assert conn.modify(person, {"userPassword": [(ldap3.MODIFY_REPLACE, ["new-pw"])]})
    conn.unbind()
    found = entries(directory, "-b", group, "member")
    assert person in found[0][1]["member"]
    directory.connection(person, "new-pw").unbind()  # the person binds with it


def test_service_account_cannot_touch_the_rest(directory):
    conn = service(directory)
    person = add_person(conn, directory, "erika")
    denied = [
        conn.modify(directory.admin_dn, {"description": [(ldap3.MODIFY_REPLACE, ["owned"])]}),
        conn.modify(directory.people_base, {"description": [(ldap3.MODIFY_REPLACE, ["x"])]}),
        conn.delete(directory.group_base),
        conn.add(f"cn=evil,ou=services,{directory.suffix}", ["applicationProcess"], {"cn": "e"}),
        conn.add(f"ou=evil,{directory.suffix}", ["organizationalUnit"], {"ou": "evil"}),
        conn.modify(directory.bind_dn, {"userPassword": [(ldap3.MODIFY_REPLACE, ["x"])]}),
    ]
    assert denied == [False] * len(denied)
    assert conn.result["result"] == INSUFFICIENT_ACCESS
    # It may set passwords but never read a hash, not even its own.
    for dn in (person, directory.bind_dn, directory.admin_dn):
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        assert not conn.response[0]["attributes"].get("userPassword")
    # It reads the rest of the tree.
    assert conn.search(directory.suffix, "(ou=departments)", attributes=["ou"])
    conn.unbind()
    admin_entry = entries(directory, "-b", directory.admin_dn, "-s", "base", "description")
    assert admin_entry[0][1]["description"] == ["Directory administrator (rootdn)"]


def test_anonymous_may_only_bind(directory):
    conn = service(directory)
    person = add_person(conn, directory, "erika")
    conn.unbind()
    # The ACLs hide even the suffix: "no such object", nothing returned.
    assert directory.ldapsearch("(objectClass=*)", bind=None, check=False) == ""
    directory.connection(person, PASSWORD).unbind()
    with pytest.raises(SlapdError, match="invalidCredentials"):
        directory.connection(person, "wrong")


def test_locked_account_cannot_bind(directory):
    """pwdAccountLockedTime (the OpenLDAP dialect's disable) is enforced and the service sets it."""
    conn = service(directory)
    person = add_person(conn, directory, "erika")
    lock = {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]}
    assert conn.modify(person, lock), conn.result
    with pytest.raises(SlapdError, match="invalidCredentials"):
        directory.connection(person, PASSWORD)
    assert conn.modify(person, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [])]})
    conn.unbind()
    directory.connection(person, PASSWORD).unbind()


# --- overlays -------------------------------------------------------------------------------


def test_member_of_and_referential_integrity(directory):
    conn = service(directory)
    anna, jonas = add_person(conn, directory, "anna"), add_person(conn, directory, "jonas")
    group = directory.group_dn("gg-visio")
    assert conn.add(group, ["groupOfNames"], {"cn": "gg-visio", "member": [anna, jonas]})

    def member_of(uid):
        found = entries(directory, f"(uid={uid})", "memberOf")
        return found[0][1].get("memberOf", [])

    assert member_of("anna") == [group]
    assert conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [anna])]})
    assert member_of("anna") == []
    assert member_of("jonas") == [group]
    # Deleting the last member leaves the admin DN (groupOfNames needs one).
    assert conn.delete(jonas), conn.result
    conn.unbind()
    assert entries(directory, "-b", group, "member")[0][1]["member"] == [directory.admin_dn]


def test_ldapsearch_reads_back_what_ldap3_wrote(directory):
    conn = service(directory)
    dn = directory.user_dn("m1")
    assert conn.add(dn, ["inetOrgPerson"], {"uid": "m1", "cn": "Jörg Müller", "sn": "Müller"})
    conn.unbind()
    raw = directory.ldapsearch("(uid=m1)", "cn", "sn")
    assert "sn:: " in raw  # non-ASCII comes base64-encoded ...
    assert parse_ldif(raw) == [(dn, {"cn": ["Jörg Müller"], "sn": ["Müller"]})]  # ... and back
    assert directory.ldapsearch("(uid=nobody)") == ""


# --- escaping ----------------------------------------------------------------------------


def test_escaping_helpers():
    assert normalize_dn("UID=a\\2Cb\\3D,OU=people") == normalize_dn("uid=a\\,b\\=,ou=people")
    assert normalize_dn("uid=J\\C3\\B6rg,dc=x") == "uid=Jörg,dc=x"
    assert rdn_value("a,b") == "a\\,b"
    assert rdn_value("a\x00b") == "a\\00b"  # ldap3's escape_rdn leaves a raw NUL here
    assert rdn_value(" x ") == "\\ x\\ "
    assert filter_value("*)(uid=*)") == "\\2a\\29\\28uid=\\2a\\29"
    assert filter_value("a\\b\x00") == "a\\5cb\\00"
    with pytest.raises(ValueError):
        rdn_value("")
    assert ssha("demo").startswith("{SSHA}") and ssha("demo") != ssha("demo")


def test_injection_values_in_dns_and_filters(directory):
    conn = service(directory)
    evil = add_person(conn, directory, INJECTION)
    add_person(conn, directory, "bystander")
    with_nul = add_person(conn, directory, "nul\x00byte")
    conn.unbind()
    # Each value names exactly its own entry; "*" and ")(" do not widen the search.
    found = entries(directory, f"(uid={filter_value(INJECTION)})", "1.1")
    assert [normalize_dn(dn) for dn, _ in found] == [normalize_dn(evil)]
    assert found[0][0] != evil  # slapd spells the DN its own way: uid=x*)(uid\3D*)\2C...
    assert entries(directory, f"(uid={filter_value('*')})", "1.1") == []
    assert [dn for dn, _ in entries(directory, f"(uid={filter_value('nul' + chr(0) + 'byte')})")]
    assert with_nul.startswith("uid=nul\\00byte,")
    people = entries(directory, "-b", directory.people_base, "-s", "one", "uid")
    assert len(people) == 3


# --- the demo directory ------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_ldif_loads_the_seeded_city(directory):
    call_command("seed_demo", verbosity=0)
    ldif = build_demo_ldif(directory.suffix)
    directory.load_ldif(ldif)
    with pytest.raises(SlapdError, match="Already exists"):
        directory.load_ldif(ldif)
    directory.load_ldif(ldif, skip_existing=True)  # seeding twice is harmless

    people = entries(directory, "-b", directory.people_base, "(objectClass=inetOrgPerson)", "uid")
    # Everyone active but the break-glass superuser, which is a local account only, and the
    # joiner whom only the directory knows yet (the first sync brings her in).
    assert Employee.objects.active().filter(user__is_superuser=False).count() == 199
    assert len(people) == 200
    joiner = entries(directory, "(uid=m10099)", "itportalStartDate", "manager")
    assert joiner[0][1]["manager"] == [directory.user_dn("m10017")]
    assert len(joiner[0][1]["itportalStartDate"][0]) == len("20270104000000Z")
    assert entries(directory, "(|(uid=admin)(uid=m10001))", "1.1") == []

    anna = entries(directory, "(uid=mitarbeiterin)", "manager", "departmentNumber", "memberOf")
    assert anna[0][0] == directory.user_dn("m10042")  # uid=personnel number, login as 2nd uid
    assert anna[0][1]["manager"] == [directory.user_dn("m10017")]
    assert anna[0][1]["departmentNumber"] == ["33"]
    directory.connection(anna[0][0], "demo").unbind()

    vpn = entries(directory, "-b", directory.group_dn("vpn-users"), "-s", "base", "cn")
    assert vpn == [(directory.group_dn("vpn-users"), {"cn": ["vpn-users"]})]
    share = directory.group_dn("fs-buergeramt-meldewesen", "fileshares")
    found = entries(directory, "-b", share, "-s", "base", "owner", "member", "description")
    head = Department.objects.get(code="33").head
    assert found[0][1]["owner"] == [directory.user_dn(head.personnel_number)]
    assert found[0][1]["description"] == ["\\\\fs01\\amt33\\Meldewesen"]
    admins = entries(directory, "-b", directory.group_dn("itportal-admins"), "member")
    assert directory.user_dn("m10007") in admins[0][1]["member"]
    departments = entries(directory, "-b", directory.department_base, "-s", "one", "ou")
    assert {attrs["ou"][0] for _, attrs in departments} >= {"D1", "10", "33"}


@pytest.mark.django_db
def test_demo_ldif_escapes_what_it_puts_in_dns(directory):
    department = DepartmentFactory(code="OE,1+2")
    head = EmployeeFactory(personnel_number="boss", department=department)
    EmployeeFactory(
        personnel_number=INJECTION,
        department=department,
        manager=head,
        user=UserFactory(username="evil", first_name="Eve", last_name="O'Brien, \\ *)("),
    )
    directory.load_ldif(build_demo_ldif(directory.suffix))

    found = entries(directory, f"(employeeNumber={filter_value(INJECTION)})", "manager", "sn")
    assert len(found) == 1
    dn, attrs = found[0]
    assert normalize_dn(dn) == normalize_dn(directory.user_dn(INJECTION))
    assert attrs == {"manager": [directory.user_dn("boss")], "sn": ["O'Brien, \\ *)("]}
    assert entries(directory, f"(departmentNumber={filter_value('OE,1+2')})", "1.1")
    assert entries(directory, "-b", f"ou={rdn_value('OE,1+2')},{directory.department_base}")
    # Nothing but the two people landed in ou=people.
    assert len(entries(directory, "-b", directory.people_base, "-s", "one", "1.1")) == 2


def test_person_entry_escapes_a_nul(directory):
    """A NUL cannot be stored in PostgreSQL, but the LDIF writer must still cope."""
    department = DepartmentFactory.build(code="OE1")
    employee = Employee(
        personnel_number="a\x00b",
        department=department,
        user=UserFactory.build(username="a\x00b", first_name="A", last_name="B\x00"),
    )
    tree = DemoTree(directory.suffix)
    ldif = person_entry(tree, employee, ssha("demo"))
    assert "\x00" not in ldif  # base64 where LDIF needs it
    directory.load_ldif(ldif)
    found = entries(directory, f"(uid={filter_value('a' + chr(0) + 'b')})", "sn")
    assert [(normalize_dn(dn), attrs) for dn, attrs in found] == [
        (normalize_dn(directory.user_dn("a\x00b")), {"sn": ["B\x00"]})
    ]


# --- the management command --------------------------------------------------------------


@pytest.mark.django_db
def test_directory_server_command(tmp_path, org, capsys):
    Group.objects.get(name=roles.IT_ADMIN)  # the org fixture's admins hold the role
    root = str(tmp_path / "demo-slapd")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    args = ["--root", root, "--port", port]
    try:
        call_command("directory_server", "start", *args)
        out = capsys.readouterr().out
        assert "started" in out and f"ldap://127.0.0.1:{port}" in out
        assert "cn=itportal,ou=services" in out and "service.secret" in out
        server = PrivateSlapd(root)
        pid = server.pid
        assert pid is not None

        call_command("directory_server", "start", *args)  # running: a no-op
        assert "already running" in capsys.readouterr().out
        assert server.pid == pid

        call_command("directory_server", "seed", *args)
        call_command("directory_server", "seed", *args)  # twice: no error
        assert capsys.readouterr().out.count("directory seeded: 7 people") == 2

        call_command("directory_server", "status", *args)
        assert "is running" in capsys.readouterr().out
        call_command("directory_server", "env", *args)
        env = capsys.readouterr().out
        assert f"export DIRECTORY_URL=ldap://127.0.0.1:{port}" in env
        server.start()  # adopt the running daemon
        member = entries(server, "-b", server.group_dn("itportal-admins"), "member")
        assert server.user_dn(org.admin.personnel_number) in member[0][1]["member"]
    finally:
        call_command("directory_server", "stop", *args)
    assert "stopped" in capsys.readouterr().out
    assert not PrivateSlapd(root).running
    with pytest.raises(SystemExit) as exit_info:
        call_command("directory_server", "status", *args)
    assert exit_info.value.code == 3


# --- the portal's OpenLDAP backend has the rights it needs ---------------------------------


def test_openldap_backend_works_with_the_service_account(directory_settings):
    from provisioning.backends import get_backend

    directory = directory_settings
    backend = get_backend()
    assert backend.config.bind_dn == directory.bind_dn
    assert backend.create_user("m4711", {"cn": "Erika Muster", "sn": "Muster"}, PASSWORD)
    user = backend.require_user("m4711")
    assert normalize_dn(user.dn) == normalize_dn(directory.user_dn("m4711"))

    group = directory.group_dn("vpn-users")
    conn = directory.connection()
    assert conn.add(group, ["groupOfNames"], {"cn": "vpn-users", "member": [directory.admin_dn]})
    conn.unbind()
    assert backend.add_member(group, user.dn)
    assert not backend.add_member(group, user.dn)  # twice: same state
    member_of = entries(directory, "(uid=m4711)", "memberOf")[0][1]["memberOf"]
    assert member_of == [group]

    assert backend.set_enabled(user.dn, False)
    with pytest.raises(SlapdError, match="invalidCredentials"):
        directory.connection(user.dn, PASSWORD)
    assert backend.set_enabled(user.dn, True)
    directory.connection(user.dn, PASSWORD).unbind()
    assert backend.set_attributes(user.dn, {"title": "Sachbearbeiterin"})
    assert backend.remove_member(group, user.dn)
