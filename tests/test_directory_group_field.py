"""'Zugriff auf Netzlaufwerk': pick a file-share group, its owner decides, the job adds you."""

import pytest

from catalogue.choices import ApproverKind, FieldType, FulfilmentKind
from catalogue.forms import OrderForm
from catalogue.models import ApprovalPolicyStep, FormField
from devtools.devdirectory import ldif_entry
from provisioning.backends import reset_backends
from provisioning.choices import ActionKind
from provisioning.models import ProvisioningAction
from requests_app import services as request_services
from requests_app.choices import RequestState
from tests.factories import CatalogueItemFactory
from tests.provisioning_support import add_person, members

pytestmark = pytest.mark.django_db


@pytest.fixture
def ldap(directory_settings):
    return directory_settings


@pytest.fixture
def shares(ldap, org):
    """Two file-share groups below ou=fileshares; the department head owns one."""
    head_dn = add_person(ldap, org.head)
    base = f"ou=fileshares,{ldap.group_base}"
    ldap.load_ldif(
        ldif_entry(base, {"objectClass": ["organizationalUnit"], "ou": "fileshares"})
        + "\n"
        + ldif_entry(
            f"cn=fs-hauptamt,{base}",
            {
                "objectClass": ["groupOfNames"],
                "cn": "fs-hauptamt",
                "description": "Hauptamt allgemein",
                "owner": head_dn,
                "member": [ldap.bind_dn],
            },
        )
        + "\n"
        + ldif_entry(
            f"cn=fs-kaemmerei,{base}",
            {"objectClass": ["groupOfNames"], "cn": "fs-kaemmerei", "member": [ldap.bind_dn]},
        )
    )
    return base


@pytest.fixture
def share_item(org, shares):
    item = CatalogueItemFactory(
        service_owner=org.service_desk, fulfilment_kind=FulfilmentKind.AUTOMATED
    )
    FormField.objects.create(
        item=item,
        key="share",
        label="Netzlaufwerk",
        field_type=FieldType.DIRECTORY_GROUP,
        directory_base=shares,
    )
    ApprovalPolicyStep.objects.create(
        item=item, position=1, approver_kind=ApproverKind.GROUP_OWNER, person_field_key="share"
    )
    ProvisioningAction.objects.create(
        item=item, position=1, kind=ActionKind.ADD_TO_GROUP, target="{{ answers.share }}"
    )
    return item


def test_form_offers_the_groups_below_the_base_and_refuses_others(org, share_item, shares):
    form = OrderForm(item=share_item, requester_employee=org.alice)
    choices = dict(form.fields["f_share"].choices)
    assert set(choices) == {"", f"cn=fs-hauptamt,{shares}", f"cn=fs-kaemmerei,{shares}"}
    assert choices[f"cn=fs-hauptamt,{shares}"] == "fs-hauptamt – Hauptamt allgemein"
    forged = OrderForm(
        {"item_version": share_item.version, "f_share": "cn=admin,dc=musterstadt,dc=example"},
        item=share_item,
        requester_employee=org.alice,
    )
    assert not forged.is_valid()
    assert "f_share" in forged.errors


def test_group_owner_decides_and_the_job_adds_the_beneficiary(
    org, ldap, share_item, shares, place_order, django_capture_on_commit_callbacks
):
    bob_dn = add_person(ldap, org.bob)
    form = OrderForm(
        {"item_version": share_item.version, "f_share": f"cn=fs-hauptamt,{shares}"},
        item=share_item,
        requester_employee=org.bob,
    )
    assert form.is_valid(), form.errors
    assert form.answers["share"] == {"dn": f"cn=fs-hauptamt,{shares}", "name": "fs-hauptamt"}
    req = place_order(share_item, org.bob.user, answers=form.answers)
    step = req.approvals.get()
    assert step.approver == org.head.user  # the group's owner in the directory
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.head.user)
    req.refresh_from_db()
    assert req.state == RequestState.FULFILLED
    assert bob_dn.lower() in members(ldap, f"cn=fs-hauptamt,{shares}")


def test_group_without_owner_goes_up_to_it_admins(org, ldap, share_item, shares, place_order):
    form = OrderForm(
        {"item_version": share_item.version, "f_share": f"cn=fs-kaemmerei,{shares}"},
        item=share_item,
        requester_employee=org.bob,
    )
    assert form.is_valid(), form.errors
    req = place_order(share_item, org.bob.user, answers=form.answers)
    step = req.approvals.get()
    assert step.approver is None and step.group.name == "IT-Administration"
    assert "not known" in step.routing_note


def test_directory_down_gives_a_clear_form_error(org, share_item, ldap):
    ldap.stop()
    try:
        reset_backends()
        form = OrderForm(
            {"item_version": share_item.version, "f_share": "cn=x"},
            item=share_item,
            requester_employee=org.bob,
        )
        assert not form.is_valid()
        assert "cannot be reached" in str(form.errors["f_share"])
    finally:
        ldap.start()
