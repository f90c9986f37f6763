"""The demo organisation as LDIF for the private slapd (run after ``seed_demo``).

Reads the Django database and writes, below ``suffix``:

* ``ou=departments``: one organizationalUnit per department (``ou`` = code,
  ``description`` = name, ``businessCategory`` = cost centre code, ``seeAlso`` =
  parent department);
* ``ou=people``: one inetOrgPerson per active employee except superusers (``uid`` = personnel
  number, ``employeeNumber``, ``departmentNumber`` = department code, ``manager``
  = the line manager's DN, ``businessCategory`` = own cost centre if it differs
  from the department's, password "demo");
* ``ou=people`` also holds one joiner who is not in the database yet (``JOINER``): the
  first directory sync creates her with her start date (``itportalStartDate``) and offers
  her line manager, Thomas Becker, the joiner bundle;
* ``ou=groups``: groupOfNames for the demo's directory items (``vpn-users``,
  software licences, ``GG_*`` permission groups, the portal role groups) and
  ``ou=fileshares,ou=groups`` with one group per file share, owned by the
  department head.

Every value placed in a DN is escaped; values are base64-encoded where LDIF needs it.
"""

from __future__ import annotations

from catalogue.models import Department, Employee
from devtools.devdirectory import DEFAULT_SUFFIX, ldif_entry, rdn_value, ssha
from itportal import roles

DEMO_PASSWORD = "demo"  # noqa: S105 - the documented demo password, demo data only
FILESHARE_OU = "fileshares"

# (cn, description) of plain groups; they start with the admin DN as their only member.
GROUPS = (
    ("vpn-users", "VPN-Zugang: Fernzugriff auf das Verwaltungsnetz"),
    ("gg-visio", "Lizenz Microsoft Visio"),
    ("gg-acrobat-pro", "Lizenz Adobe Acrobat Pro"),
    ("gg-ms-project", "Lizenz Microsoft Project"),
    ("gg-autocad-lt", "Lizenz AutoCAD LT"),
    ("gg-gis", "Zugang Geoinformationssystem (GIS)"),
    ("GG_Amt33_Meldewesen_RW", "Fachverfahren Einwohnermeldewesen, Lesen und Schreiben"),
    ("GG_Amt20_Finanzwesen_RO", "Fachverfahren Finanzwesen, nur Lesen"),
)

# (cn, Django role group) whose members are the employees holding the role; they can
# serve as DIRECTORY_IT_ADMIN_GROUP / DIRECTORY_CONTROLLING_GROUP for directory logins.
ROLE_GROUPS = (
    ("itportal-admins", roles.IT_ADMIN),
    ("itportal-controlling", roles.CONTROLLING),
)

# (cn, department code, share path) of the file-share groups; owner = department head.
FILE_SHARES = (
    ("fs-hauptamt-allgemein", "10", r"\\fs01\amt10\Allgemein"),
    ("fs-hauptamt-personal", "10", r"\\fs01\amt10\Personal"),
    ("fs-it-allgemein", "18", r"\\fs01\amt18\Allgemein"),
    ("fs-kaemmerei-haushalt", "20", r"\\fs01\amt20\Haushalt"),
    ("fs-kaemmerei-stadtkasse", "20", r"\\fs01\amt20\Stadtkasse"),
    ("fs-ordnungsamt-gewerbe", "32", r"\\fs01\amt32\Gewerbe"),
    ("fs-buergeramt-meldewesen", "33", r"\\fs01\amt33\Meldewesen"),
    ("fs-standesamt-allgemein", "34", r"\\fs01\amt34\Allgemein"),
    ("fs-sozialamt-allgemein", "50", r"\\fs01\amt50\Allgemein"),
    ("fs-jugendamt-asd", "51", r"\\fs01\amt51\ASD"),
    ("fs-stadtplanung-bauleitplanung", "61", r"\\fs01\amt61\Bauleitplanung"),
    ("fs-bauordnung-baugenehmigungen", "63", r"\\fs01\amt63\Baugenehmigungen"),
)


# The demo's joiner: (uid, first name, last name, department, manager's personnel number).
# Her first working day is ten working days after seeding.
JOINER = ("m10099", "Lena", "Hoffmann", "33", "m10017")


class DemoTree:
    """DNs below one suffix, every value escaped."""

    def __init__(self, suffix: str = DEFAULT_SUFFIX):
        self.suffix = suffix
        self.admin = f"cn=admin,{suffix}"
        self.people = f"ou=people,{suffix}"
        self.groups = f"ou=groups,{suffix}"
        self.departments = f"ou=departments,{suffix}"
        self.fileshares = f"ou={FILESHARE_OU},{self.groups}"

    def person(self, personnel_number: str) -> str:
        return f"uid={rdn_value(personnel_number)},{self.people}"

    def department(self, code: str) -> str:
        return f"ou={rdn_value(code)},{self.departments}"

    def group(self, cn: str, base: str | None = None) -> str:
        return f"cn={rdn_value(cn)},{base or self.groups}"


def department_entry(tree: DemoTree, department: Department) -> str:
    parent = tree.department(department.parent.code) if department.parent_id else None
    return ldif_entry(
        tree.department(department.code),
        {
            "objectClass": ["top", "organizationalUnit"],
            "ou": department.code,
            "description": department.name,
            "businessCategory": department.cost_centre.code,
            "seeAlso": parent,
        },
    )


def person_entry(tree: DemoTree, employee: Employee, password_hash: str) -> str:
    user = employee.user
    uids = [employee.personnel_number]
    # Demo logins (e.g. "mitarbeiterin") differ from their personnel number; a second
    # uid lets them log in with the directory password under their portal name too.
    if user.username and user.username != employee.personnel_number:
        uids.append(user.username)
    manager = employee.manager
    own_cost_centre = employee.cost_centre
    if own_cost_centre and own_cost_centre.pk == employee.department.cost_centre_id:
        own_cost_centre = None
    return ldif_entry(
        tree.person(employee.personnel_number),
        {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": uids,
            "cn": employee.display_name,
            "sn": user.last_name or employee.personnel_number,
            "givenName": user.first_name,
            "displayName": employee.display_name,
            "mail": user.email,
            "title": employee.job_title,
            "employeeNumber": employee.personnel_number,
            "departmentNumber": employee.department.code,
            "manager": tree.person(manager.personnel_number)
            if manager and manager.is_active
            else None,
            "businessCategory": own_cost_centre.code if own_cost_centre else None,
            "userPassword": password_hash,
        },
    )


def joiner_entries(tree: DemoTree, password: str) -> list[str]:
    """The joiner, if the database does not know her yet (a second seed after the sync
    leaves her as the sync wrote her) and her manager is there."""
    from django.utils import timezone

    from itportal.workdays import add_working_days

    uid, first, last, department, manager = JOINER
    known = set(
        Employee.objects.filter(personnel_number__in=[uid, manager]).values_list(
            "personnel_number", flat=True
        )
    )
    if uid in known or manager not in known:  # synced already, or not the demo city
        return []
    start = add_working_days(timezone.localdate(), 10)
    return [
        ldif_entry(
            tree.person(uid),
            {
                "objectClass": [
                    "top", "person", "organizationalPerson", "inetOrgPerson", "itportalPerson"
                ],
                "uid": uid,
                "cn": f"{first} {last}",
                "sn": last,
                "givenName": first,
                "displayName": f"{first} {last}",
                "mail": f"{first.lower()}.{last.lower()}@musterstadt.example",
                "title": "Sachbearbeiterin Meldewesen",
                "employeeNumber": uid,
                "departmentNumber": department,
                "manager": tree.person(manager),
                "itportalStartDate": start.strftime("%Y%m%d000000Z"),
                "userPassword": ssha(password),
            },
        )
    ]  # fmt: skip


def group_entry(tree: DemoTree, dn: str, cn: str, description: str, members, owner=None) -> str:
    return ldif_entry(
        dn,
        {
            "objectClass": ["top", "groupOfNames"],
            "cn": cn,
            "description": description,
            "owner": owner,
            # groupOfNames needs a member: the admin DN stands in for "nobody yet".
            "member": sorted(members) or [tree.admin],
        },
    )


def build_demo_ldif(suffix: str = DEFAULT_SUFFIX, *, password: str = DEMO_PASSWORD) -> str:
    """LDIF content records (adds) for the departments, people and groups in the database.

    The base entries (suffix, ou=people, ou=groups, ou=departments) are the server's;
    ``ou=fileshares,ou=groups`` is created here.
    """
    tree = DemoTree(suffix)
    records: list[str] = []
    departments = list(Department.objects.select_related("parent", "cost_centre", "head"))
    records += [department_entry(tree, department) for department in departments]

    # Leavers are not in the directory: only active employees are exported. Superusers
    # are local break-glass accounts and have no directory entry either.
    employees = list(
        Employee.objects.active()
        .filter(user__is_superuser=False)
        .select_related("user", "department", "cost_centre", "manager")
        .order_by("personnel_number")
    )
    records += [person_entry(tree, employee, ssha(password)) for employee in employees]
    exported = {employee.pk for employee in employees}
    records += joiner_entries(tree, password)

    for cn, description in GROUPS:
        records.append(group_entry(tree, tree.group(cn), cn, description, []))
    for cn, role in ROLE_GROUPS:
        holders = Employee.objects.active().filter(user__groups__name=role)
        members = [
            tree.person(number) for number in holders.values_list("personnel_number", flat=True)
        ]
        records.append(group_entry(tree, tree.group(cn), cn, f"Portal-Rolle {role}", members))

    records.append(
        ldif_entry(
            tree.fileshares,
            {
                "objectClass": ["top", "organizationalUnit"],
                "ou": FILESHARE_OU,
                "description": "Berechtigungsgruppen der Gruppenlaufwerke",
            },
        )
    )
    by_code = {department.code: department for department in departments}
    for cn, code, path in FILE_SHARES:
        department = by_code.get(code)
        head = department.head if department else None
        owner = tree.person(head.personnel_number) if head and head.pk in exported else None
        records.append(
            group_entry(
                tree,
                tree.group(cn, tree.fileshares),
                cn,
                path,
                [owner] if owner else [],
                owner=owner,
            )
        )
    return "\n".join(records)
