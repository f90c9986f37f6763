"""The demo data: complete, consistent, idempotent, and usable for the demo's main path."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from catalogue.choices import ApproverKind, FieldType
from catalogue.models import (
    ApprovalPolicyStep,
    Bundle,
    CatalogueItem,
    Category,
    CostCentre,
    Department,
    Employee,
    FormField,
)
from itportal import roles
from requests_app import services
from requests_app.choices import ApprovalStatus, RequestState

pytestmark = pytest.mark.django_db

SERVICE_OWNER_GROUPS = {
    "IT-Service Desk",
    "IT-Netzwerk",
    "IT-Arbeitsplatz",
    "IT-Fachverfahren",
    "IT-Sicherheit",
    "Lizenzmanagement",
}


def counts() -> dict[str, int]:
    User = get_user_model()
    return {
        model.__name__: model.objects.count()
        for model in (
            User,
            User.groups.through,
            Group,
            CostCentre,
            Department,
            Employee,
            Category,
            CatalogueItem,
            FormField,
            ApprovalPolicyStep,
        )
    }


@pytest.fixture
def seeded():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = counts()
    call_command("seed_demo", stdout=out)
    return first, out.getvalue()


def test_rerun_changes_nothing(seeded):
    first, output = seeded
    assert counts() == first
    assert "employees: " in output
    assert set(CatalogueItem.objects.values_list("version", flat=True)) == {1}


def test_verbosity_zero_is_silent():
    out = StringIO()
    call_command("seed_demo", verbosity=0, stdout=out)
    assert out.getvalue() == ""
    assert Employee.objects.count() >= 190


def test_organisation(seeded):
    departments = Department.objects.select_related("cost_centre", "head")
    assert departments.count() >= 10
    for department in departments:
        assert department.cost_centre_id is not None
        assert department.head is not None
        assert department.head.department_id == department.pk
        assert department.cost_centre.owner_id == department.head_id
    assert not CostCentre.objects.filter(owner=None).exists()

    employees = Employee.objects.select_related("user")
    assert employees.count() >= 190
    numbers = [e.personnel_number for e in employees]
    assert all(re.fullmatch(r"m\d{5}", number) for number in numbers)
    emails = [e.user.email for e in employees]
    assert len(set(emails)) == len(emails)
    assert all(email.endswith("@musterstadt.example") for email in emails)
    assert employees.get(personnel_number="m10042").user.email == "anna.schmidt@musterstadt.example"


def test_manager_chain_reaches_the_top_without_cycles(seeded):
    managers = dict(Employee.objects.values_list("pk", "manager_id"))
    tops = [pk for pk, manager in managers.items() if manager is None]
    assert len(tops) == 1
    top = Employee.objects.get(pk=tops[0])
    assert top.job_title.startswith("Oberbürgermeister")
    for pk in managers:
        seen = set()
        while managers[pk] is not None:
            assert pk not in seen, "cycle in the manager chain"
            seen.add(pk)
            pk = managers[pk]
        assert pk == top.pk


def test_demo_logins(seeded):
    User = get_user_model()

    def login(username):
        user = User.objects.select_related("employee__manager__user").get(username=username)
        assert user.check_password("demo")
        assert user.employee.is_active
        return user, set(user.groups.values_list("name", flat=True))

    anna, groups = login("mitarbeiterin")
    assert (anna.first_name, anna.last_name) == ("Anna", "Schmidt")
    assert anna.employee.department.name == "Bürgeramt"
    assert groups == set()
    boss, _groups = login("vorgesetzter")
    assert (boss.first_name, boss.last_name) == ("Thomas", "Becker")
    assert anna.employee.manager.user == boss
    colleague, _groups = login("kollege")
    assert (colleague.first_name, colleague.last_name) == ("Jonas", "Wagner")
    assert colleague.employee.manager_id == anna.employee.manager_id

    itadmin, groups = login("itadmin")
    assert groups >= {roles.IT_ADMIN, *SERVICE_OWNER_GROUPS}
    assert itadmin.is_staff and not itadmin.is_superuser
    for model in ("category", "catalogueitem", "formfield", "approvalpolicystep"):
        for action in ("add", "change", "delete", "view"):
            assert itadmin.has_perm(f"catalogue.{action}_{model}")
    for model in ("costcentre", "department", "employee"):
        assert itadmin.has_perm(f"catalogue.change_{model}")

    controlling, groups = login("controlling")
    assert roles.CONTROLLING in groups and roles.IT_ADMIN not in groups
    assert not controlling.is_staff

    admin, _groups = login("admin")
    assert admin.is_superuser and admin.is_staff

    # Every other person can log in with the same password too.
    hashes = set(User.objects.values_list("password", flat=True))
    assert len(hashes) == 1


def test_catalogue(seeded):
    active = CatalogueItem.objects.active()
    assert active.count() >= 30
    assert active.values("category").distinct().count() >= 6
    assert Category.objects.count() >= 8
    # Directory groups and their owners need the directory: seed_demo_provisioning adds them.
    used = set(FormField.objects.values_list("field_type", flat=True))
    assert used == set(FieldType.values) - {FieldType.DIRECTORY_GROUP}
    kinds = set(ApprovalPolicyStep.objects.values_list("approver_kind", flat=True))
    assert kinds == set(ApproverKind.values) - {ApproverKind.GROUP_OWNER}
    assert CatalogueItem.objects.filter(approval_steps=None).exists()
    assert (
        set(CatalogueItem.objects.values_list("service_owner__name", flat=True))
        <= SERVICE_OWNER_GROUPS
    )

    ewo = CatalogueItem.objects.get(slug="zugang-einwohnermeldewesen")
    assert ewo.audience == "restricted"
    assert set(ewo.allowed_departments.values_list("name", flat=True)) == {
        "Bürgeramt",
        "Ordnungsamt",
    }

    share = CatalogueItem.objects.get(slug="zugriff-netzlaufwerk")
    step = share.approval_steps.get()
    assert step.approver_kind == ApproverKind.PERSON_FIELD
    assert share.form_fields.get(key=step.person_field_key).field_type == FieldType.PERSON

    # The data passes the same validation as the admin forms.
    for obj in (*CatalogueItem.objects.all(), *FormField.objects.all()):
        obj.full_clean()
    for step in ApprovalPolicyStep.objects.select_related("item"):
        step.full_clean()


def test_vpn_order_goes_to_the_line_manager(seeded):
    vpn = CatalogueItem.objects.get(slug="vpn-zugang")
    steps = list(vpn.approval_steps.order_by("position"))
    # One decision, then the directory does the rest (the demo's automated path).
    assert [s.approver_kind for s in steps] == [ApproverKind.LINE_MANAGER]
    assert vpn.fulfilment_kind == "automated"

    anna = Employee.objects.get(user__username="mitarbeiterin")
    request = services.request_create(
        requester=anna.user,
        item=vpn,
        item_version=vpn.version,
        beneficiary=anna,
        cost_centre=anna.effective_cost_centre,
        answers={
            "anlass": "Mobiles Arbeiten / Homeoffice",
            "geraet": "Dienstnotebook",
            "beginn": "2025-03-01",
            "dienstvereinbarung": True,
        },
    )
    assert request.state == RequestState.AWAITING_APPROVAL
    first = request.approvals.get(position=1)
    assert first.status == ApprovalStatus.PENDING
    assert first.approver.username == "vorgesetzter"
    assert first.approver.get_full_name() == "Thomas Becker"


def test_the_joiner_bundle(seeded):
    bundle = Bundle.objects.get(slug="neue-mitarbeiterin")
    assert bundle.name == "Neue Mitarbeiterin / neuer Mitarbeiter"
    entries = [(e.item.slug, e.selected) for e in bundle.entries.order_by("position")]
    assert entries == [
        ("benutzerkonto-anlegen", True),
        ("notebook", True),
        ("headset", True),
        ("vpn-zugang", False),
        ("diensthandy", False),
    ]
    bundle.full_clean()
