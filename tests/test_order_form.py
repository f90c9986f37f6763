"""Order form validation per field type, through the real order page and through OrderForm.

Every bad answer must come back as a clear message on the form and leave nothing saved:
no request, no audit record, no approval step.
"""

from decimal import Decimal

import pytest
from django.db.models import F
from django.utils.html import escape

from catalogue.choices import ApproverKind, Audience, FieldType
from catalogue.forms import OrderForm
from catalogue.models import CatalogueItem
from requests_app import services
from requests_app.choices import ApprovalStatus, RequestState
from requests_app.models import Approval, RequestEvent, ServiceRequest
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    CostCentreFactory,
    EmployeeFactory,
    FormFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
MARKUP_MESSAGE = "Please enter plain text without HTML tags such as <script>."
REQUIRED = "This field is required."
UNKNOWN_PERSON = "No active employee with the personnel number “{}”."


@pytest.fixture
def form_item(org):
    """An item with one field of every type; the data owner (a person field) approves."""
    item = CatalogueItemFactory(
        name="Projektablage", slug="projektablage", service_owner=org.service_desk
    )
    fields = [
        ("title", FieldType.TEXT, {"max_length": 20}),
        ("room", FieldType.TEXT, {"pattern": r"[A-Z]-\d{3}", "required": False}),
        ("notes", FieldType.LONG_TEXT, {"required": False}),
        ("count", FieldType.NUMBER, {"min_value": Decimal("1"), "max_value": Decimal("10")}),
        ("start", FieldType.DATE, {}),
        ("size", FieldType.CHOICE, {"choices": "S\nM\nL"}),
        ("extras", FieldType.MULTIPLE_CHOICE, {"choices": "Maus\nTastatur", "required": False}),
        ("confirm", FieldType.YES_NO, {}),
        ("optin", FieldType.YES_NO, {"required": False}),
        ("owner", FieldType.PERSON, {}),
    ]
    for position, (key, kind, extra) in enumerate(fields, start=1):
        FormFieldFactory(
            item=item,
            key=key,
            label=f"Label {key}",
            field_type=kind,
            position=position,
            **extra,
        )
    ApprovalPolicyStepFactory(
        item=item,
        position=1,
        approver_kind=ApproverKind.PERSON_FIELD,
        person_field_key="owner",
        label="Data owner",
    )
    return item


@pytest.fixture
def inactive_employee(org):
    return EmployeeFactory(department=org.department, personnel_number="inaktiv01", is_active=False)


def valid_data(item, org, **overrides):
    data = {
        "item_version": str(item.version),
        "f_title": "Ablage Projekt X",
        "f_room": "B-123",
        "f_notes": "Bitte bis Monatsende einrichten.",
        "f_count": "3",
        "f_start": "2030-05-02",
        "f_size": "M",
        "f_extras": ["Maus", "Tastatur"],
        "f_confirm": "yes",
        "f_optin": "on",
        "f_owner": org.head.personnel_number,
        "beneficiary": "",
        "cost_centre": "",
        "justification": "Neues Projekt im Hauptamt.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def counts():
    return (
        ServiceRequest.objects.count(),
        RequestEvent.objects.count(),
        Approval.objects.count(),
    )


def order_url(item):
    return f"/leistung/{item.slug}/bestellen/"


# (form key, posted value, message the user must see)
BAD_ANSWERS = [
    pytest.param("f_title", "", REQUIRED, id="text-required-missing"),
    pytest.param("f_title", "   ", REQUIRED, id="text-only-blanks"),
    pytest.param(
        "f_title",
        "x" * 21,
        "Ensure this value has at most 20 characters (it has 21).",
        id="text-over-max-length",
    ),
    pytest.param(
        "f_notes",
        "x" * 4001,
        "Ensure this value has at most 4000 characters (it has 4001).",
        id="long-text-over-default-max-length",
    ),
    pytest.param(
        "f_room", "123-B", "The answer does not have the required format.", id="pattern-mismatch"
    ),
    pytest.param(
        "f_room",
        "B-123 ; drop",
        "The answer does not have the required format.",
        id="pattern-must-match-whole-answer",
    ),
    pytest.param("f_title", SCRIPT, MARKUP_MESSAGE, id="script-in-text"),
    pytest.param("f_notes", f"Hallo {SCRIPT} Welt", MARKUP_MESSAGE, id="script-in-long-text"),
    pytest.param(
        "f_notes", '<img src=x onerror="alert(1)">', MARKUP_MESSAGE, id="tag-in-long-text"
    ),
    pytest.param("justification", SCRIPT, MARKUP_MESSAGE, id="script-in-justification"),
    pytest.param("f_title", "Ab\x00c", "Null characters are not allowed.", id="nul-in-text"),
    pytest.param("f_notes", "\x00", "Null characters are not allowed.", id="nul-in-long-text"),
    pytest.param(
        "justification", "ok\x00", "Null characters are not allowed.", id="nul-in-justification"
    ),
    pytest.param("f_owner", "p0\x00", "Null characters are not allowed.", id="nul-in-person"),
    pytest.param("f_count", "", REQUIRED, id="number-required-missing"),
    pytest.param(
        "f_count", "0", "Ensure this value is greater than or equal to 1", id="number-below-min"
    ),
    pytest.param(
        "f_count", "-5", "Ensure this value is greater than or equal to 1", id="number-negative"
    ),
    pytest.param(
        "f_count", "11", "Ensure this value is less than or equal to 10", id="number-above-max"
    ),
    pytest.param("f_count", "drei", "Enter a number.", id="number-not-a-number"),
    pytest.param("f_count", "NaN", "Enter a number.", id="number-nan"),
    pytest.param("f_count", "Infinity", "Enter a number.", id="number-infinity"),
    pytest.param("f_count", "3\x00", "Enter a number.", id="number-nul"),
    pytest.param(
        "f_count",
        "2.555",
        "Ensure that there are no more than 2 decimal places.",
        id="number-too-precise",
    ),
    pytest.param("f_start", "", REQUIRED, id="date-required-missing"),
    pytest.param("f_start", "2030-02-30", "Enter a valid date.", id="date-impossible"),
    pytest.param("f_start", "morgen", "Enter a valid date.", id="date-not-a-date"),
    pytest.param("f_start", "99999-01-01", "Enter a valid date.", id="date-year-out-of-range"),
    pytest.param("f_size", "", REQUIRED, id="choice-required-missing"),
    pytest.param(
        "f_size",
        "XL",
        "Select a valid choice. XL is not one of the available choices.",
        id="choice-not-an-option",
    ),
    pytest.param(
        "f_extras",
        ["Maus", "Drucker"],
        "Select a valid choice. Drucker is not one of the available choices.",
        id="multiple-choice-unknown-value",
    ),
    pytest.param("f_confirm", "", REQUIRED, id="yes-no-required-missing"),
    pytest.param(
        "f_confirm",
        "vielleicht",
        "Select a valid choice. vielleicht is not one of the available choices.",
        id="yes-no-not-yes-or-no",
    ),
    pytest.param("f_owner", "", REQUIRED, id="person-required-missing"),
    pytest.param("f_owner", "p99999", UNKNOWN_PERSON.format("p99999"), id="person-unknown"),
    pytest.param("f_owner", "inaktiv01", UNKNOWN_PERSON.format("inaktiv01"), id="person-inactive"),
    pytest.param(
        "f_owner",
        "Max Mustermann (p99999)",
        UNKNOWN_PERSON.format("p99999"),
        id="person-name-uid-unknown",
    ),
    pytest.param(
        "f_owner",
        "Ina Aktiv (inaktiv01)",
        UNKNOWN_PERSON.format("inaktiv01"),
        id="person-name-uid-inactive",
    ),
    pytest.param(
        "beneficiary", "niemand", UNKNOWN_PERSON.format("niemand"), id="beneficiary-unknown"
    ),
    pytest.param(
        "beneficiary",
        "inaktiv01",
        UNKNOWN_PERSON.format("inaktiv01"),
        id="beneficiary-inactive",
    ),
    pytest.param(
        "cost_centre",
        "999999",
        "Select a valid choice. That choice is not one of the available choices.",
        id="cost-centre-unknown",
    ),
    pytest.param(
        "cost_centre",
        "abc",
        "Select a valid choice. That choice is not one of the available choices.",
        id="cost-centre-not-a-number",
    ),
]


@pytest.mark.usefixtures("inactive_employee")
@pytest.mark.parametrize(("key", "value", "message"), BAD_ANSWERS)
def test_bad_answer_through_order_page_saves_nothing(client, org, form_item, key, value, message):
    client.force_login(org.alice.user)
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org, **{key: value}))
    assert response.status_code == 400
    content = response.content.decode()
    assert escape(message) in content
    # The error summary is there and the field is marked.
    assert 'class="error-summary"' in content
    assert "has-error" in content
    assert counts() == before


@pytest.mark.usefixtures("inactive_employee")
@pytest.mark.parametrize(("key", "value", "message"), BAD_ANSWERS)
def test_bad_answer_through_order_form(org, form_item, key, value, message):
    form = OrderForm(
        valid_data(form_item, org, **{key: value}),
        item=form_item,
        requester_employee=org.alice,
    )
    assert not form.is_valid()
    assert any(message in error for error in form.errors[key])


def test_bad_answers_are_shown_again_and_escaped(client, org, form_item):
    """The user's other answers stay in the form; the offending one is never echoed as HTML."""
    client.force_login(org.alice.user)
    response = client.post(
        order_url(form_item), valid_data(form_item, org, f_title=SCRIPT, f_count="99")
    )
    content = response.content.decode()
    assert response.status_code == 400
    assert SCRIPT not in content
    assert escape(SCRIPT) in content
    assert "Ensure this value is less than or equal to 10" in content
    assert 'value="B-123"' in content  # another answer kept
    assert escape(MARKUP_MESSAGE) in content


def test_valid_order_creates_exactly_one_request(client, org, form_item):
    client.force_login(org.alice.user)
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org))
    assert response.status_code == 302
    assert ServiceRequest.objects.count() == before[0] + 1
    req = ServiceRequest.objects.get()
    assert response.url == f"/antraege/{req.pk}/"
    assert req.requester == org.alice.user
    assert req.beneficiary == org.alice
    assert req.item == form_item
    assert req.item_version == form_item.version == 1
    assert req.answers == {
        "title": "Ablage Projekt X",
        "room": "B-123",
        "notes": "Bitte bis Monatsende einrichten.",
        "count": "3",
        "start": "2030-05-02",
        "size": "M",
        "extras": ["Maus", "Tastatur"],
        "confirm": True,
        "optin": True,
        "owner": {"uid": org.head.personnel_number, "name": org.head.display_name},
    }
    assert req.justification == "Neues Projekt im Hauptamt."
    snapshot = req.item_snapshot
    assert snapshot["version"] == 1
    assert snapshot["name"] == "Projektablage"
    assert [f["key"] for f in snapshot["fields"]] == [
        "title",
        "room",
        "notes",
        "count",
        "start",
        "size",
        "extras",
        "confirm",
        "optin",
        "owner",
    ]
    assert snapshot["approval_policy"][0]["approver_kind"] == ApproverKind.PERSON_FIELD
    # The person field's employee decides the data-owner step.
    assert req.state == RequestState.AWAITING_APPROVAL
    approval = req.approvals.get()
    assert approval.approver == org.head.user
    assert approval.status == ApprovalStatus.PENDING
    assert list(req.events.values_list("kind", flat=True)) == [
        "create",
        "submit",
        "start_approval",
    ]
    follow = client.get(response.url)
    assert "has been placed" in follow.content.decode()


def test_optional_fields_may_stay_empty(client, org, form_item):
    client.force_login(org.alice.user)
    data = valid_data(
        form_item, org, f_room="", f_notes="", f_extras=None, f_optin=None, justification=""
    )
    response = client.post(order_url(form_item), data)
    assert response.status_code == 302
    answers = ServiceRequest.objects.get().answers
    assert answers["room"] == ""
    assert answers["notes"] == ""
    assert answers["extras"] == []
    assert answers["optin"] is False


def test_required_yes_no_accepts_no(client, org, form_item):
    client.force_login(org.alice.user)
    response = client.post(order_url(form_item), valid_data(form_item, org, f_confirm="no"))
    assert response.status_code == 302
    assert ServiceRequest.objects.get().answers["confirm"] is False


def test_person_field_accepts_name_and_uid(client, org, form_item):
    client.force_login(org.alice.user)
    label = f"{org.head.display_name} ({org.head.personnel_number})"
    response = client.post(order_url(form_item), valid_data(form_item, org, f_owner=label))
    assert response.status_code == 302
    req = ServiceRequest.objects.get()
    assert req.answers["owner"] == {
        "uid": org.head.personnel_number,
        "name": org.head.display_name,
    }
    # Whatever name was typed, the stored name is the employee's.
    response = client.post(
        order_url(form_item),
        valid_data(form_item, org, f_owner=f"Falscher Name ({org.head.personnel_number})"),
    )
    assert response.status_code == 302
    assert ServiceRequest.objects.latest("pk").answers["owner"]["name"] == org.head.display_name


def test_answers_are_kept_even_when_the_item_changes_later(client, org, form_item):
    client.force_login(org.alice.user)
    client.post(order_url(form_item), valid_data(form_item, org))
    form_item.form_fields.filter(key="title").update(label="Neuer Titel")
    CatalogueItem.objects.filter(pk=form_item.pk).update(version=F("version") + 1, name="Neu")
    req = ServiceRequest.objects.get()
    assert req.item_version == 1
    assert req.item_snapshot["name"] == "Projektablage"
    assert req.item_snapshot["fields"][0]["label"] == "Label title"
    response = client.get(f"/antraege/{req.pk}/")
    content = response.content.decode()
    assert "Projektablage" in content
    assert "Label title" in content
    assert "Neuer Titel" not in content


# --- item version --------------------------------------------------------------------------


STALE_MESSAGE = "This service was changed while you were filling in the form."


@pytest.mark.parametrize("posted", ["1", "999", "0", "-1"], ids=["stale", "future", "zero", "neg"])
def test_stale_or_forged_item_version_is_refused_and_form_shows_current(
    client, org, form_item, posted
):
    CatalogueItem.objects.filter(pk=form_item.pk).update(version=2)
    form_item.refresh_from_db()
    client.force_login(org.alice.user)
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org, item_version=posted))
    assert response.status_code == 400
    content = response.content.decode()
    assert STALE_MESSAGE in content
    assert counts() == before
    # Re-rendered with the current version and the user's answers: sending again works.
    assert 'name="item_version" value="2"' in content
    assert 'value="Ablage Projekt X"' in content
    response = client.post(order_url(form_item), valid_data(form_item, org, item_version="2"))
    assert response.status_code == 302
    assert ServiceRequest.objects.get().item_version == 2


@pytest.mark.parametrize(
    ("posted", "message"),
    [("abc", "Enter a whole number."), ("", REQUIRED), (None, REQUIRED)],
    ids=["not-a-number", "empty", "missing"],
)
def test_garbage_item_version_is_refused_and_form_shows_current(
    client, org, form_item, posted, message
):
    client.force_login(org.alice.user)
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org, item_version=posted))
    assert response.status_code == 400
    content = response.content.decode()
    assert message in content
    assert counts() == before
    assert f'name="item_version" value="{form_item.version}"' in content


def test_item_changed_between_validation_and_saving(client, org, form_item, monkeypatch):
    """The version is checked again under the row lock; the form then offers the new version."""
    original = services.request_create

    def change_item_then_create(**kwargs):
        CatalogueItem.objects.filter(pk=form_item.pk).update(version=F("version") + 1)
        return original(**kwargs)

    monkeypatch.setattr(services, "request_create", change_item_then_create)
    client.force_login(org.alice.user)
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org))
    assert response.status_code == 400
    content = response.content.decode()
    assert "This service was changed" in content
    assert counts() == before
    assert 'name="item_version" value="2"' in content


# --- who may order what ----------------------------------------------------------------------


def test_restricted_item_is_refused_with_403_and_message(client, org):
    item = CatalogueItemFactory(slug="fachverfahren", audience=Audience.RESTRICTED)
    item.allowed_departments.add(org.department)
    client.force_login(org.outsider.user)
    before = counts()
    response = client.post(order_url(item), {"item_version": "1"})
    assert response.status_code == 403
    assert "This service is not available to you." in response.content.decode()
    assert client.get(order_url(item)).status_code == 403
    assert counts() == before
    # Someone of the listed department may order it.
    client.force_login(org.alice.user)
    assert client.post(order_url(item), {"item_version": "1"}).status_code == 302
    assert ServiceRequest.objects.count() == before[0] + 1


def test_restricted_item_open_to_a_group(client, org, group):
    item = CatalogueItemFactory(slug="gis", audience=Audience.RESTRICTED)
    planners = group("Planung")
    item.allowed_groups.add(planners)
    client.force_login(org.alice.user)
    assert client.post(order_url(item), {"item_version": "1"}).status_code == 403
    org.alice.user.groups.add(planners)
    assert client.post(order_url(item), {"item_version": "1"}).status_code == 302


@pytest.mark.parametrize("slug", ["ausgemustert", "gibt-es-nicht"])
def test_retired_or_unknown_item_is_404(client, org, slug):
    CatalogueItemFactory(slug="ausgemustert", is_active=False)
    client.force_login(org.alice.user)
    before = counts()
    response = client.post(f"/leistung/{slug}/bestellen/", {"item_version": "1"})
    assert response.status_code == 404
    assert client.get(f"/leistung/{slug}/bestellen/").status_code == 404
    assert counts() == before


def test_user_without_employee_record_cannot_order(client, org, form_item):
    client.force_login(UserFactory(username="extern"))
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org))
    assert response.status_code == 403
    assert "Only employees can order services." in response.content.decode()
    assert counts() == before


def test_anonymous_post_is_sent_to_login_and_saves_nothing(client, org, form_item):
    before = counts()
    response = client.post(order_url(form_item), valid_data(form_item, org))
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    assert counts() == before


# --- beneficiary and cost centre ---------------------------------------------------------------


def test_order_for_a_colleague(client, org, form_item):
    client.force_login(org.alice.user)
    response = client.post(
        order_url(form_item),
        valid_data(form_item, org, beneficiary=f"Bob ({org.bob.personnel_number})"),
    )
    assert response.status_code == 302
    req = ServiceRequest.objects.get()
    assert req.requester == org.alice.user
    assert req.beneficiary == org.bob
    assert req.cost_centre == org.bob.effective_cost_centre


def test_ordering_for_a_colleague_is_refused_when_the_item_forbids_it(client, org, form_item):
    form_item.orderable_for_others = False
    form_item.save()
    client.force_login(org.alice.user)
    page = client.get(order_url(form_item)).content.decode()
    assert 'name="beneficiary"' not in page
    before = counts()
    response = client.post(
        order_url(form_item), valid_data(form_item, org, beneficiary=org.bob.personnel_number)
    )
    assert response.status_code == 400
    assert "This service can only be ordered for yourself." in response.content.decode()
    assert counts() == before
    # Naming oneself, or nobody, is fine.
    for beneficiary in (org.alice.personnel_number, ""):
        response = client.post(
            order_url(form_item), valid_data(form_item, org, beneficiary=beneficiary)
        )
        assert response.status_code == 302
    assert set(ServiceRequest.objects.values_list("beneficiary", flat=True)) == {org.alice.pk}


def test_cost_centre_defaults_to_the_beneficiarys(client, org, form_item):
    own = CostCentreFactory(code="KS7777")
    org.bob.cost_centre = own
    org.bob.save()
    client.force_login(org.alice.user)
    client.post(order_url(form_item), valid_data(form_item, org))
    client.post(
        order_url(form_item), valid_data(form_item, org, beneficiary=org.bob.personnel_number)
    )
    mine, bobs = ServiceRequest.objects.order_by("pk")
    assert mine.beneficiary == org.alice
    assert mine.cost_centre == org.department.cost_centre
    assert bobs.beneficiary == org.bob
    assert bobs.cost_centre == own


def test_explicit_cost_centre_wins(client, org, form_item):
    other = CostCentreFactory(code="KS8888")
    client.force_login(org.alice.user)
    response = client.post(order_url(form_item), valid_data(form_item, org, cost_centre=other.pk))
    assert response.status_code == 302
    assert ServiceRequest.objects.get().cost_centre == other


def test_order_form_defaults_without_post(org, form_item):
    form = OrderForm(valid_data(form_item, org), item=form_item, requester_employee=org.alice)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["beneficiary"] == org.alice
    assert form.cleaned_data["cost_centre"] == org.alice.effective_cost_centre
    assert form.answers["owner"]["uid"] == org.head.personnel_number
    unbound = OrderForm(item=form_item, requester_employee=org.alice)
    assert unbound["item_version"].value() == form_item.version
    assert [bf.name for bf in unbound.dynamic_fields()] == [
        "f_" + f.key for f in form_item.form_fields.all()
    ]
