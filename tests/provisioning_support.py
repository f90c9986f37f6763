"""Helpers for provisioning tests against the private slapd: people, groups, read-back."""

import subprocess

import ldap3

from catalogue.choices import ApproverKind, FulfilmentKind
from provisioning.choices import ActionKind
from provisioning.models import ProvisioningAction
from tests.factories import ApprovalPolicyStepFactory, CatalogueItemFactory


def add_person(directory, employee, **extra) -> str:
    """The directory entry of a portal employee, uid = personnel number."""
    user = employee.user
    dn = directory.user_dn(employee.personnel_number)
    conn = directory.connection()
    try:
        attributes = {
            "uid": employee.personnel_number,
            "cn": user.get_full_name() or employee.personnel_number,
            "sn": user.last_name or employee.personnel_number,
            "givenName": user.first_name or employee.personnel_number,
            "userPassword": "demo-Pass-1",
            **extra,
        }
        assert conn.add(dn, ["inetOrgPerson"], attributes), conn.result
    finally:
        conn.unbind()
    return dn


def add_group(directory, cn, *ous) -> str:
    dn = directory.group_dn(cn, *ous)
    conn = directory.connection()
    try:
        for index in range(len(ous), 0, -1):
            parent = directory.group_dn("x", *ous[index - 1 :]).split(",", 1)[1]
            conn.add(parent, ["organizationalUnit"], {"ou": ous[index - 1]})
        # groupOfNames needs a member: the service account, as in the demo.
        assert conn.add(dn, ["groupOfNames"], {"cn": cn, "member": [directory.bind_dn]}), (
            conn.result
        )
    finally:
        conn.unbind()
    return dn


def members(directory, group_dn) -> set[str]:
    """Read the group back with the real ldapsearch binary, not our code."""
    out = directory.ldapsearch("-b", group_dn, "-s", "base", "(objectClass=*)", "member")
    return {
        line.split(": ", 1)[1].lower() for line in out.splitlines() if line.startswith("member: ")
    }


def attribute(directory, dn, name) -> list[str]:
    out = directory.ldapsearch("-b", dn, "-s", "base", "(objectClass=*)", name)
    return [
        line.split(": ", 1)[1]
        for line in out.splitlines()
        if line.lower().startswith(f"{name.lower()}: ")
    ]


def automated_item(service_owner, *actions, steps=(ApproverKind.LINE_MANAGER,), **fields):
    item = CatalogueItemFactory(
        service_owner=service_owner, fulfilment_kind=FulfilmentKind.AUTOMATED, **fields
    )
    for position, kind in enumerate(steps, start=1):
        ApprovalPolicyStepFactory(item=item, position=position, approver_kind=kind)
    for position, (kind, target, attrs) in enumerate(actions, start=1):
        ProvisioningAction.objects.create(
            item=item, position=position, kind=kind, target=target, attributes=attrs
        )
    return item


def group_action(dn, kind=ActionKind.ADD_TO_GROUP):
    return (kind, dn, "")


def modify(directory, dn, changes):
    conn = directory.connection()
    try:
        assert conn.modify(dn, changes), conn.result
    finally:
        conn.unbind()


ADD, DELETE, REPLACE = ldap3.MODIFY_ADD, ldap3.MODIFY_DELETE, ldap3.MODIFY_REPLACE


def ldapmodify(directory, ldif: str) -> None:
    """Change the directory by hand with the real ldapmodify binary, as an admin would."""
    subprocess.run(
        [
            "ldapmodify",
            "-x",
            "-H",
            directory.url,
            "-D",
            directory.admin_dn,
            "-w",
            directory.admin_password,
        ],
        input=ldif,
        text=True,
        check=True,
        capture_output=True,
    )
