"""Demo: Anna Schmidt's notebook of three years ago, fulfilled and handed back since: past its
retention period, so the next retention run (nightly, or ``manage.py retention``) anonymises it
while the controlling figures of that month stay the same (README, "Data protection").

Adds it only while the history holds nothing that old (a demo restarted after the run keeps
the anonymised request and gets no second one)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from catalogue.models import CatalogueItem, Employee
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app.choices import EventKind, RequestState
from requests_app.models import Rating, RequestEvent, ServiceRequest

AGE = timedelta(days=3 * 365)


class Command(BaseCommand):
    help = "Add Anna Schmidt's three-year-old notebook order (retention demo), if none that old."

    def handle(self, *args, **options):
        when = timezone.now() - AGE
        if ServiceRequest.objects.filter(created_at__lt=when + timedelta(days=30)).exists():
            return
        anna = Employee.objects.select_related("user", "department__cost_centre").get(
            personnel_number="m10042"
        )
        item = CatalogueItem.objects.get(slug="notebook")
        closed = when + timedelta(days=3)
        with transaction.atomic():
            (request,) = ServiceRequest.objects.bulk_create(
                [
                    ServiceRequest(
                        requester=anna.user, beneficiary=anna, item=item,
                        item_version=item.version, item_snapshot=item.snapshot(),
                        answers={"raum": "B 2.14"}, cost_centre=anna.effective_cost_centre,
                        justification="Homeoffice zwei Tage die Woche (Frau Schmidt)",
                        price_once=item.price_once, price_monthly=item.price_monthly,
                        fulfilment_group=item.service_owner, state=RequestState.FULFILLED,
                        created_at=when, submitted_at=when, approved_at=when + timedelta(days=1),
                        fulfilment_started_at=when + timedelta(days=2), closed_at=closed,
                        resolution_note="An Frau Schmidt ausgegeben",
                    )
                ]
            )  # fmt: skip
            RequestEvent.objects.bulk_create(
                [
                    RequestEvent(request=request, created_at=when, actor=anna.user,
                                 kind=EventKind.SUBMIT, from_state=RequestState.DRAFT,
                                 to_state=RequestState.SUBMITTED),
                    RequestEvent(request=request, created_at=closed, kind=EventKind.COMPLETE,
                                 from_state=RequestState.IN_FULFILMENT,
                                 to_state=RequestState.FULFILLED, comment="Ausgegeben"),
                ]
            )  # fmt: skip
            Rating.objects.create(
                request=request, score=5, comment="Schnell und freundlich, danke!",
                rated_by=anna.user, rated_at=closed + timedelta(days=1),
            )  # fmt: skip
            Entitlement.objects.create(
                holder=anna, item=item, request=request, state=EntitlementState.REVOKED,
                granted_at=closed, revoked_at=closed + timedelta(days=400),
                revoke_reason="Gerät zurückgegeben",
            )  # fmt: skip
        self.stdout.write(f"Request #{request.pk}: Anna Schmidt's notebook of {when:%Y-%m}")
