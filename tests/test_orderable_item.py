"""The order page's item (catalogue.selectors.orderable_item) and the entitlements page's
reads (provisioning.selectors) by statements compiled once: the same items, rows and
decisions as the ORM's queries they stand for."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404

from catalogue import selectors
from catalogue.choices import ApproverKind, Audience
from catalogue.models import CatalogueItem, FormRule
from provisioning import selectors as provisioning_selectors
from provisioning.models import Entitlement
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    DepartmentFactory,
    EmployeeFactory,
    FormFieldFactory,
    GroupFactory,
)

pytestmark = pytest.mark.django_db


def test_orderable_item_decides_as_orderable_by(org):
    """Open to everyone, to a department, to a group, to neither; retired; unknown: the
    item is given, refused (403) or not found (404) as ``orderable_by`` decides."""
    group = GroupFactory(name="Bauamt")
    org.bob.user.groups.add(group)
    everyone = CatalogueItemFactory(slug="everyone")
    by_department = CatalogueItemFactory(slug="by-department", audience=Audience.RESTRICTED)
    by_department.allowed_departments.add(org.department, DepartmentFactory())
    by_group = CatalogueItemFactory(slug="by-group", audience=Audience.RESTRICTED)
    by_group.allowed_groups.add(group)
    closed = CatalogueItemFactory(slug="closed", audience=Audience.RESTRICTED)
    closed.allowed_departments.add(DepartmentFactory())
    retired = CatalogueItemFactory(slug="retired", is_active=False)
    slugs = [item.slug for item in (everyone, by_department, by_group, closed, retired)]
    for employee in (org.alice, org.bob, org.outsider, None):
        orderable = set(CatalogueItem.objects.orderable_by(employee).values_list("slug", flat=True))
        for slug in [*slugs, "unknown"]:
            if slug in orderable:
                assert selectors.orderable_item(employee, slug).slug == slug
            elif slug in ("retired", "unknown"):
                with pytest.raises(Http404):
                    selectors.orderable_item(employee, slug)
            else:
                with pytest.raises(PermissionDenied):
                    selectors.orderable_item(employee, slug)
    assert {"everyone", "by-department", "by-group"} <= set(
        CatalogueItem.objects.orderable_by(org.bob).values_list("slug", flat=True)
    )


def test_orderable_item_keys_are_orderable_by(org):
    """The API lists' ids (one statement by the user's id) are ``orderable_by``'s items
    with their categories: open to everyone, to the department, to a group (by more than
    one way at once, still once), not closed or retired ones; none without an employee."""
    group, other_group = GroupFactory(name="Bauamt"), GroupFactory(name="Kämmerei")
    org.bob.user.groups.add(group, other_group)
    CatalogueItemFactory(slug="everyone")
    by_department = CatalogueItemFactory(slug="by-department", audience=Audience.RESTRICTED)
    by_department.allowed_departments.add(org.department, DepartmentFactory())
    by_group = CatalogueItemFactory(slug="by-group", audience=Audience.RESTRICTED)
    by_group.allowed_groups.add(group, other_group)
    by_both = CatalogueItemFactory(slug="by-both", audience=Audience.RESTRICTED)
    by_both.allowed_departments.add(org.department)
    by_both.allowed_groups.add(group)
    closed = CatalogueItemFactory(slug="closed", audience=Audience.RESTRICTED)
    closed.allowed_departments.add(DepartmentFactory())
    CatalogueItemFactory(slug="retired", is_active=False)
    for employee in (org.alice, org.bob, org.outsider):
        keys = selectors.orderable_item_keys(employee.user)
        expected = CatalogueItem.objects.orderable_by(employee).values_list("pk", "category_id")
        assert sorted(keys) == sorted(expected)
    assert {"by-department", "by-group", "by-both"} <= set(
        CatalogueItem.objects.filter(
            pk__in=[pk for pk, _ in selectors.orderable_item_keys(org.bob.user)]
        ).values_list("slug", flat=True)
    )
    no_employee = GroupFactory(name="Ohne").user_set.create(username="no-employee")
    assert selectors.orderable_item_keys(no_employee) == []
    assert selectors.orderable_item_keys(AnonymousUser()) == []


def test_orderable_item_has_its_form_and_policy_as_prefetched(org, django_assert_num_queries):
    """The form fields and approval steps (with their groups) are those the prefetches
    read, in their order, each knowing its item; reading them again costs no query, the
    form rules one (none if they were prefetched)."""
    item = CatalogueItemFactory(slug="ablage")
    for position, key in ((2, "second"), (1, "first"), (1, "also_first")):
        FormFieldFactory(item=item, key=key, position=position)
    ApprovalPolicyStepFactory(item=item, position=2, approver_kind=ApproverKind.LINE_MANAGER)
    ApprovalPolicyStepFactory(
        item=item, position=1, approver_kind=ApproverKind.GROUP, group=org.service_desk
    )
    FormRule.objects.create(item=item, position=1, kind="after", first_field="first")
    expected = CatalogueItem.objects.prefetch_related("form_fields", "approval_steps__group").get(
        pk=item.pk
    )
    got = selectors.orderable_item(org.alice, "ablage")
    with django_assert_num_queries(0):
        fields = list(got.form_fields.all())
        steps = list(got.approval_steps.all())
        groups = [step.group for step in steps]
        assert all(field.item is got for field in fields)
    assert [f.pk for f in fields] == [f.pk for f in expected.form_fields.all()]
    assert [s.pk for s in steps] == [s.pk for s in expected.approval_steps.all()]
    assert groups == [s.group for s in expected.approval_steps.all()]
    assert fields[0].__dict__.keys() == next(iter(expected.form_fields.all())).__dict__.keys()
    with django_assert_num_queries(1):
        rules = selectors.item_form_rules(got)
    assert [r.pk for r in rules] == list(item.form_rules.values_list("pk", flat=True))
    assert rules[0].item is got
    prefetched = CatalogueItem.objects.prefetch_related("form_rules").get(pk=item.pk)
    with django_assert_num_queries(0):
        assert [r.pk for r in selectors.item_form_rules(prefetched)] == [r.pk for r in rules]


def test_entitlement_holders_are_the_user_and_their_reports(org):
    def holders(employee):
        user = type(employee.user).objects.get(pk=employee.user_id)  # nothing cached
        return sorted(provisioning_selectors.entitlement_holders(user))

    assert holders(org.manager) == sorted([org.manager.pk, org.alice.pk, org.bob.pk])
    assert holders(org.alice) == [org.alice.pk]
    assert holders(org.head) == sorted([org.head.pk, org.manager.pk])
    boss = EmployeeFactory(department=org.department)
    org.alice.manager = boss
    org.alice.save()
    assert holders(boss) == sorted([boss.pk, org.alice.pk])


@pytest.mark.parametrize("order", [("-granted_at", "-id"), ("item__name", "id"), ("-state",)])
def test_entitlement_page_rows_as_the_orm_reads_them(
    org, manual_item, place_order, order, django_assert_num_queries
):
    """The page's rows by the kept statement: the values the ORM reads, in its order."""
    for employee in (org.alice, org.bob, org.alice):
        request = place_order(manual_item, employee.user)
        Entitlement.objects.create(holder=employee, item=manual_item, request=request)
    chosen = Entitlement._base_manager.filter(pk__in=Entitlement.objects.values("pk")[:2]).order_by(
        *order
    )
    expected = list(
        chosen.values(
            "id",
            "state",
            "granted_at",
            "expires_on",
            "request_id",
            item_name=F("item__name"),
            holder_username=F("holder__user__username"),
            holder_first_name=F("holder__user__first_name"),
            holder_last_name=F("holder__user__last_name"),
            department_name=F("holder__department__name"),
        )
    )
    with django_assert_num_queries(1):
        rows = provisioning_selectors.entitlement_list_rows(chosen)
    assert rows == expected and len(rows) == 2


def test_catalogue_sections_are_the_orderable_items_by_category(org):
    """The catalogue page's sections (one statement by the user's id) are ``orderable_by``'s
    items grouped by category in the catalogue's order, each with what its card shows;
    none without an employee."""
    from catalogue.models import Category

    group = GroupFactory(name="Bauamt")
    org.bob.user.groups.add(group)
    first = Category.objects.create(name="Zuerst", slug="zuerst", position=0, description="D")
    last = Category.objects.create(name="Zuletzt", slug="zuletzt", position=9)
    CatalogueItemFactory(slug="b-item", name="B", category=first, summary="S")
    CatalogueItemFactory(slug="a-item", name="A", category=first, price_monthly=3)
    by_group = CatalogueItemFactory(slug="by-group", audience=Audience.RESTRICTED, category=last)
    by_group.allowed_groups.add(group)
    by_both = CatalogueItemFactory(slug="by-both", audience=Audience.RESTRICTED, category=last)
    by_both.allowed_departments.add(org.department)
    by_both.allowed_groups.add(group)
    CatalogueItemFactory(slug="retired", is_active=False, category=first)
    for employee in (org.alice, org.bob, org.outsider):
        items = selectors.items_orderable_by(employee)
        expected = {}
        for item in items:
            category = item.category
            key = (category.slug, category.name, category.description)
            expected.setdefault(key, []).append(
                selectors.Card(
                    item.slug, item.name, item.summary, item.price_once, item.price_monthly
                )
            )
        sections = selectors.catalogue_sections(employee.user)
        assert [
            ((section.slug, section.name, section.description), list(section.cards))
            for section in sections
        ] == list(expected.items())
    slugs = [card.slug for s in selectors.catalogue_sections(org.bob.user) for card in s.cards]
    assert slugs[:2] == ["a-item", "b-item"] and {"by-group", "by-both"} <= set(slugs)
    no_employee = GroupFactory(name="Ohne").user_set.create(username="no-employee")
    assert selectors.catalogue_sections(no_employee) == ()
    assert selectors.catalogue_sections(AnonymousUser()) == ()


def test_item_count_is_bounded_count(org):
    """The item list's count by a statement written once counts as ``bounded_count``:
    by ids, with filters on the items' own columns, none, joined or searched ones (the
    ORM's), and at most the bound plus one."""
    from itportal.inputs import bounded_count

    for index in range(5):
        CatalogueItemFactory(slug=f"count{index}", is_active=index % 2 == 0)
    ids = list(CatalogueItem.objects.values_list("pk", flat=True))
    lists = [
        CatalogueItem.objects.filter(pk__in=ids),
        CatalogueItem.objects.filter(pk__in=ids, is_active=True),
        CatalogueItem.objects.filter(pk__in=ids[:2]).filter(fulfilment_kind="manual"),
        CatalogueItem.objects.filter(pk__in=[]),
        CatalogueItem.objects.filter(pk__in=ids, category__slug="none"),
        selectors.items_matching(CatalogueItem.objects.filter(pk__in=ids), "count"),
        CatalogueItem.objects.all(),
    ]
    for items in lists:
        for limit in (2, 10_000):
            assert selectors.item_count(items, limit) == bounded_count(items, limit)
    assert selectors.item_count(CatalogueItem.objects.filter(pk__in=ids), 2) == 3
