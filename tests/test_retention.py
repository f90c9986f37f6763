"""Retention and anonymisation (issue 13, DSGVO Art. 5, 17): what is past its period loses its
personal data, everything controlling counts stays the same, and the audit trail stays
append-only except for the pseudonymisation of its people."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessLog
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.urls import URLPattern, reverse
from django.utils import timezone
from openpyxl import load_workbook

from api.controlling import report_views
from catalogue.models import Employee
from itportal import roles
from metrics.collectors import DatabaseCollector
from metrics.controlling import rollup
from metrics.controlling import urls as controlling_urls
from metrics.controlling.tables import RatingCommentTable
from privacy import retention
from privacy.models import Placeholder
from privacy.selectors import personal_data
from privacy.tasks import apply_retention
from provisioning.choices import EntitlementState
from provisioning.models import Entitlement
from requests_app import services
from requests_app.models import (
    Approval,
    ImmutableError,
    Rating,
    RequestEvent,
    ServiceRequest,
    Submission,
)
from runs.models import Run, RunState
from tests.api_support import token_client
from tests.factories import EmployeeFactory, UserFactory

pytestmark = pytest.mark.django_db

THREE_YEARS = timedelta(days=3 * 365)


def backdate(request, when, *, lead=timedelta(days=3)):
    """Move a closed request (and what hangs on it) back in time, as if it were that old."""
    request.refresh_from_db()
    changes = {"created_at": when, "submitted_at": when, "closed_at": when + lead}
    if request.approved_at:
        changes["approved_at"] = when + timedelta(hours=5)
    if request.fulfilment_started_at:
        changes["fulfilment_started_at"] = when + timedelta(days=1)
    ServiceRequest.objects.filter(pk=request.pk).update(**changes)
    Approval.objects.filter(request=request).exclude(decided_at=None).update(
        activated_at=when, decided_at=when + timedelta(hours=5)
    )
    Entitlement.objects.filter(request=request).update(granted_at=when + lead)
    Rating.objects.filter(request=request).update(rated_at=when + lead + timedelta(days=1))


class History:
    """Alice's notebook fulfilled three years ago (answers, justification, an approval
    comment, a rating comment, its entitlement revoked since); the outsider's order cancelled
    three years ago; Alice's second notebook fulfilled three years ago and still held; Bob's
    order of last week; Bob's order waiting for approval since three years."""

    def __init__(self, org, item, place_order):
        now = timezone.now()
        self.org = org
        self.old = self.fulfil(
            place_order(item, org.alice.user, answers={"room": "A 1.23"},
                        justification="Homeoffice von Frau Alice"),
            comment="Passt, Grüße an Alice",
        )  # fmt: skip
        services.request_rate(
            request_id=self.old.pk, user=org.alice.user, score=4, comment="Danke Herr Desk"
        )
        backdate(self.old, now - THREE_YEARS)
        joint = Submission.objects.create(requester=org.alice.user, created_at=now - THREE_YEARS)
        ServiceRequest.objects.filter(pk=self.old.pk).update(submission=joint)
        Entitlement.objects.filter(request=self.old).update(
            state=EntitlementState.REVOKED,
            revoked_at=now - THREE_YEARS + timedelta(days=200),
            revoke_reason="Alice wechselt ins Bauamt",
            revoked_by=org.admin.user,
        )

        self.rejected = place_order(item, org.outsider.user, answers={"room": "Z 9"})
        services.request_cancel(
            request_id=self.rejected.pk, user=org.outsider.user, comment="Doch nicht, Outsider"
        )
        backdate(self.rejected, now - THREE_YEARS - timedelta(days=40), lead=timedelta(days=1))

        self.held = self.fulfil(place_order(item, org.alice.user, answers={"room": "B 2"}))
        backdate(self.held, now - THREE_YEARS + timedelta(days=30))

        self.recent = self.fulfil(place_order(item, org.bob.user, answers={"room": "C 3"}))
        services.request_rate(
            request_id=self.recent.pk, user=org.bob.user, score=2, comment="Zu langsam"
        )
        backdate(self.recent, now - timedelta(days=10))

        self.open = place_order(item, org.bob.user, answers={"room": "D 4"})
        ServiceRequest.objects.filter(pk=self.open.pk).update(
            created_at=now - THREE_YEARS, submitted_at=now - THREE_YEARS
        )

    def fulfil(self, request, comment=""):
        org = self.org
        services.request_approve(request_id=request.pk, user=org.manager.user, comment=comment)
        services.request_take(request_id=request.pk, user=org.fulfiller.user)
        services.request_complete(
            request_id=request.pk, user=org.fulfiller.user, note="Ausgeliefert an Alice"
        )
        return request


@pytest.fixture
def history(org, manual_item, place_order):
    return History(org, manual_item, place_order)


def snapshot(request):
    request = ServiceRequest.objects.get(pk=request.pk)
    return {
        field.attname: getattr(request, field.attname)
        for field in ServiceRequest._meta.concrete_fields
    }


# --- what the run does ----------------------------------------------------------------------


def test_a_three_year_old_closed_request_is_anonymised(history):
    org = history.org
    untouched = {r.pk: snapshot(r) for r in (history.held, history.recent, history.open)}
    old_before = snapshot(history.old)

    counts = retention.retention_apply()

    assert counts["requests"] == 2  # the notebook and the rejected order
    old = ServiceRequest.objects.get(pk=history.old.pk)
    assert old.answers == {} and old.justification == "" and old.resolution_note == ""
    assert old.anonymised_at is not None and old.assignee_id is None
    # The anonymous person of the same department stands in for requester and beneficiary.
    assert old.beneficiary.department_id == org.department.pk
    assert Placeholder.objects.filter(user=old.requester, key=f"anonymous:{org.department.pk}")
    assert old.beneficiary.user_id == old.requester_id
    assert not old.beneficiary.is_active and not old.requester.has_usable_password()
    # What controlling counts is unchanged.
    for field in ("item_id", "cost_centre_id", "price_once", "price_monthly", "state",
                  "created_at", "submitted_at", "approved_at", "closed_at", "approval_steps",
                  "fulfilled_automatically", "item_snapshot", "fulfilment_group_id"):  # fmt: skip
        assert getattr(old, field) == old_before[field], field

    rating = Rating.objects.get(request=old)
    assert rating.comment == "" and rating.score == 4 and rating.rated_by_id == old.requester_id
    approval = Approval.objects.get(request=old)
    assert approval.comment == "" and approval.decided_by_id != org.manager.user_id
    entitlement = Entitlement.objects.get(request=old)
    assert entitlement.holder_id == old.beneficiary_id and entitlement.revoke_reason == ""
    assert entitlement.revoked_by_id != org.admin.user_id
    assert old.submission.requester_id != org.alice.user_id  # the joint order's link too
    events = RequestEvent.objects.filter(request=old)
    assert events.exists() and not events.exclude(comment="").exists()
    real = {org.alice.user_id, org.manager.user_id, org.fulfiller.user_id}
    assert not events.filter(actor_id__in=real).exists()
    # One stable pseudonym per person: the fulfiller's take and complete share one.
    fulfiller_actions = events.filter(kind__in=["take", "complete"])
    assert fulfiller_actions.values("actor_id").distinct().count() == 1

    rejected = ServiceRequest.objects.get(pk=history.rejected.pk)
    assert rejected.answers == {} and rejected.beneficiary.department_id == (
        org.outsider.department_id
    )
    for pk, before in untouched.items():
        assert snapshot(ServiceRequest(pk=pk)) == before
    # The recent request keeps its rating comment, the open one its people.
    assert Rating.objects.get(request=history.recent).comment == "Zu langsam"
    assert RequestEvent.objects.filter(request=history.open, actor=org.bob.user).exists()


def test_the_request_page_says_it_was_anonymised(client, history):
    retention.retention_apply()
    client.force_login(history.org.admin.user)
    page = client.get(f"/antraege/{history.old.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Anonymised on" in text and "A 1.23" not in text
    assert "Anonymised on" not in client.get(f"/antraege/{history.recent.pk}/").content.decode()


def test_rerun_is_a_no_op_and_dry_run_changes_nothing(history):
    due = retention.retention_due()
    assert due["requests"] == 2
    # The dry run: counts per kind, no change, no run record.
    before = {r.pk: snapshot(r) for r in ServiceRequest.objects.all()}
    out = io.StringIO()
    call_command("retention", "--dry-run", stdout=out)
    assert re.search(r"^requests\s+2\s+would be anonymised", out.getvalue(), re.M)
    assert {r.pk: snapshot(r) for r in ServiceRequest.objects.all()} == before
    assert not Run.objects.filter(name="retention").exists()
    assert not Placeholder.objects.exists()

    call_command("retention", stdout=io.StringIO(), verbosity=0)
    run = Run.objects.get(name="retention")
    assert run.state == RunState.SUCCEEDED and "requests 2" in run.outcome
    # Monitoring sees when it last succeeded (an alert catches a run that stopped).
    gauges = {f.name: f for f in DatabaseCollector().collect()}
    last = gauges["itportal_run_last_success_timestamp_seconds"].samples
    assert [(s.labels["run"], s.value) for s in last] == [
        ("retention", run.finished_at.timestamp())
    ]
    after = {r.pk: snapshot(r) for r in ServiceRequest.objects.all()}
    placeholders = set(Placeholder.objects.values_list("pk", flat=True))

    assert set(retention.retention_due().values()) == {0}
    assert set(apply_retention.apply().get().values()) == {0}
    assert {r.pk: snapshot(r) for r in ServiceRequest.objects.all()} == after
    assert set(Placeholder.objects.values_list("pk", flat=True)) == placeholders


def test_batches_cover_every_row(history, settings):
    settings.RETENTION_BATCH_SIZE = 1
    assert retention.retention_apply()["requests"] == 2
    assert retention.retention_due()["requests"] == 0


def test_art_15_export_no_longer_holds_the_anonymised_data(client, history, group):
    officer = UserFactory(username="dsb", groups=[group(roles.DATA_PROTECTION)])
    client.force_login(officer)

    def export():
        response = client.get(
            "/datenschutz/auskunft/",
            {"person": history.org.alice.personnel_number, "format": "json"},
        )
        assert response.status_code == 200
        return response.content.decode()

    before = export()
    for text in ("A 1.23", "Homeoffice von Frau Alice", "Danke Herr Desk", "Passt, Grüße"):
        assert text in before
    retention.retention_apply()
    after = json.loads(export())
    text = json.dumps(after, ensure_ascii=False)
    for gone in ("A 1.23", "Homeoffice von Frau Alice", "Danke Herr Desk", "Passt, Grüße",
                 "Alice wechselt"):  # fmt: skip
        assert gone not in text
    assert history.old.pk not in {r["id"] for r in after["requests"]}
    assert history.old.pk not in {r["request"] for r in after["audit_records"]}
    # What is still within its period is still there.
    assert history.held.pk in {r["id"] for r in after["requests"]}
    assert "B 2" in text


def test_audit_records_stay_append_only_except_for_pseudonyms(history):
    event = RequestEvent.objects.filter(request=history.recent).first()
    with pytest.raises(ImmutableError):
        RequestEvent.objects.filter(pk=event.pk).update(comment="")
    retention.retention_apply()
    pseudonym = Placeholder.objects.filter(key__startswith="pseudonym:").first().user_id
    refused = [
        # Without announcing it: the trigger refuses even the allowed change.
        ("UPDATE requests_app_requestevent SET actor_id = %s WHERE id = %s",
         [pseudonym, event.pk], False),
        # Announced, but to a real person, or another column, or a changed comment, or DELETE.
        ("UPDATE requests_app_requestevent SET actor_id = %s WHERE id = %s",
         [history.org.admin.user_id, event.pk], True),
        ("UPDATE requests_app_requestevent SET kind = 'cancel' WHERE id = %s", [event.pk], True),
        ("UPDATE requests_app_requestevent SET comment = 'x' WHERE id = %s", [event.pk], True),
        ("DELETE FROM requests_app_requestevent WHERE id = %s", [event.pk], True),
    ]  # fmt: skip
    for sql, params, announced in refused:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            if announced:
                cursor.execute("SELECT set_config('itportal.audit_pseudonymise', 'on', true)")
            cursor.execute(sql, params)
    # The narrow path itself works: only the pseudonymisation, announced, to a placeholder.
    assert (
        RequestEvent.objects.filter(pk=event.pk).pseudonymise(people={event.actor_id: pseudonym})
        == 1
    )
    event.refresh_from_db()
    assert event.actor_id == pseudonym


def test_the_trail_of_requests_under_way_keeps_its_people(history, settings):
    # Every record is past the period; those of the open request and of the held access stay.
    settings.RETENTION_AUDIT_PSEUDONYMISE_DAYS = -1
    settings.RETENTION_REQUESTS_DAYS = 5000  # the trail's own period, not the request's
    org = history.org
    counts = retention.retention_apply()
    done = RequestEvent.objects.filter(request__in=[history.old, history.rejected]).count()
    assert counts["requests"] == 0 and counts["audit_records"] == done > 0
    placeholders = Placeholder.objects.values("user_id")
    for kept in (history.open, history.held, history.recent):  # recent: its access is held
        events = RequestEvent.objects.filter(request=kept)
        assert events.exists() and not events.filter(actor__in=placeholders).exists()
    assert RequestEvent.objects.filter(request=history.open, actor=org.bob.user).exists()
    assert not RequestEvent.objects.exclude(request__in=[history.open, history.held,
                                                         history.recent]).exclude(
        actor__in=placeholders).exclude(actor=None).exists()  # fmt: skip
    assert retention.retention_due()["audit_records"] == 0


def test_other_kinds_past_their_period(org, history, settings):
    now = timezone.now()
    settings.RETENTION_REQUESTS_DAYS = 5000  # only the other kinds here
    Rating.objects.filter(request=history.recent).update(rated_at=now - timedelta(days=400))
    AccessLog.objects.create(username="alice", user_agent="x", ip_address="10.0.0.1",
                             http_accept="*", path_info="/login/")  # fmt: skip
    AccessLog.objects.update(attempt_time=now - timedelta(days=100))
    AccessAttempt.objects.create(username="bob", user_agent="x", ip_address="10.0.0.2",
                                 http_accept="*", path_info="/login/", get_data="",
                                 post_data="", failures_since_start=3)  # fmt: skip
    gone = EmployeeFactory(department=org.department, user__username="gegangen",
                           job_title="Sachbearbeiterin", is_active=False)  # fmt: skip
    gone.user.__class__.objects.filter(pk=gone.user_id).update(
        last_login=now - timedelta(days=400), date_joined=now - timedelta(days=900)
    )

    counts = retention.retention_apply()
    assert counts["rating_comments"] == 2  # the old notebook's and the recent one's
    assert counts["login_records"] == 1 and AccessAttempt.objects.count() == 1
    assert counts["inactive_people"] == 1
    gone.refresh_from_db()
    gone.user.refresh_from_db()
    assert gone.anonymised_at and gone.job_title == "" and gone.department_id == org.department.pk
    assert gone.user.username == f"anonym-p{gone.user_id}" and gone.user.last_name == ""
    assert gone.personnel_number == f"anonym-p{gone.pk}"
    assert not gone.user.has_usable_password()
    assert Rating.objects.get(request=history.recent).score == 2
    assert ServiceRequest.objects.get(pk=history.old.pk).anonymised_at is None
    assert set(retention.retention_due().values()) == {0}


# --- every controlling figure is the same before and after --------------------------------


def _page_text(html: str) -> str:
    """The page's figures and labels: the main content without markup; the rating comments
    (texts, not figures, and removed by design) and the form's choices left out."""
    main = html[html.index("<main") : html.index("</main>")]
    comments = str(RatingCommentTable.caption)
    main = "".join(
        part if comments not in part.split("</table>")[0] else part.split("</table>", 1)[1]
        for part in re.split(r"(?=<table\b)", main)
    )
    main = re.sub(r"<(select|form)\b.*?</\1>", "", main, flags=re.S)
    main = re.sub(r"<[^>]+>", " ", main)
    return re.sub(r"\s+", " ", main).strip()


def controlling_figures(client, api, history, org) -> dict:
    month = timezone.localdate().replace(day=1)
    first = (timezone.localdate() - THREE_YEARS - timedelta(days=120)).replace(day=1)
    variants = [
        {"period_from": f"{first:%Y-%m}", "period_to": f"{month:%Y-%m}"},
        {"period_from": f"{first:%Y-%m}", "period_to": f"{month:%Y-%m}",
         "department": org.department.pk},
        {"period_from": f"{first:%Y-%m}", "period_to": f"{month:%Y-%m}",
         "department": org.outsider.department_id},
        {"period_from": f"{first:%Y-%m}", "period_to": f"{month:%Y-%m}",
         "cost_centre": org.cost_centre.pk},
        {"period_from": f"{first:%Y-%m}", "period_to": f"{month:%Y-%m}", "breakdown": "department"},
        {"period_from": f"{first:%Y-%m}", "period_to": f"{month:%Y-%m}",
         "breakdown": "cost_centre"},
        {"history": "36"},
        {},
    ]  # fmt: skip
    figures = {}
    for pattern in controlling_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        fmts = ["csv", "xlsx"] if "fmt" in pattern.pattern.converters else [None]
        for fmt in fmts:
            url = reverse(f"controlling:{pattern.name}", kwargs={"fmt": fmt} if fmt else {})
            for params in variants:
                response = client.get(url, params)
                assert response.status_code == 200, (url, params)
                body = (
                    b"".join(response.streaming_content)
                    if response.streaming
                    else (response.content)
                )
                if fmt == "xlsx":
                    book = load_workbook(io.BytesIO(body))
                    text = [[c.value for c in row] for s in book for row in s.iter_rows()]
                elif response["Content-Type"].startswith("text/csv"):
                    text = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
                else:
                    text = _page_text(body.decode())
                figures[(url, tuple(sorted(params.items())))] = text
    for name, _view in report_views():
        for params in variants:
            response = api.get(f"/api/v1/controlling/{name}/", params)
            assert response.status_code == 200, (name, params, response.content)
            figures[(name, tuple(sorted(params.items())))] = response.json()
    return figures


@pytest.mark.parametrize("rolled_up", [False, True], ids=["live", "rolled-up"])
def test_every_controlling_page_and_export_shows_the_same_figures(
    client, org, history, settings, rolled_up
):
    """Read live, and read from the monthly roll-ups (metrics/controlling/rollup.py) computed
    before the run and again after it: the same figures either way."""
    # Rating comments are texts, not figures: they go by their own period (above).
    settings.RETENTION_RATING_COMMENTS_DAYS = 5000
    controller = EmployeeFactory(department=org.department, user__groups=[org.controlling])
    client.force_login(controller.user)
    api = token_client(controller.user)
    if rolled_up:
        assert rollup.refresh(budget_seconds=600)["computed"]
    before = controlling_figures(client, api, history, org)
    # The old months have something to count: the notebook's one-off price in the costs.
    costs = reverse("controlling:costs_export", kwargs={"fmt": "csv"})
    old_month = f"{timezone.localdate() - THREE_YEARS:%Y-%m}"
    rows = next(v for k, v in before.items() if k[0] == costs and len(k[1]) == 2)
    assert any(old_month in "".join(row) for row in rows), rows

    counts = retention.retention_apply()
    assert counts["requests"] == 2
    if rolled_up:
        rollup.refresh(budget_seconds=600)
        assert not rollup.months_to_compute()

    after = controlling_figures(client, api, history, org)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] == value, key


def test_the_demo_shows_anna_schmidts_old_request_anonymised():
    """make demo seeds Anna Schmidt's three-year-old notebook (seed_demo_retention); the
    retention run anonymises it, and the demo's next start adds no second one."""
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo_retention", stdout=io.StringIO())
    anna = Employee.objects.get(personnel_number="m10042")
    before = json.dumps(personal_data(anna), cls=DjangoJSONEncoder, ensure_ascii=False)
    assert "B 2.14" in before and "Schnell und freundlich" in before
    assert retention.retention_due()["requests"] == 1

    call_command("retention", stdout=io.StringIO(), verbosity=0)
    after = json.dumps(personal_data(anna), cls=DjangoJSONEncoder, ensure_ascii=False)
    assert "B 2.14" not in after and "Schnell und freundlich" not in after
    call_command("seed_demo_retention", stdout=io.StringIO())
    assert ServiceRequest.objects.count() == 1
    assert retention.retention_due()["requests"] == 0
