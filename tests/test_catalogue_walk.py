"""Issue 14's "done when", walked as one story through the real pages, on PostgreSQL and the
private slapd: an IT admin who is not superuser builds an item with a conditional field, a
named format and a provisioning action (dry run shown) in the portal editor and sees its
change history; an employee orders it in a cart with two other items; the IT admin puts a
joiner bundle together and a manager orders it for a new colleague in one submission."""

import pytest

from catalogue.models import Bundle, CatalogueItem
from provisioning.models import ProvisioningAction
from requests_app.models import CartLine, ServiceRequest, Submission
from tests.factories import CatalogueItemFactory, CategoryFactory, EmployeeFactory
from tests.provisioning_support import add_group, add_person, members
from tests.test_catalogue_editor import action_rows, post_data

pytestmark = pytest.mark.django_db

WHY = {
    "key": "why",
    "label": "Wozu extern?",
    "field_type": "text",
    "required": False,
    "condition_effect": "require",
    "condition_field": "kind",
    "condition_operator": "equals",
    "condition_value": "extern",
}
FIELDS = [
    {"key": "kind", "label": "Zugang", "field_type": "choice", "required": True,
     "choices": "intern\nextern"},
    WHY,
    {"key": "phone", "label": "Rückrufnummer", "field_type": "text", "required": True,
     "answer_format": "phone_number"},
]  # fmt: skip


def test_the_catalogue_story_of_issue_14(client, org, provisioning_directory):
    admin = org.admin.user
    assert not admin.is_superuser and not admin.is_staff
    category = CategoryFactory(name="Zugänge", slug="zugaenge")
    desk = org.service_desk
    mouse = CatalogueItemFactory(name="Maus", slug="maus", service_owner=desk)
    headset = CatalogueItemFactory(name="Headset", slug="headset", service_owner=desk)
    account = CatalogueItemFactory(name="Benutzerkonto", slug="konto", service_owner=desk)

    # 1. The IT admin builds the item in the portal editor.
    client.force_login(admin)
    data = post_data(
        org, category, FIELDS, steps=[{"approver_kind": "line_manager"}],
        name="VPN-Zugang", slug="vpn-zugang", fulfilment_kind="automated", grants_access="True",
    )  # fmt: skip
    response = client.post("/katalog/verwaltung/neu/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    vpn = CatalogueItem.objects.get(slug="vpn-zugang")
    assert vpn.form_fields.get(key="phone").answer_format == "phone_number"
    assert vpn.form_fields.get(key="why").condition_field == "kind"

    # 2. Its provisioning action, checked by a dry run against the directory, then saved.
    group = add_group(provisioning_directory, "vpn-users")
    add_person(provisioning_directory, org.alice)
    actions_url = f"/provisionierung/leistung/{vpn.pk}/aktionen/"
    rows = action_rows({"kind": "add_to_group", "target": group})
    response = client.post(
        actions_url, {**rows, "person": org.alice.personnel_number, "dry_run": "1"}
    )
    assert response.status_code == 200
    assert f"would add {org.alice.personnel_number} to {group}" in response.content.decode()
    assert not ProvisioningAction.objects.filter(item=vpn).exists()  # a dry run saves nothing
    assert members(provisioning_directory, group) == {provisioning_directory.bind_dn.lower()}
    assert client.post(actions_url, {**rows, "person": ""}).status_code == 302

    # 3. The change history: who did what, field by field.
    history = client.get(f"/katalog/leistung/{vpn.pk}/verlauf/")
    assert history.status_code == 200
    entries, form_entries = history.context["entries"], history.context["form_entries"]
    assert entries[0].actions_changed and entries[0].record.history_user == admin
    assert entries[-1].record.history_type == "+" and entries[-1].record.history_user == admin
    added = {(e.part, e.name) for e in form_entries if e.record.history_type == "+"}
    assert ("form field", "Wozu extern? (why)") in added
    assert ("form field", "Rückrufnummer (phone)") in added
    assert "approval step" in {part for part, _name in added}
    assert ("provisioning action", f"Add to group {group}") in added
    assert {e.record.history_user for e in form_entries} == {admin}

    # 4. An employee orders it in a cart with two other items.
    vpn.refresh_from_db()
    client.force_login(org.alice.user)
    order = {"item_version": vpn.version, "to_cart": "1", "f_kind": "extern",
             "f_phone": "0211 899-1234"}  # fmt: skip
    refused = client.post(f"/leistung/{vpn.slug}/bestellen/", order)
    assert refused.status_code == 400  # extern needs the reason: the condition
    assert "f_why" in refused.context["form"].errors
    refused = client.post(
        f"/leistung/{vpn.slug}/bestellen/", {**order, "f_why": "Bereitschaft", "f_phone": "Büro"}
    )
    assert refused.status_code == 400  # the named format
    assert "f_phone" in refused.context["form"].errors
    response = client.post(f"/leistung/{vpn.slug}/bestellen/", {**order, "f_why": "Bereitschaft"})
    assert response.status_code == 302
    for other in (mouse, headset):
        data = {"item_version": other.version, "to_cart": "1"}
        assert client.post(f"/leistung/{other.slug}/bestellen/", data).status_code == 302
    lines = list(CartLine.objects.filter(owner=org.alice.user).values_list("pk", flat=True))
    assert len(lines) == 3
    response = client.post("/warenkorb/", {"line": lines})
    assert response.status_code == 302
    submission = Submission.objects.get(requester=org.alice.user)
    placed = ServiceRequest.objects.filter(submission=submission).order_by("id")
    assert [r.item.slug for r in placed] == ["vpn-zugang", "maus", "headset"]
    assert placed[0].answers["why"] == "Bereitschaft"

    # 5. The IT admin puts the joiner bundle together in the editor ...
    client.force_login(admin)
    bundle_data = {
        "name": "Neue Mitarbeiterin / neuer Mitarbeiter", "slug": "neu", "description": "",
        "position": "0", "is_active": "on",
        "entries-TOTAL_FORMS": "3", "entries-INITIAL_FORMS": "0",
        "entries-0-item": str(account.pk), "entries-0-selected": "on",
        "entries-1-item": str(vpn.pk), "entries-1-selected": "on",
        "entries-2-item": str(headset.pk),
    }  # fmt: skip
    assert client.post("/katalog/verwaltung/pakete/neu/", bundle_data).status_code == 302
    bundle = Bundle.objects.get(slug="neu")
    entries = {e.item.slug: e for e in bundle.entries.select_related("item")}

    # ... and a manager orders it for a new colleague in one submission.
    newcomer = EmployeeFactory(department=org.department, manager=org.manager)
    client.force_login(org.manager.user)
    assert client.get("/paket/neu/bestellen/").status_code == 200
    chosen = [entries["konto"], entries["vpn-zugang"], entries["headset"]]
    post = {"chosen": [e.pk for e in chosen], "beneficiary": newcomer.personnel_number}
    for entry in chosen:
        post[f"e{entry.pk}-item_version"] = entry.item.version
    vpn_prefix = f"e{entries['vpn-zugang'].pk}-"
    post.update({f"{vpn_prefix}f_kind": "intern", f"{vpn_prefix}f_phone": "0211 899-1000"})
    response = client.post("/paket/neu/bestellen/", post)
    assert response.status_code == 302, response.content.decode()[:3000]
    joint = Submission.objects.get(requester=org.manager.user, bundle=bundle)
    ordered = ServiceRequest.objects.filter(submission=joint)
    assert ordered.count() == 3
    assert {r.beneficiary for r in ordered} == {newcomer}
