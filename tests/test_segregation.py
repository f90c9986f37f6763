"""Segregation of duties: services one person must not hold together.

Refused when ordering (page, API, service) and when approving; reported for existing
holders (page and CSV) to IT administration and data protection. Rules over sets and
nested directory groups, validity periods and exceptions: tests/test_sod_sets.py.
"""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from governance import selectors, sod_services
from governance.models import SodRuleMember, SodSide
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services
from requests_app.choices import RequestState
from tests.factories import EmployeeFactory
from tests.workflow_support import make_item

pytestmark = pytest.mark.django_db

LINE_MANAGER = {"approver_kind": "line_manager"}
REASON = "Wer Zahlungen anlegt, gibt sie nicht frei (Vier-Augen-Prinzip der Kasse)."


@pytest.fixture
def pair(org):
    """ "Zahlungen anlegen" and "Zahlungen freigeben", kept apart by a rule."""
    create = make_item(org.service_desk, LINE_MANAGER, name="Zahlungen anlegen", slug="anlegen")
    release = make_item(
        org.service_desk, LINE_MANAGER, name="Zahlungen freigeben", slug="freigeben"
    )
    rule = pair_rule(create, release)
    return create, release, rule


def pair_rule(first, second, name="Kasse", reason=REASON):
    return sod_services.sod_rule_create(name=name, reason=reason, first=[first], second=[second])


@pytest.fixture
def grant(org, place_order):
    """Order, approve and fulfil ``item`` for ``employee``: an active entitlement."""

    def _grant(item, employee):
        req = place_order(item, employee.user)
        services.request_approve(request_id=req.pk, user=employee.manager.user)
        services.request_take(request_id=req.pk, user=org.fulfiller.user)
        services.request_complete(request_id=req.pk, user=org.fulfiller.user, note="ok")
        return Entitlement.objects.get(request=req, state=EntitlementState.ACTIVE)

    return _grant


def test_ordering_the_second_of_a_held_pair_is_refused_with_the_reason(
    org, pair, grant, place_order
):
    create, release, _rule = pair
    grant(create, org.alice)
    with pytest.raises(ValidationError) as refused:
        place_order(release, org.alice.user)
    message = " ".join(refused.value.message_dict["item"])
    assert "Zahlungen anlegen" in message and REASON in message
    # Either direction of the rule counts; another person is not affected.
    place_order(release, org.bob.user)


def test_an_open_request_counts_as_held(org, pair, place_order):
    create, release, _rule = pair
    place_order(create, org.alice.user)
    with pytest.raises(ValidationError, match="open request"):
        place_order(release, org.alice.user)


def test_ended_holdings_and_inactive_rules_do_not_count(org, pair, grant, place_order):
    create, release, rule = pair
    entitlement = grant(create, org.alice)
    Entitlement.objects.filter(pk=entitlement.pk).update(state=EntitlementState.REVOKED)
    cancelled = place_order(create, org.bob.user)
    services.request_cancel(request_id=cancelled.pk, user=org.bob.user)
    place_order(release, org.alice.user)
    place_order(release, org.bob.user)
    rule.is_active = False
    rule.save()
    place_order(create, org.alice.user)


def test_approval_refused_when_a_conflict_arose_after_ordering(org, pair, place_order):
    """Both ordered before the rule existed: the approver of the second is stopped, and
    may still reject."""
    create, release, rule = pair
    rule.delete()
    first = place_order(create, org.alice.user)
    second = place_order(release, org.alice.user)
    pair_rule(create, release)
    with pytest.raises(ValidationError, match="Zahlungen"):
        services.request_approve(request_id=second.pk, user=org.manager.user)
    second.refresh_from_db()
    assert second.state == RequestState.AWAITING_APPROVAL
    services.request_reject(request_id=second.pk, user=org.manager.user, comment="Kasse.")
    services.request_approve(request_id=first.pk, user=org.manager.user)


def test_order_page_shows_the_conflict_as_a_form_error(org, pair, grant, client):
    create, release, _rule = pair
    grant(create, org.alice)
    client.force_login(org.alice.user)
    response = client.post(
        f"/leistung/{release.slug}/bestellen/",
        {
            "item_version": release.version,
            "beneficiary": org.alice.personnel_number,
            "cost_centre": org.cost_centre.pk,
            "justification": "",
        },
    )
    assert response.status_code == 400
    assert REASON in response.content.decode()
    assert not release.requests.exists()


def test_api_refuses_the_conflicting_order(org, pair, grant, api_as):
    create, release, _rule = pair
    grant(create, org.alice)
    response = api_as(org.alice).post(
        "/api/v1/requests/",
        {"item": release.slug, "item_version": release.version, "answers": {}},
        format="json",
    )
    assert response.status_code == 400
    assert REASON in str(response.json())


def test_a_member_sits_on_one_side_once_and_each_side_has_one(pair):
    create, _release, rule = pair
    with pytest.raises(IntegrityError), transaction.atomic():
        SodRuleMember.objects.create(rule=rule, side=SodSide.SECOND, item=create)
    with pytest.raises(IntegrityError), transaction.atomic():
        SodRuleMember.objects.create(rule=rule, side=SodSide.FIRST, item=create, group_dn="cn=x")
    with pytest.raises(ValidationError, match="one side of a rule only"):
        sod_services.sod_rule_create(name="Selbst", reason="x", first=[create], second=[create])
    with pytest.raises(ValidationError, match="at least one"):
        sod_services.sod_rule_create(name="Leer", reason="x", first=[create], second=[])


# --- the report --------------------------------------------------------------------------------


@pytest.fixture
def legacy_holder(org, pair, grant):
    """alice got both before the rule existed."""
    create, release, rule = pair
    rule.delete()
    grant(create, org.alice)
    grant(release, org.alice)
    grant(create, org.bob)  # only one of the pair
    rule = pair_rule(create, release)
    sod_services.sod_scan()
    return rule


def test_report_lists_holders_of_both(org, legacy_holder, client):
    rows = list(selectors.open_findings())
    assert [(r.holder_id, r.rule_id) for r in rows] == [(org.alice.pk, legacy_holder.pk)]
    client.force_login(org.admin.user)
    page = client.get("/funktionstrennung/")
    assert page.status_code == 200
    body = page.content.decode()
    assert org.alice.display_name in body and org.bob.display_name not in body
    filtered = client.get(f"/funktionstrennung/?rule={legacy_holder.pk}")
    assert org.alice.display_name in filtered.content.decode()
    bad = client.get("/funktionstrennung/?rule=abc&department=%00")
    assert bad.status_code == 200  # a bad filter shows errors, never a 500


def test_report_csv(org, legacy_holder, client):
    client.force_login(org.admin.user)
    response = client.get("/funktionstrennung/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [
        {
            "person": org.alice.display_name,
            "personnel_number": org.alice.personnel_number,
            "department": org.alice.department.name,
            "rule": "Kasse",
            "rule_version": "1",
            "requirement": "BSI IT-Grundschutz ORP.4.A4",
            "holds": "Zahlungen anlegen",
            "and_also": "Zahlungen freigeben",
            "since": rows[0]["since"],
            "exception_until": "",
        }
    ]


def test_report_is_for_it_admins_and_data_protection_only(org, legacy_holder, client, group):
    for person in (org.alice, org.manager, org.fulfiller):
        client.force_login(person.user)
        assert client.get("/funktionstrennung/").status_code == 403
        assert client.get("/funktionstrennung/?format=csv").status_code == 403
    officer = EmployeeFactory(department=org.department)
    officer.user.groups.add(group("Datenschutz"))
    client.force_login(officer.user)
    assert client.get("/funktionstrennung/").status_code == 200


def test_report_queries_do_not_grow_with_rules(
    org, legacy_holder, grant, client, django_assert_max_num_queries
):
    client.force_login(org.admin.user)
    with django_assert_max_num_queries(12) as few:
        client.get("/funktionstrennung/")
    for n in range(3):
        a = make_item(org.service_desk, LINE_MANAGER, slug=f"a{n}", name=f"A{n}")
        b = make_item(org.service_desk, LINE_MANAGER, slug=f"b{n}", name=f"B{n}")
        grant(a, org.alice)
        grant(b, org.alice)
        pair_rule(a, b, name=f"R{n}", reason="x")
    sod_services.sod_scan()
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/funktionstrennung/")
    assert page.content.decode().count("<tr") == 1 + 4  # header and four conflicts
