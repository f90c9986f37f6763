"""A recertification runs to its end against the real private slapd: the manager keeps one
VPN access and removes the other; at the stage's closing day the beat's sweep closes the
stage and the removal runs as the usual deprovisioning job. The directory is then read back
twice, with ldap3 and with the real ldapsearch binary: the removed member is gone, the kept
one remains (issue 15, "Done when")."""

import datetime

import ldap3
import pytest

from governance import services
from governance.choices import CampaignScope, TaskDecision
from governance.models import Campaign, Review, ReviewTask
from itportal import workdays
from provisioning.choices import Direction, EntitlementState, JobState
from provisioning.models import Entitlement, ProvisioningJob
from requests_app import services as request_services
from tests.provisioning_support import add_person, members

pytestmark = pytest.mark.django_db


def _members_by_ldap3(directory, group_dn) -> set[str]:
    conn = directory.connection()
    try:
        assert conn.search(
            group_dn, "(objectClass=groupOfNames)", ldap3.BASE, attributes=["member"]
        )
        return {str(dn).lower() for dn in conn.entries[0].member.values}
    finally:
        conn.unbind()


def _granted(org, item, employee, place_order, callbacks) -> Entitlement:
    req = place_order(item, employee.user)
    with callbacks(execute=True):
        request_services.request_approve(request_id=req.pk, user=org.manager.user)
    return Entitlement.objects.get(request=req, state=EntitlementState.ACTIVE)


def test_campaign_removes_one_member_from_the_directory_and_keeps_the_other(
    org, provisioning_directory, vpn, place_order, django_capture_on_commit_callbacks
):
    item, group = vpn
    ldap = provisioning_directory
    alice_dn, bob_dn = add_person(ldap, org.alice), add_person(ldap, org.bob)
    kept = _granted(org, item, org.alice, place_order, django_capture_on_commit_callbacks)
    removed = _granted(org, item, org.bob, place_order, django_capture_on_commit_callbacks)
    assert {alice_dn.lower(), bob_dn.lower()} <= _members_by_ldap3(ldap, group)

    campaign = services.campaign_start(
        name="Rezertifizierung VPN", scope=CampaignScope.ITEM, item=item
    )
    for entitlement, decision, reason in (
        (kept, TaskDecision.ACCEPT, ""),
        (removed, TaskDecision.REVOKE, "Kein Homeoffice mehr."),
    ):
        task = ReviewTask.objects.get(review__campaign=campaign, review__entitlement=entitlement)
        services.review_task_decide(
            task_id=task.pk, user=org.manager.user, decision=decision, comment=reason
        )
    stage = campaign.stages.get()
    closing = stage.closes_on + datetime.timedelta(days=1)
    while not workdays.is_working_day(closing):
        closing += datetime.timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.campaigns_remind_and_escalate(today=closing)
    assert counts["closed"] == 1

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert dict(campaign.reviews.values_list("entitlement", "decision")) == {
        kept.pk: Review.Decision.KEEP,
        removed.pk: Review.Decision.REMOVE,
    }
    job = ProvisioningJob.objects.get(entitlement=removed, direction=Direction.REVOKE)
    assert job.state == JobState.SUCCEEDED
    assert Entitlement.objects.get(pk=removed.pk).state == EntitlementState.REVOKED
    assert Entitlement.objects.get(pk=kept.pk).state == EntitlementState.ACTIVE
    by_ldap3 = _members_by_ldap3(ldap, group)
    by_ldapsearch = members(ldap, group)
    for read_back in (by_ldap3, by_ldapsearch):
        assert alice_dn.lower() in read_back
        assert bob_dn.lower() not in read_back
