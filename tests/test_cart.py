"""The cart: items added with their own answers, checked again and ordered all at once.

Through the real pages on PostgreSQL: a submission creates one request per line in one
transaction, with the line's answers and beneficiary, and one confirmation mail; a line
that has become invalid stops the whole submission and is named on the page.
"""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalogue.choices import ApproverKind, FieldType
from catalogue.models import CatalogueItem
from notifications.models import OutgoingMail
from requests_app import selectors, services
from requests_app.choices import RequestState
from requests_app.models import CART_MAX_LINES, CartLine, ServiceRequest, Submission
from tests.factories import ApprovalPolicyStepFactory, CatalogueItemFactory, FormFieldFactory

pytestmark = pytest.mark.django_db

CART = reverse("ordering:cart")


def order_url(item):
    return reverse("ordering:order", kwargs={"slug": item.slug})


@pytest.fixture
def vpn(org):
    item = CatalogueItemFactory(name="VPN-Zugang", slug="vpn", service_owner=org.service_desk)
    FormFieldFactory(item=item, key="reason", label="Begründung VPN", field_type=FieldType.TEXT)
    return item


@pytest.fixture
def mailbox(org):
    item = CatalogueItemFactory(name="Postfach", slug="postfach", service_owner=org.service_desk)
    FormFieldFactory(
        item=item, key="size", label="Größe", field_type=FieldType.CHOICE, choices="S\nM\nL"
    )
    return item


def add(client, item, **answers):
    data = {"item_version": item.version, "to_cart": "1"}
    beneficiary = answers.pop("beneficiary", None)
    if beneficiary is not None:
        data["beneficiary"] = beneficiary.personnel_number
    data.update({f"f_{key}": value for key, value in answers.items()})
    return client.post(order_url(item), data)


def submit(client, user):
    ids = list(CartLine.objects.filter(owner=user).values_list("pk", flat=True))
    return client.post(CART, {"line": ids})


def submission_mails():
    return OutgoingMail.objects.filter(kind="submission.placed")


def test_items_go_into_the_cart_with_their_answers_and_nothing_is_ordered_yet(
    client, org, vpn, mailbox
):
    client.force_login(org.alice.user)
    response = add(client, vpn, reason="Homeoffice")
    assert response.status_code == 302
    assert response["Location"] == CART
    add(client, mailbox, size="M", beneficiary=org.bob)
    lines = list(CartLine.objects.filter(owner=org.alice.user).order_by("id"))
    assert [(line.item, line.beneficiary, line.answers) for line in lines] == [
        (vpn, org.alice, {"reason": "Homeoffice"}),
        (mailbox, org.bob, {"size": "M"}),
    ]
    assert not ServiceRequest.objects.exists()
    page = client.get(CART).content.decode()
    assert "Homeoffice" in page and "Begründung VPN" in page
    assert org.bob.display_name in page
    assert '<span class="badge">2 items</span>' in page


def test_an_invalid_form_is_not_added(client, org, vpn):
    client.force_login(org.alice.user)
    response = add(client, vpn, reason="")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not CartLine.objects.exists()


def test_submitting_places_one_request_per_line_in_one_joint_order(
    client, org, vpn, mailbox, manual_item
):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    add(client, mailbox, size="L", beneficiary=org.bob)
    add(client, manual_item)
    response = submit(client, org.alice.user)
    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == submission.get_absolute_url()
    requests = list(submission.requests.order_by("id"))
    assert [(r.item, r.beneficiary, r.answers) for r in requests] == [
        (vpn, org.alice, {"reason": "Homeoffice"}),
        (mailbox, org.bob, {"size": "L"}),
        (manual_item, org.alice, {}),
    ]
    assert all(r.requester == org.alice.user for r in requests)
    # Manual items without steps are approved at once, the notebook waits for the manager.
    assert requests[2].state == RequestState.AWAITING_APPROVAL
    assert not CartLine.objects.exists()
    mails = list(submission_mails())
    assert [(m.recipient, m.params) for m in mails] == [
        (org.alice.user, {"submission_id": submission.pk})
    ]
    page = client.get(response["Location"]).content.decode()
    for service_request in requests:
        assert service_request.get_absolute_url() in page
    assert '<span class="badge">' not in page


def test_one_invalid_line_stops_the_whole_submission_and_is_named(client, org, vpn, mailbox):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    add(client, mailbox, size="S")
    # Meanwhile the mailbox form got a new required field and the VPN item was retired.
    FormFieldFactory(item=mailbox, key="alias", label="Alias-Adresse", field_type=FieldType.TEXT)
    CatalogueItem.objects.filter(pk=vpn.pk).update(is_active=False)
    response = submit(client, org.alice.user)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was ordered" in page
    assert "Alias-Adresse: This field is required." in page
    assert "This service can no longer be ordered." in page
    assert not ServiceRequest.objects.exists()
    assert not Submission.objects.exists()
    assert not submission_mails().exists()
    assert CartLine.objects.count() == 2


def test_a_changed_item_asks_to_add_it_again(client, org, vpn, mailbox):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    add(client, mailbox, size="S")
    CatalogueItem.objects.filter(pk=vpn.pk).update(version=F("version") + 1)
    response = submit(client, org.alice.user)
    assert response.status_code == 400
    assert "Please remove this item and add it again." in response.content.decode()
    assert not ServiceRequest.objects.exists()


def test_a_self_only_item_for_a_colleague_is_refused_on_adding(client, org, vpn):
    CatalogueItem.objects.filter(pk=vpn.pk).update(orderable_for_others=False)
    vpn.refresh_from_db()
    client.force_login(org.alice.user)
    response = add(client, vpn, reason="x", beneficiary=org.bob)
    assert response.status_code == 400
    assert "This service can only be ordered for yourself." in response.content.decode()
    assert not CartLine.objects.exists()


def test_unknown_and_retired_items_cannot_be_added(client, org, vpn):
    client.force_login(org.alice.user)
    response = client.post("/leistung/gibt-es-nicht/bestellen/", {"to_cart": "1"})
    assert response.status_code == 404
    CatalogueItem.objects.filter(pk=vpn.pk).update(is_active=False)
    assert add(client, vpn, reason="x").status_code == 404
    assert not CartLine.objects.exists()


def test_foreign_tampered_and_stale_line_ids_are_refused(client, org, vpn, mailbox):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    alices_line = CartLine.objects.get()
    client.force_login(org.bob.user)
    add(client, mailbox, size="S")
    bobs_line = CartLine.objects.get(owner=org.bob.user)
    # Bob cannot order, see or remove Alice's line.
    response = client.post(CART, {"line": [bobs_line.pk, alices_line.pk]})
    assert response.status_code == 400
    assert "Your cart has changed in the meantime" in response.content.decode()
    assert "Homeoffice" not in client.get(CART).content.decode()
    remove = reverse("ordering:cart_remove", kwargs={"pk": alices_line.pk})
    assert client.post(remove).status_code == 403
    assert CartLine.objects.filter(pk=alices_line.pk).exists()
    # Ids that are not numbers, an empty list, and a cart that grew in another tab.
    assert client.post(CART, {"line": ["1 OR 1=1"]}).status_code == 400
    assert client.post(CART, {}).status_code == 400
    add(client, vpn, reason="zweiter Tab")
    assert client.post(CART, {"line": [bobs_line.pk]}).status_code == 400
    assert not ServiceRequest.objects.exists()
    # A second submit of the same lines (double click) finds them gone.
    assert submit(client, org.bob.user).status_code == 302
    response = client.post(CART, {"line": [bobs_line.pk]})
    assert response.status_code == 400
    assert ServiceRequest.objects.count() == 2


def test_removing_a_line(client, org, vpn, mailbox):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    add(client, mailbox, size="S")
    line = CartLine.objects.get(item=vpn)
    response = client.post(reverse("ordering:cart_remove", kwargs={"pk": line.pk}))
    assert response.status_code == 302
    assert list(CartLine.objects.values_list("item", flat=True)) == [mailbox.pk]
    assert '<span class="badge">1 item</span>' in client.get(CART).content.decode()


def test_the_cart_survives_logging_out_and_in(client, org, vpn):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    client.logout()
    client.force_login(org.alice.user)
    page = client.get(reverse("requests:mine")).content.decode()
    assert '<span class="badge">1 item</span>' in page


def test_the_cart_is_bounded(client, org, vpn):
    client.force_login(org.alice.user)
    for _ in range(CART_MAX_LINES):
        add(client, vpn, reason="x")
    response = add(client, vpn, reason="x")
    assert response.status_code == 400
    assert f"Your cart holds at most {CART_MAX_LINES} items" in response.content.decode()
    assert CartLine.objects.count() == CART_MAX_LINES


def test_someone_elses_joint_order_is_not_found(client, org, vpn):
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    submit(client, org.alice.user)
    submission = Submission.objects.get()
    client.force_login(org.bob.user)
    assert client.get(submission.get_absolute_url()).status_code == 404


def test_the_cart_page_runs_the_same_queries_for_few_and_many_lines(client, org, vpn, mailbox):
    client.force_login(org.alice.user)

    def measure():
        client.get(CART)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(CART).status_code == 200
        return len(ctx.captured_queries)

    add(client, vpn, reason="a")
    few = measure()
    for n in range(6):
        item = CatalogueItemFactory(service_owner=org.service_desk)
        FormFieldFactory(item=item, key="note", field_type=FieldType.TEXT)
        add(client, item, note=f"n{n}")
    assert measure() == few


# --- approvals of a joint order ---------------------------------------------------------

APPROVALS = reverse("requests:approvals")
TOGETHER = reverse("requests:decide_together")


@pytest.fixture
def joint_order(client, org, vpn, mailbox, manual_item):
    """Alice's cart: VPN for herself and a notebook for Bob wait for the manager; the
    mailbox needs no approval."""
    ApprovalPolicyStepFactory(item=vpn, position=1, approver_kind=ApproverKind.LINE_MANAGER)
    vpn.refresh_from_db()
    client.force_login(org.alice.user)
    add(client, vpn, reason="Homeoffice")
    add(client, manual_item, beneficiary=org.bob)
    add(client, mailbox, size="S")
    assert submit(client, org.alice.user).status_code == 302
    return Submission.objects.get()


def waiting(submission):
    return list(
        submission.requests.filter(state=RequestState.AWAITING_APPROVAL)
        .annotate(step=F("approvals__pk"))
        .order_by("id")
    )


def decide_together(client, requests, decision="approve", comment=""):
    data = {"request": [r.pk for r in requests], "decision": decision, "comment": comment}
    data.update({f"approval_{r.pk}": r.step for r in requests})
    return client.post(TOGETHER, data)


def test_the_approver_sees_a_joint_order_grouped_and_decides_it_together(client, org, joint_order):
    requests = waiting(joint_order)
    assert len(requests) == 2
    client.force_login(org.manager.user)
    page = client.get(APPROVALS).content.decode()
    assert f"Order #{joint_order.pk} by" in page
    for service_request in requests:
        assert f'name="approval_{service_request.pk}" value="{service_request.step}"' in page
    response = decide_together(client, requests, comment="Passt.")
    assert response.status_code == 302
    for service_request in requests:
        service_request.refresh_from_db()
        assert service_request.state == RequestState.APPROVED
        approval = service_request.approvals.get()
        assert approval.decided_by == org.manager.user
        assert approval.comment == "Passt."
        assert service_request.events.filter(kind="approve", actor=org.manager.user).count() == 1
    assert f"Order #{joint_order.pk} by" not in client.get(APPROVALS).content.decode()


def test_rejecting_together_needs_a_reason(client, org, joint_order):
    requests = waiting(joint_order)
    client.force_login(org.manager.user)
    response = decide_together(client, requests, decision="reject")
    assert response.status_code == 302
    assert "Please give a reason for the rejection." in client.get(APPROVALS).content.decode()
    assert len(waiting(joint_order)) == 2
    decide_together(client, requests, decision="reject", comment="Kein Bedarf.")
    assert not waiting(joint_order)
    assert set(joint_order.requests.values_list("state", flat=True)) == {
        RequestState.REJECTED,
        RequestState.APPROVED,  # the mailbox had no step
    }


def test_deciding_together_is_all_or_nothing(client, org, joint_order, manual_item, place_order):
    requests = waiting(joint_order)
    # A request the manager may not decide (it is for the manager: four-eyes) slipped in.
    own = place_order(manual_item, org.alice.user, beneficiary=org.manager)
    own.step = own.approvals.get().pk
    client.force_login(org.manager.user)
    assert decide_together(client, [*requests, own]).status_code == 403
    assert len(waiting(joint_order)) == 2
    # A step decided meanwhile (another tab): nothing is decided, the user is told.
    stale = requests[0]
    client.force_login(org.manager.user)
    decide_together(client, [requests[0]])
    response = decide_together(client, [stale, requests[1]])
    assert response.status_code == 302
    assert f"Request #{stale.pk}" in client.get(APPROVALS).content.decode()
    assert [r.pk for r in waiting(joint_order)] == [requests[1].pk]
    # Someone else's approvals: the beneficiary Bob may decide none of them.
    client.force_login(org.bob.user)
    assert decide_together(client, [requests[1]]).status_code == 403
    # Bad input: no decision, ids that are no numbers.
    client.force_login(org.manager.user)
    assert client.post(TOGETHER, {"request": ["x"], "decision": "approve"}).status_code == 302
    assert client.post(TOGETHER, {"request": [requests[1].pk]}).status_code == 302
    assert [r.pk for r in waiting(joint_order)] == [requests[1].pk]


def test_the_approvals_page_runs_the_same_queries_for_small_and_large_joint_orders(
    client, org, vpn, manual_item
):
    def order(count):
        client.force_login(org.alice.user)
        for _ in range(count):
            add(client, manual_item)
        submit(client, org.alice.user)

    def measure():
        client.force_login(org.manager.user)
        client.get(APPROVALS)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(APPROVALS).status_code == 200
        return len(ctx.captured_queries)

    order(2)
    few = measure()
    order(5)
    order(3)
    assert measure() == few


def test_joint_order_groups_come_from_the_pending_decisions(client, org, joint_order):
    """The groups above the approvals list are built from the user's pending steps: each
    request with the step the user decides; a request decided between the two reads drops
    out, and a group left with one request is no group."""
    requests = waiting(joint_order)
    manager = org.manager.user
    pending = selectors.pending_decisions_of(manager)
    assert [(p.request_id, p.approval_id, p.submission_id) for p in pending] == [
        (r.pk, r.step, joint_order.pk) for r in requests
    ]
    (group,) = selectors.approval_groups(manager, pending)
    assert group["submission_id"] == joint_order.pk
    assert [(r.pk, r.current_approval) for r in group["requests"]] == [
        (r.pk, r.step) for r in requests
    ]
    # Nobody else decides them: not the requester, not Bob (a beneficiary), not the head.
    for user in (org.alice.user, org.bob.user, org.head.user):
        assert selectors.pending_decisions_of(user) == []
        assert selectors.approval_groups(user) == []
        assert not selectors.requests_to_decide(user).exists()
    services.request_approve(request_id=requests[0].pk, user=manager)
    # Read before the decision: the decided request is left out, and so is the group.
    assert selectors.approval_groups(manager, pending) == []
    assert [r.pk for r in selectors.requests_to_decide(manager, pending)] == [requests[1].pk]
    assert selectors.approval_groups(manager) == []
    client.force_login(manager)
    page = client.get(APPROVALS).content.decode()
    assert f"Order #{joint_order.pk} by" not in page
    assert f'href="/antraege/{requests[1].pk}/"' in page
