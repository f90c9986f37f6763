"""Catalogue exchange: export → import → export is lossless; bad input changes nothing."""

import copy
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalogue.choices import ApproverKind, Audience, FieldType, FulfilmentKind
from catalogue.exchange import services
from catalogue.exchange.validation import (
    ExchangeError,
    check_document,
    parse_bytes,
    used_placeholders,
)
from catalogue.models import ApprovalPolicyStep, Bundle, CatalogueItem, Category, FormField
from provisioning.choices import ActionKind
from provisioning.models import ProvisioningAction
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    CategoryFactory,
    DepartmentFactory,
    FormFieldFactory,
    GroupFactory,
)
from tests.provisioning_support import add_group

pytestmark = pytest.mark.django_db

GROUP_BASE = "ou=groups,dc=musterstadt,dc=example"


def counts() -> dict[str, int]:
    through = CatalogueItem.allowed_groups.through
    departments = CatalogueItem.allowed_departments.through
    return {
        model.__name__: model.objects.count()
        for model in (
            Category,
            CatalogueItem,
            FormField,
            ApprovalPolicyStep,
            ProvisioningAction,
            through,
            departments,
        )
    }


def examples(document) -> dict[str, str]:
    """Map every placeholder to the value it had where it was exported."""
    return {n: document["placeholders"][n]["example"] for n in used_placeholders(document)}


def wipe_catalogue():
    Bundle.objects.all().delete()  # its items are protected while a bundle holds them
    ProvisioningAction.objects.all().delete()
    CatalogueItem.objects.all().delete()
    Category.objects.all().delete()


@pytest.fixture
def group_base(settings):
    # A group base without a server: DN values are checked for form and base only.
    settings.DIRECTORY = {**settings.DIRECTORY, "url": "", "group_base": GROUP_BASE}


@pytest.fixture
def demo(group_base):
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo_provisioning", stdout=StringIO())


@pytest.fixture
def rich(org, group_base):
    """One item using every kind of content and every kind of placeholder."""
    security = GroupFactory(name="IT-Sicherheit")
    department = DepartmentFactory(code="33", name="Bürgeramt")
    category = CategoryFactory(slug="zugaenge", name="Zugänge", description="Konten", position=3)
    CategoryFactory(slug="leer", name="Leere Kategorie", position=9)
    item = CatalogueItemFactory(
        slug="fachverfahren-zugang",
        name="Fachverfahren-Zugang",
        summary="Zugang zum Meldewesen",
        description="**Markdown** mit ${nicht_ersetzt}",
        category=category,
        service_owner=org.service_desk,
        fulfilment_kind=FulfilmentKind.AUTOMATED,
        price_once=Decimal("120.50"),
        price_monthly=Decimal("7.25"),
        audience=Audience.RESTRICTED,
        orderable_for_others=False,
        valid_until_field="bis",
        collect_on_leaving=True,
    )
    item.allowed_groups.set([security, org.it_admins])
    item.allowed_departments.set([department])
    FormFieldFactory(
        item=item, key="share", label="Laufwerk", field_type=FieldType.DIRECTORY_GROUP,
        position=1, directory_base=f"ou=fileshares,{GROUP_BASE}",
    )  # fmt: skip
    FormFieldFactory(
        item=item, key="rolle", label="Rolle", field_type=FieldType.CHOICE, position=2,
        choices="Lesen\n Schreiben \n\nAdmin", help_text="Welche Rolle?", required=False,
    )  # fmt: skip
    FormFieldFactory(
        item=item, key="anzahl", label="Anzahl", field_type=FieldType.NUMBER, position=3,
        min_value=Decimal("-1.5"), max_value=Decimal("10"),
    )  # fmt: skip
    FormFieldFactory(
        item=item, key="kennung", label="Kennung", field_type=FieldType.TEXT, position=3,
        pattern=r"^[a-z]{2}\d+$", max_length=12,
    )  # fmt: skip
    FormFieldFactory(item=item, key="pate", label="Pate", field_type=FieldType.PERSON, position=4)
    FormFieldFactory(item=item, key="bis", label="Bis", field_type=FieldType.DATE, position=5)
    ApprovalPolicyStepFactory(item=item, position=1, approver_kind=ApproverKind.LINE_MANAGER)
    ApprovalPolicyStepFactory(
        item=item, position=2, approver_kind=ApproverKind.GROUP, group=security, label="ISB"
    )
    ApprovalPolicyStepFactory(
        item=item, position=3, approver_kind=ApproverKind.PERSON_FIELD, person_field_key="pate"
    )
    ApprovalPolicyStepFactory(
        item=item, position=4, approver_kind=ApproverKind.GROUP_OWNER, person_field_key="share"
    )
    actions = [
        (ActionKind.CREATE_ACCOUNT, "", "mail = {{ beneficiary.mail }}\n"
         "manager = uid=m1,ou=people,dc=musterstadt,dc=example\n"
         "seeAlso = cn={{ beneficiary.uid }},ou=roles,dc=musterstadt,dc=example"),
        (ActionKind.ADD_TO_GROUP, f"cn=meldewesen,{GROUP_BASE}", ""),
        (ActionKind.ADD_TO_GROUP, "{{ answers.share }}", ""),
        (ActionKind.ADD_TO_GROUP, f"cn=mw-{{{{ answers.rolle }}}},ou=apps,{GROUP_BASE}", ""),
    ]  # fmt: skip
    for position, (kind, target, attributes) in enumerate(actions, start=1):
        ProvisioningAction.objects.create(
            item=item, position=position, kind=kind, target=target, attributes=attributes
        )
    return item


# --- export and round trip --------------------------------------------------------------


def test_export_replaces_local_names_by_placeholders(rich):
    document = services.catalogue_export()
    assert document["placeholders"] == {
        "department_33": {"kind": "department", "example": "33", "description": "Bürgeramt"},
        "directory_base_apps": {
            "kind": "directory_base", "example": f"ou=apps,{GROUP_BASE}", "description": "",
        },
        "directory_base_fileshares": {
            "kind": "directory_base", "example": f"ou=fileshares,{GROUP_BASE}", "description": "",
        },
        "directory_dn_m1": {
            "kind": "directory_dn", "example": "uid=m1,ou=people,dc=musterstadt,dc=example",
            "description": "",
        },
        "directory_dn_roles": {
            "kind": "directory_dn", "example": "ou=roles,dc=musterstadt,dc=example",
            "description": "",
        },
        "directory_group_meldewesen": {
            "kind": "directory_group", "example": f"cn=meldewesen,{GROUP_BASE}",
            "description": "",
        },
        "group_it_administration": {"kind": "group", "example": "IT-Administration",
                                    "description": ""},
        "group_it_sicherheit": {"kind": "group", "example": "IT-Sicherheit", "description": ""},
        "group_service_desk": {"kind": "group", "example": "Service Desk", "description": ""},
    }  # fmt: skip
    [item] = [i for i in document["items"] if i["slug"] == "fachverfahren-zugang"]
    assert [c["slug"] for c in document["categories"]] == ["leer", "zugaenge"]
    assert item["service_owner"] == "${group_service_desk}"
    assert item["allowed_groups"] == ["${group_it_administration}", "${group_it_sicherheit}"]
    assert item["allowed_departments"] == ["${department_33}"]
    assert item["price_once"] == "120.50" and item["price_monthly"] == "7.25"
    fields = {f["key"]: f for f in item["form_fields"]}
    assert fields["share"]["directory_base"] == "${directory_base_fileshares}"
    assert fields["rolle"]["choices"] == ["Lesen", "Schreiben", "Admin"]
    assert (fields["anzahl"]["min_value"], fields["anzahl"]["max_value"]) == ("-1.50", "10.00")
    # Same position: ordered by key.
    assert [f["key"] for f in item["form_fields"]] == [
        "share", "rolle", "anzahl", "kennung", "pate", "bis",
    ]  # fmt: skip
    assert [s["group"] for s in item["approval_steps"]] == [
        None, "${group_it_sicherheit}", None, None,
    ]  # fmt: skip
    targets = [a["target"] for a in item["provisioning_actions"]]
    assert targets == [
        "",
        "${directory_group_meldewesen}",
        "{{ answers.share }}",
        "cn=mw-{{ answers.rolle }},${directory_base_apps}",
    ]
    assert item["provisioning_actions"][0]["attributes"] == [
        {"attribute": "mail", "template": "{{ beneficiary.mail }}"},
        {"attribute": "manager", "template": "${directory_dn_m1}"},
        {"attribute": "seeAlso", "template": "cn={{ beneficiary.uid }},${directory_dn_roles}"},
    ]
    # Nothing local is left in the items: no DN, no group name outside a placeholder.
    text = json.dumps(document["items"], ensure_ascii=False)
    assert "dc=musterstadt" not in text and "Service Desk" not in text
    assert check_document(document) == document


def test_rich_item_round_trip_is_lossless(rich):
    first = services.catalogue_export()
    before = counts()
    wipe_catalogue()
    services.catalogue_import(document=first, mapping=examples(first))
    assert counts() == before
    assert services.catalogue_export() == first
    item = CatalogueItem.objects.get(slug="fachverfahren-zugang")
    exported_item = next(i for i in first["items"] if i["slug"] == item.slug)
    assert exported_item["collect_on_leaving"] is True and item.collect_on_leaving
    action = item.provisioning_actions.get(position=1)
    assert "manager = uid=m1,ou=people,dc=musterstadt,dc=example" in action.attributes
    assert item.provisioning_actions.get(position=4).target == (
        f"cn=mw-{{{{ answers.rolle }}}},ou=apps,{GROUP_BASE}"
    )


def test_a_file_without_collect_on_leaving_imports_items_as_not_collected(rich):
    document = services.catalogue_export()
    for item in document["items"]:
        del item["collect_on_leaving"]
    wipe_catalogue()
    services.catalogue_import(document=document, mapping=examples(document))
    assert CatalogueItem.objects.get(slug="fachverfahren-zugang").collect_on_leaving is False


def test_demo_round_trip_is_lossless(demo):
    first = services.catalogue_export()
    assert len(first["items"]) == CatalogueItem.objects.count() >= 30
    assert ProvisioningAction.objects.count() >= 3
    check_document(json.loads(services.dumps(first)))
    before = counts()
    wipe_catalogue()
    assert CatalogueItem.objects.count() == 0
    report = services.catalogue_import(document=first, mapping=examples(first))
    assert len(report.items_created) == before["CatalogueItem"]
    assert report.provisioning_actions == before["ProvisioningAction"]
    assert counts() == before
    assert services.catalogue_export() == first
    pools = {i["slug"]: i["licence_pool_size"] for i in first["items"] if i["licence_pool_size"]}
    assert len(pools) == 2  # Visio and Acrobat Pro keep their pools across the exchange
    assert (
        dict(
            CatalogueItem.objects.filter(licence_pool_size__isnull=False).values_list(
                "slug", "licence_pool_size"
            )
        )
        == pools
    )


def test_commands_round_trip(demo, tmp_path):
    out = StringIO()
    call_command("catalogue_export", stdout=out)
    path = tmp_path / "katalog.json"
    path.write_text(out.getvalue(), encoding="utf-8")
    first = json.loads(out.getvalue())
    before = counts()
    wipe_catalogue()
    maps = [f"{name}={value}" for name, value in examples(first).items()]
    result = StringIO()
    call_command("catalogue_import", str(path), "--dry-run", *[f"--map={m}" for m in maps],
                 stdout=result)  # fmt: skip
    assert result.getvalue().startswith("Dry run, nothing written.")
    assert CatalogueItem.objects.count() == 0
    call_command("catalogue_import", str(path), *[f"--map={m}" for m in maps], stdout=result)
    assert counts() == before
    again = StringIO()
    call_command("catalogue_export", stdout=again)
    assert again.getvalue() == out.getvalue()


def test_export_of_a_category_or_items(rich, org):
    other = CatalogueItemFactory(slug="monitor", service_owner=org.service_desk)
    out = StringIO()
    call_command("catalogue_export", "--category", "zugaenge", stdout=out)
    document = json.loads(out.getvalue())
    assert [i["slug"] for i in document["items"]] == ["fachverfahren-zugang"]
    assert [c["slug"] for c in document["categories"]] == ["zugaenge"]
    document = services.catalogue_export(item_slugs=["monitor"])
    assert [i["slug"] for i in document["items"]] == ["monitor"]
    assert [c["slug"] for c in document["categories"]] == [other.category.slug]
    assert document["placeholders"] == {
        "group_service_desk": {"kind": "group", "example": "Service Desk", "description": ""}
    }
    with pytest.raises(CommandError, match="gibt-es-nicht"):
        call_command("catalogue_export", "--item", "gibt-es-nicht", stdout=StringIO())


# --- mapping and conflicts ----------------------------------------------------------------


def test_placeholders_map_to_other_local_values(rich, org):
    document = services.catalogue_export(item_slugs=["fachverfahren-zugang"])
    wipe_catalogue()
    mapping = examples(document) | {
        "group_service_desk": "IT-Administration",
        "directory_group_meldewesen": f"cn=ewo-nutzer,ou=apps,{GROUP_BASE}",
    }
    services.catalogue_import(document=document, mapping=mapping)
    item = CatalogueItem.objects.get(slug="fachverfahren-zugang")
    assert item.service_owner == org.it_admins
    assert item.provisioning_actions.get(position=2).target == f"cn=ewo-nutzer,ou=apps,{GROUP_BASE}"


@pytest.fixture
def exported(rich):
    return services.catalogue_export(item_slugs=["fachverfahren-zugang"])


def test_existing_slug_skip_update_rename(rich, exported):
    rich.name = "Lokal geändert"
    rich.save()
    rich.form_fields.filter(key="rolle").delete()
    version = rich.version
    before = counts()

    report = services.catalogue_import(document=exported, mapping=examples(exported))
    assert report.items_skipped == ["fachverfahren-zugang"] and counts() == before
    rich.refresh_from_db()
    assert rich.name == "Lokal geändert"

    report = services.catalogue_import(
        document=exported, mapping=examples(exported), on_conflict="rename"
    )
    assert report.items_renamed == [("fachverfahren-zugang", "fachverfahren-zugang-2")]
    copy_ = CatalogueItem.objects.get(slug="fachverfahren-zugang-2")
    assert copy_.name == "Fachverfahren-Zugang" and copy_.form_fields.count() == 6

    report = services.catalogue_import(
        document=exported, mapping=examples(exported), on_conflict="update"
    )
    assert report.items_updated == ["fachverfahren-zugang"]
    rich.refresh_from_db()
    assert rich.name == "Fachverfahren-Zugang"
    assert rich.form_fields.count() == 6
    assert rich.version == version + 1
    assert CatalogueItem.objects.filter(slug__startswith="fachverfahren-zugang").count() == 2


def test_dry_run_reports_and_writes_nothing(rich, exported):
    wipe_catalogue()
    before = counts()
    report = services.catalogue_import(document=exported, mapping=examples(exported), dry_run=True)
    assert counts() == before
    assert report.items_created == ["fachverfahren-zugang"]
    assert (report.form_fields, report.approval_steps, report.provisioning_actions) == (6, 4, 4)
    real = services.catalogue_import(document=exported, mapping=examples(exported))
    assert (real.items_created, real.form_fields) == (report.items_created, report.form_fields)


# --- bad input: nothing written, a clear message with its place --------------------------


def problems_of(document, mapping=None, **kwargs) -> list[str]:
    before = counts()
    with pytest.raises(ExchangeError) as info:
        services.catalogue_import(
            document=document,
            mapping=examples(document) if mapping is None else mapping,
            **kwargs,
        )
    assert counts() == before
    return [str(p) for p in info.value.problems]


def broken(document, change):
    document = copy.deepcopy(document)
    change(document)
    return document


def test_wrong_format_version(exported):
    problems = problems_of(broken(exported, lambda d: d.update(format_version="2.0")))
    assert problems == [
        "$.format_version: The file has format version “2.0”; this portal reads version 1.0."
    ]


def test_missing_and_unknown_fields(exported):
    def change(d):
        del d["items"][0]["summary"]
        d["items"][0]["form_fields"][1]["colour"] = "red"
        d["extra"] = 1

    assert problems_of(broken(exported, change)) == [
        "$: unknown field(s): extra",
        "$.items[0]: required field(s) missing: summary",
        "$.items[0].form_fields[1]: unknown field(s): colour",
    ]


def test_unknown_field_type_and_approver_kind(exported):
    def change(d):
        d["items"][0]["form_fields"][0]["field_type"] = "signature"
        d["items"][0]["approval_steps"][0]["approver_kind"] = "mayor"

    problems = problems_of(broken(exported, change))
    assert problems[0].startswith(
        "$.items[0].approval_steps[0].approver_kind: “mayor” is not one of: line_manager"
    )
    assert problems[1].startswith(
        "$.items[0].form_fields[0].field_type: unknown field type “signature”; known types: text"
    )


def test_duplicate_slugs_and_keys(exported):
    def change(d):
        d["items"].append(copy.deepcopy(d["items"][0]))
        d["categories"].append(copy.deepcopy(d["categories"][0]))
        d["items"][0]["form_fields"][1]["key"] = "share"

    assert problems_of(broken(exported, change)) == [
        "$.categories: the category slug “zugaenge” appears twice",
        "$.items: the item slug “fachverfahren-zugang” appears twice",
        "$.items[0].form_fields: the field key “share” appears twice",
        # The second "share" is a choice field, so the group-owner step has no group field.
        "$.items[0].approval_steps[3].person_field_key: the order form has no directory_group "
        "field with the key “share”",
    ]


def test_undefined_and_misused_placeholders(exported):
    def change(d):
        d["items"][0]["service_owner"] = "${group_gibt_es_nicht}"
        d["items"][0]["allowed_groups"] = ["${department_33}"]

    assert problems_of(broken(exported, change)) == [
        "$.items[0].service_owner: the placeholder “group_gibt_es_nicht” is not declared",
        "$.items[0].allowed_groups[0]: the placeholder “department_33” is a department; "
        "here a group is needed",
    ]


def test_literal_directory_names_are_refused(exported):
    def change(d):
        d["items"][0]["provisioning_actions"][1]["target"] = f"cn=evil,{GROUP_BASE}"

    assert problems_of(broken(exported, change)) == [
        "$.items[0].provisioning_actions[1].target: the value “cn=evil,ou=groups,dc=musterstadt,"
        "dc=example” does not have the expected form",
    ]

    def change_attribute(d):
        d["items"][0]["provisioning_actions"][0]["attributes"][1]["template"] = (
            "uid=root,dc=evil,dc=example"
        )
        d["items"][0]["provisioning_actions"][0]["attributes"][2]["template"] = (
            "cn={{ beneficiary.uid }},ou=roles,dc=evil"
        )

    assert problems_of(broken(exported, change_attribute)) == [
        f"$.items[0].provisioning_actions[0].attributes[{k}].template: "
        "directory names must be placeholders, not literal DNs"
        for k in (1, 2)
    ]


def test_nul_characters_are_refused(exported):
    def change(d):
        d["items"][0]["name"] = "VPN\x00"
        d["items"][0]["form_fields"][0]["choices"] = ["a\x00b"]

    assert problems_of(broken(exported, change)) == [
        "$.items[0].name: contains a NUL character",
        "$.items[0].form_fields[0].choices[0]: contains a NUL character",
    ]


def test_model_rules_are_checked_and_roll_back_the_whole_import(rich, exported):
    document = copy.deepcopy(exported)
    good = copy.deepcopy(document["items"][0])
    good["slug"] = "zweites"
    document["items"].insert(0, good)
    document["items"][1]["form_fields"][3]["pattern"] = "([a-z"
    wipe_catalogue()
    problems = problems_of(document)
    assert len(problems) == 1
    assert problems[0].startswith(
        "$.items[1].form_fields[3].pattern: Not a valid regular expression"
    )
    assert not CatalogueItem.objects.filter(slug="zweites").exists()


def test_unmapped_and_forged_names(exported):
    mapping = examples(exported) | {
        "group_it_sicherheit": "",
        "group_service_desk": "Service Desk'; DROP TABLE auth_group; --",
        "department_33": "99",
    }
    del mapping["group_it_administration"]
    assert problems_of(exported, mapping) == [
        "$.placeholders.group_it_administration: no local value chosen",
        "$.placeholders.group_it_sicherheit: no local value chosen",
        "$.placeholders.department_33: there is no department with the code “99”",
        "$.placeholders.group_service_desk: there is no group named "
        "“Service Desk'; DROP TABLE auth_group; --”",
    ]
    assert Group.objects.filter(name="Service Desk").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"cn=vpn,{GROUP_BASE}\nchangetype: delete", "line breaks or control characters"),
        (f"cn=vpn\x00,{GROUP_BASE}", "line breaks or control characters"),
        (f"cn={{{{ answers.share }}}},{GROUP_BASE}", "templates or placeholders"),
        (f"cn=${{group_service_desk}},{GROUP_BASE}", "templates or placeholders"),
        ("cn=admins,ou=groups,dc=other,dc=example", "within the directory's group base"),
        ("cn=a)(objectClass=*", "not a valid DN"),
        ("just a name", "not a valid DN"),
        ("", "no local value chosen"),
    ],
)
def test_injection_looking_dns_are_refused(exported, value, message):
    mapping = examples(exported) | {"directory_group_meldewesen": value}
    [problem] = problems_of(exported, mapping)
    assert problem.startswith("$.placeholders.directory_group_meldewesen: ")
    assert message in problem


def test_directory_groups_must_exist_in_the_directory(exported, directory_settings, settings):
    assert settings.DIRECTORY["group_base"] == directory_settings.group_base
    base = directory_settings.group_base
    add_group(directory_settings, "meldewesen")
    mapping = {name: value.replace(GROUP_BASE, base) for name, value in examples(exported).items()}
    wipe_catalogue()
    forged = mapping | {"directory_group_meldewesen": f"cn=erfunden,{base}"}
    assert problems_of(exported, forged) == [
        f"$.placeholders.directory_group_meldewesen: the directory has no group cn=erfunden,{base}"
    ]
    services.catalogue_import(document=exported, mapping=mapping)
    action = ProvisioningAction.objects.get(position=2)
    assert action.target == f"cn=meldewesen,{base}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"x" * (2 * 1024 * 1024 + 1), "The file is larger than 2 MB."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is a binary file, not a JSON text file."),
        ('{"format_version": "1.0", "source": "Köln"}'.encode("latin-1"),
         "The file is not valid UTF-8 text (byte 38)."),
        (b"", "The file is empty."),
        (b'{"format_version": "1.0",}', "The file is not valid JSON: Expecting property name "
         "enclosed in double quotes (line 1, column 26)."),
        (b'{"a": 1, "a": 2}',
         "The file is not valid JSON: The key “a” appears twice in one object."),
        (b'{"a": NaN}', "The file is not valid JSON: NaN is not allowed in this format."),
        (b"[1, 2]", "$: The file must contain one JSON object."),
        (b"[" * 100000 + b"]" * 100000, "The file is nested too deeply."),
    ],
)  # fmt: skip
def test_unreadable_files(raw, message):
    with pytest.raises(ExchangeError) as info:
        parse_bytes(raw)
    assert [str(p) for p in info.value.problems] == [message]


def test_command_reports_problems_and_needed_placeholders(exported, tmp_path):
    path = tmp_path / "k.json"
    path.write_text(json.dumps(exported), encoding="utf-8")
    before = counts()
    with pytest.raises(CommandError) as info:
        call_command("catalogue_import", str(path), "--map", "group_service_desk=Nirgends")
    assert "Nothing was imported" in str(info.value)
    assert "$.placeholders.group_service_desk: there is no group named “Nirgends”" in str(
        info.value
    )
    assert "directory_group_meldewesen (directory_group)" in str(info.value)
    with pytest.raises(CommandError, match="unknown placeholders: erfunden"):
        call_command("catalogue_import", str(path), "--map", "erfunden=x")
    assert counts() == before


# --- pages -----------------------------------------------------------------------------


def upload(client, content: bytes, name="katalog.json"):
    return client.post(
        reverse("catalogue:exchange:upload"),
        {"file": SimpleUploadedFile(name, content, content_type="application/json")},
    )


def test_pages_are_for_it_admins_only(client, org, exported):
    client.force_login(org.alice.user)
    session = client.session
    session["catalogue_exchange"] = {"document": exported, "filename": "x.json"}
    session.save()
    for name in ("index", "export", "map", "preview"):
        assert client.get(reverse(f"catalogue:exchange:{name}")).status_code == 403, name
    for name in ("map", "preview", "cancel"):
        assert client.post(reverse(f"catalogue:exchange:{name}")).status_code == 403, name
    before = counts()
    assert upload(client, json.dumps(exported).encode()).status_code == 403
    assert counts() == before
    client.logout()
    response = client.get(reverse("catalogue:exchange:index"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_schema_is_public_and_valid(client):
    from jsonschema import Draft202012Validator

    response = client.get("/katalog/austausch/schema/1.0.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/schema+json"
    schema = json.loads(response.content)
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["format_version"] == {"const": "1.0"}


def test_export_download(client, org, rich):
    client.force_login(org.admin.user)
    response = client.get(reverse("catalogue:exchange:export"), {"categories": ["zugaenge"]})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="katalog-')
    document = json.loads(response.content)
    assert document == services.catalogue_export(category_slugs=["zugaenge"])
    response = client.get(reverse("catalogue:exchange:export"), {"items": ["gibt-es-nicht"]})
    assert response.status_code == 400


def test_upload_map_preview_apply(client, org, rich, exported):
    wipe_catalogue()
    client.force_login(org.admin.user)
    assert client.get(reverse("catalogue:exchange:map")).status_code == 302  # no file yet
    response = upload(client, json.dumps(exported).encode())
    assert response.status_code == 302 and response["Location"].endswith("/import/zuordnen/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"group_service_desk" in page.content and b"fachverfahren-zugang" in page.content

    form = {f"ph_{n}": v for n, v in examples(exported).items()} | {"on_conflict": "skip"}
    bad = form | {"ph_directory_group_meldewesen": "cn=x\nchangetype: delete"}
    response = client.post(reverse("catalogue:exchange:map"), bad)
    assert response.status_code == 400
    assert "line breaks or control characters" in response.content.decode()

    response = client.post(reverse("catalogue:exchange:map"), form)
    assert response.status_code == 302 and response["Location"].endswith("/import/vorschau/")
    before = counts()
    preview = client.get(response["Location"])
    assert preview.status_code == 200
    assert counts() == before  # the preview is a dry run
    assert "Items: 1 new" in preview.content.decode()

    response = client.post(reverse("catalogue:exchange:preview"))
    assert response.status_code == 302
    assert CatalogueItem.objects.filter(slug="fachverfahren-zugang").exists()
    assert "catalogue_exchange" not in client.session
    assert services.catalogue_export(item_slugs=["fachverfahren-zugang"]) == exported


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02binary", "This is a binary file"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"format_version": "0.9"}', "format version “0.9”"),
        (b"x" * (2 * 1024 * 1024 + 1), "larger than 2 MB"),
    ],
)
def test_bad_uploads_give_a_clear_page(client, org, content, message):
    client.force_login(org.admin.user)
    before = counts()
    response = upload(client, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert counts() == before
    assert "catalogue_exchange" not in client.session


def test_cancel_forgets_the_file(client, org, exported):
    client.force_login(org.admin.user)
    upload(client, json.dumps(exported).encode())
    assert "catalogue_exchange" in client.session
    index = client.get(reverse("catalogue:exchange:index")).content.decode()
    assert "An import of katalog.json is not finished yet." in index
    response = client.post(reverse("catalogue:exchange:cancel"))
    assert response.status_code == 302
    assert "catalogue_exchange" not in client.session


def test_export_queries_do_not_grow_with_the_catalogue(rich, org):
    def export_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            services.catalogue_export()
        return len(queries)

    few = export_queries()
    for n in range(5):
        item = CatalogueItemFactory(service_owner=org.service_desk)
        FormFieldFactory(item=item)
        ApprovalPolicyStepFactory(item=item, approver_kind=ApproverKind.GROUP, group=org.it_admins)
        ProvisioningAction.objects.create(
            item=item, position=1, kind=ActionKind.ADD_TO_GROUP, target=f"cn=g{n},{GROUP_BASE}"
        )
        item.allowed_groups.add(org.it_admins)
    assert export_queries() == few


def test_form_level_bad_input(client, org, exported):
    client.force_login(org.admin.user)
    response = client.post(reverse("catalogue:exchange:upload"), {})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    upload(client, json.dumps(exported).encode())
    form = {f"ph_{n}": v for n, v in examples(exported).items()}
    response = client.post(reverse("catalogue:exchange:map"), form | {"on_conflict": "merge"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    forged = form | {"on_conflict": "skip", "ph_group_service_desk": "Gibt es nicht"}
    response = client.post(reverse("catalogue:exchange:map"), forged)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert "mapping" not in client.session["catalogue_exchange"]
    # The preview needs a mapping first.
    assert client.get(reverse("catalogue:exchange:preview"))["Location"].endswith("/zuordnen/")
