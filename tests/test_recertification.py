"""Recertification: line managers confirm or remove the lasting access of their staff.

Campaigns started by IT admins (page) or periodically (beat task); decisions by the
reviewer, their substitute, or IT administration where nobody else is; never by the holder.
Removal goes through the usual revocation. A mover's flagged access is decided on the same page.
"""

import csv
import datetime
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance import selectors, services
from governance.models import Campaign, Review
from itportal.exceptions import ActionConflict
from notifications.models import OutgoingMail
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services as request_services
from tests.factories import EmployeeFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db

D = Review.Decision
LINE_MANAGER = {"approver_kind": "line_manager"}


def in_days(n):
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.fixture
def grant(org, place_order):
    def _grant(item, employee):
        req = place_order(item, employee.user)
        Entitlement.objects.create(
            request=req, holder=employee, item=item, state=EntitlementState.ACTIVE
        )
        return Entitlement.objects.get(request=req)

    return _grant


@pytest.fixture
def held(org, grant):
    """alice and bob (manager: the manager) and the manager (manager: the head) hold VPN;
    the head (no manager) holds the file share."""
    vpn = make_item(org.service_desk, LINE_MANAGER, name="VPN", slug="vpn")
    share = make_item(org.service_desk, LINE_MANAGER, name="Laufwerk", slug="laufwerk")
    return {
        "alice": grant(vpn, org.alice),
        "bob": grant(vpn, org.bob),
        "manager": grant(vpn, org.manager),
        "head": grant(share, org.head),
    }


def review_of(campaign, entitlement):
    return Review.objects.get(campaign=campaign, entitlement=entitlement)


def test_start_assigns_each_access_to_the_holders_line_manager(org, held):
    revoked = held["bob"]
    Entitlement.objects.filter(pk=revoked.pk).update(state=EntitlementState.REVOKED)
    campaign = services.campaign_start(name="Rezertifizierung 2027", due_on=in_days(28))
    reviewers = {r.entitlement_id: r.reviewer_id for r in campaign.reviews.all()}
    assert reviewers == {
        held["alice"].pk: org.manager.user.pk,
        held["manager"].pk: org.head.user.pk,
        held["head"].pk: None,  # no manager: IT administration
    }
    kinds = OutgoingMail.objects.filter(kind="governance.review_requested")
    assert {m.recipient_id for m in kinds} == {
        org.manager.user.pk,
        org.head.user.pk,
        org.admin.user.pk,
    }


def test_inactive_manager_leaves_the_access_to_it_administration(org, held):
    org.manager.user.is_active = False
    org.manager.user.save()
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    assert review_of(campaign, held["alice"]).reviewer_id is None


@pytest.mark.parametrize(
    ("name", "due", "field"),
    [
        ("", 10, "name"),
        ("x" * 201, 10, "name"),
        ("R", 0, "due_on"),
        ("R", -3, "due_on"),
        ("R", 400, "due_on"),
    ],
)
def test_start_refuses_bad_input(org, held, name, due, field):
    with pytest.raises(ValidationError) as refused:
        services.campaign_start(name=name, due_on=in_days(due))
    assert field in refused.value.message_dict
    assert not Campaign.objects.exists()


def test_keep_and_remove(org, held):
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    alice, bob = review_of(campaign, held["alice"]), review_of(campaign, held["bob"])
    services.review_decide(review_id=alice.pk, user=org.manager.user, decision=D.KEEP)
    services.review_decide(
        review_id=bob.pk, user=org.manager.user, decision=D.REMOVE, comment="Projekt vorbei."
    )
    bob.refresh_from_db()
    assert (bob.decision, bob.decided_by_id, bob.comment) == (
        D.REMOVE,
        org.manager.user.pk,
        "Projekt vorbei.",
    )
    entitlement = Entitlement.objects.get(pk=held["bob"].pk)
    assert entitlement.state == EntitlementState.REVOKED  # manual item: no directory job
    assert entitlement.revoked_by_id == org.manager.user.pk
    assert "Projekt vorbei." in entitlement.revoke_reason
    assert Entitlement.objects.get(pk=held["alice"].pk).state == EntitlementState.ACTIVE
    # The same decision again is no error; the other one is a conflict.
    services.review_decide(review_id=bob.pk, user=org.manager.user, decision=D.REMOVE)
    with pytest.raises(ActionConflict):
        services.review_decide(review_id=bob.pk, user=org.manager.user, decision=D.KEEP)


def test_who_may_decide(org, held):
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    alice = review_of(campaign, held["alice"])
    for outsider in (org.alice.user, org.bob.user, org.head.user, org.admin.user):
        with pytest.raises(PermissionDenied):
            services.review_decide(review_id=alice.pk, user=outsider, decision=D.KEEP)
    carol = EmployeeFactory(department=org.department, user__username="carol")
    request_services.substitution_create(
        principal=org.manager.user,
        substitute=carol.user,
        starts_on=in_days(-1),
        ends_on=in_days(1),
    )
    assert alice in selectors.reviews_for(carol.user)
    services.review_decide(review_id=alice.pk, user=carol.user, decision=D.KEEP)


def test_it_admin_decides_unassigned_but_never_their_own(org, grant, held):
    """The IT admin has no manager either: their own access needs another IT admin."""
    own = grant(held["head"].item, org.admin)
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    head, mine = review_of(campaign, held["head"]), review_of(campaign, own)
    assert head.reviewer_id is None and mine.reviewer_id is None
    assert head in selectors.reviews_for(org.admin.user)
    assert mine not in selectors.reviews_for(org.admin.user)
    with pytest.raises(PermissionDenied):
        services.review_decide(review_id=mine.pk, user=org.admin.user, decision=D.KEEP)
    services.review_decide(review_id=head.pk, user=org.admin.user, decision=D.KEEP)


def test_bad_decision_and_comment(org, held):
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    alice = review_of(campaign, held["alice"])
    for decision, comment in (("maybe", ""), ("", ""), (D.KEEP, "x" * 501), (D.KEEP, "a\x00b")):
        with pytest.raises(ValidationError):
            services.review_decide(
                review_id=alice.pk, user=org.manager.user, decision=decision, comment=comment
            )
    alice.refresh_from_db()
    assert alice.decision == D.PENDING


def test_closed_campaign_takes_no_decisions(org, held):
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    services.campaign_close(campaign_id=campaign.pk, user=org.admin.user)
    alice = review_of(campaign, held["alice"])
    assert alice not in selectors.reviews_for(org.manager.user)
    with pytest.raises(ActionConflict):
        services.review_decide(review_id=alice.pk, user=org.manager.user, decision=D.KEEP)
    with pytest.raises(PermissionDenied):
        services.campaign_close(campaign_id=campaign.pk, user=org.manager.user)


def test_periodic_start_is_idempotent(org, held, settings):
    settings.RECERTIFICATION_INTERVAL_DAYS = 365
    first = services.start_due_campaign()
    assert first is not None and first.reviews.count() == 4
    assert services.start_due_campaign() is None
    assert services.start_due_campaign(today=in_days(364)) is None
    Campaign.objects.filter(pk=first.pk).update(
        started_at=timezone.now() - datetime.timedelta(days=365)
    )
    assert services.start_due_campaign() is not None
    settings.RECERTIFICATION_INTERVAL_DAYS = 0
    Campaign.objects.all().delete()
    assert services.start_due_campaign() is None


def test_the_beat_task_is_routed_and_runs(org, held, settings):
    from governance.tasks import start_due_recertification

    assert settings.CELERY_TASK_ROUTES["governance.tasks.start_due_recertification"]
    result = start_due_recertification.apply().get()
    assert Campaign.objects.filter(pk=result["started"]).exists()


# --- pages -----------------------------------------------------------------------------------


def test_review_page_saves_several_decisions_at_once(org, held, client):
    campaign = services.campaign_start(name="R", due_on=in_days(10))
    alice, bob = review_of(campaign, held["alice"]), review_of(campaign, held["bob"])
    head_row = review_of(campaign, held["manager"])  # the head's: not the manager's to decide
    client.force_login(org.manager.user)
    page = client.get("/zugriffspruefung/")
    assert page.status_code == 200
    body = page.content.decode()
    assert f'name="decision-{alice.pk}"' in body and f'name="decision-{bob.pk}"' in body
    assert f'name="decision-{head_row.pk}"' not in body  # the manager's own access
    response = client.post(
        "/zugriffspruefung/",
        {
            f"decision-{alice.pk}": "keep",
            f"decision-{bob.pk}": "remove",
            f"comment-{bob.pk}": "Nicht mehr nötig.",
            f"decision-{head_row.pk}": "remove",
            "decision-abc": "keep",
            f"decision-{alice.pk}9": "keep",
        },
    )
    assert response.status_code == 302
    assert dict(campaign.reviews.values_list("pk", "decision")) == {
        alice.pk: D.KEEP,
        bob.pk: D.REMOVE,
        head_row.pk: D.PENDING,
        review_of(campaign, held["head"]).pk: D.PENDING,
    }
    assert Entitlement.objects.get(pk=held["manager"].pk).state == EntitlementState.ACTIVE


def test_review_page_queries_do_not_grow(org, grant, held, client, django_assert_max_num_queries):
    services.campaign_start(name="R", due_on=in_days(10))
    client.force_login(org.manager.user)
    with django_assert_max_num_queries(20) as few:
        client.get("/zugriffspruefung/")
    for _n in range(10):
        grant(held["alice"].item, EmployeeFactory(department=org.department, manager=org.manager))
    services.campaign_start(name="R2", due_on=in_days(10))
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/zugriffspruefung/")
    assert page.content.decode().count('value="remove"') >= 12


def test_mover_flag_is_decided_and_cleared(org, held, client):
    Entitlement.objects.filter(pk__in=[held["alice"].pk, held["bob"].pk]).update(
        review_note="Wechsel von FB20 nach FB10"
    )
    client.force_login(org.manager.user)
    page = client.get("/zugriffspruefung/")
    assert "Wechsel von FB20 nach FB10" in page.content.decode()
    client.post(
        "/zugriffspruefung/",
        {f"flag-{held['alice'].pk}": "keep", f"flag-{held['bob'].pk}": "remove"},
    )
    alice = Entitlement.objects.get(pk=held["alice"].pk)
    bob = Entitlement.objects.get(pk=held["bob"].pk)
    assert (alice.review_note, alice.state) == ("", EntitlementState.ACTIVE)
    assert (bob.review_note, bob.state) == ("", EntitlementState.REVOKED)
    client.force_login(org.alice.user)  # nobody decides on their own access
    with pytest.raises(PermissionDenied):
        services.flagged_decide(entitlement_id=alice.pk, user=org.alice.user, decision=D.KEEP)


def test_campaign_pages_for_it_admins(org, held, client):
    client.force_login(org.manager.user)
    assert client.get("/zugriffspruefung/kampagnen/").status_code == 403
    client.force_login(org.admin.user)
    bad = client.post("/zugriffspruefung/kampagnen/", {"name": "", "due_on": "2020-01-01"})
    assert bad.status_code == 400 and not Campaign.objects.exists()
    started = client.post(
        "/zugriffspruefung/kampagnen/",
        {"name": "Rezertifizierung 2027", "due_on": in_days(20).isoformat()},
    )
    campaign = Campaign.objects.get()
    assert started.status_code == 302
    services.review_decide(
        review_id=review_of(campaign, held["bob"]).pk, user=org.manager.user, decision=D.REMOVE
    )
    page = client.get(f"/zugriffspruefung/kampagnen/{campaign.pk}/")
    assert page.context["campaign"].removed == 1 and page.context["campaign"].pending == 3
    export = client.get(f"/zugriffspruefung/kampagnen/{campaign.pk}/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 4
    assert {r["decision"] for r in rows} == {"Remove", "Not yet decided"} or {
        r["decision"] for r in rows
    } == {"Entfernen", "Noch nicht entschieden"}
    client.post(f"/zugriffspruefung/kampagnen/{campaign.pk}/")
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert client.get("/zugriffspruefung/kampagnen/999999/").status_code == 404
