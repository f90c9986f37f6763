"""factory-boy factories for tests: small, explicit organisation and catalogue data."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from catalogue.choices import ApproverKind, FieldType, FulfilmentKind
from catalogue.models import (
    ApprovalPolicyStep,
    CatalogueItem,
    Category,
    CostCentre,
    Department,
    Employee,
    FormField,
)
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: f"Vorname{n}")
    last_name = factory.Sequence(lambda n: f"Nachname{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("test-pass-123")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*extracted)


class CostCentreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostCentre

    # Not "KS…": tests use fixed codes such as KS1000 (the org fixture), which a long test
    # run's sequence would reach.
    code = factory.Sequence(lambda n: f"KF{n:05d}")
    name = factory.Sequence(lambda n: f"Kostenstelle {n}")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    code = factory.Sequence(lambda n: f"OE{n:04d}")
    name = factory.Sequence(lambda n: f"Fachbereich {n}")
    cost_centre = factory.SubFactory(CostCentreFactory)


class EmployeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Employee

    user = factory.SubFactory(UserFactory)
    personnel_number = factory.Sequence(lambda n: f"p{n:05d}")
    department = factory.SubFactory(DepartmentFactory)
    manager = None


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Kategorie {n}")
    slug = factory.Sequence(lambda n: f"kategorie-{n}")


class CatalogueItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CatalogueItem

    name = factory.Sequence(lambda n: f"Leistung {n}")
    slug = factory.Sequence(lambda n: f"leistung-{n}")
    category = factory.SubFactory(CategoryFactory)
    service_owner = factory.SubFactory(GroupFactory)
    fulfilment_kind = FulfilmentKind.MANUAL
    price_once = Decimal("10.00")
    price_monthly = Decimal("2.50")


class FormFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FormField

    item = factory.SubFactory(CatalogueItemFactory)
    key = factory.Sequence(lambda n: f"field_{n}")
    label = factory.Sequence(lambda n: f"Feld {n}")
    field_type = FieldType.TEXT
    required = True


class ApprovalPolicyStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalPolicyStep

    item = factory.SubFactory(CatalogueItemFactory)
    position = factory.Sequence(lambda n: n)
    approver_kind = ApproverKind.LINE_MANAGER


def request_row(item, employee, *, submitted, approved, closed, state=RequestState.FULFILLED,
                automatically=False):  # fmt: skip
    """An unsaved request with the timestamps given, for bulk_create in report tests."""
    return ServiceRequest(
        requester=employee.user,
        beneficiary=employee,
        item=item,
        item_version=item.version,
        item_snapshot=item.snapshot(),
        answers={},
        cost_centre=employee.department.cost_centre,
        price_once=item.price_once,
        price_monthly=item.price_monthly,
        fulfilment_group=item.service_owner,
        state=state,
        created_at=submitted,
        submitted_at=submitted,
        approved_at=approved,
        closed_at=closed,
        fulfilled_automatically=automatically,
    )
