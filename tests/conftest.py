"""Shared fixtures: a small organisation with a manager chain, and helpers to place orders."""

import datetime

import pytest
from celery._state import _set_task_join_will_block
from django.contrib.auth.models import Group

from catalogue.choices import ApproverKind
from itportal import roles
from requests_app import services
from tests.factories import (
    ApprovalPolicyStepFactory,
    CatalogueItemFactory,
    CostCentreFactory,
    DepartmentFactory,
    EmployeeFactory,
    GroupFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _celery_join_allowed():
    """Eager tasks from several threads at once (the concurrency tests) leave Celery's
    process-global "join will block" flag set: each thread's ``denied_join_result`` restores
    what another thread had set. Later tests would then refuse ``.get()`` on an eager result."""
    yield
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _session_refresh_quiet(request, monkeypatch):
    """The idle-session middleware saves the session once a minute. On a slow machine a
    test's warm-up and measured GETs can straddle that minute, and the measured one counts
    three more queries (savepoint, update, release); tests of the refresh itself are marked
    ``session_refresh``."""
    if request.node.get_closest_marker("session_refresh") is None:
        monkeypatch.setattr("accounts.middleware.IdleSessionMiddleware.REFRESH_SECONDS", 86400)


@pytest.fixture(autouse=True)
def _open_month_rolled_at_once(monkeypatch):
    """The roll-up leaves the open month to be read live in a day's first minutes
    (``rollup.OPEN_MONTH_MARGIN``, against transactions that straddle midnight; a test is
    one transaction). Tests that refresh the roll-up expect it rolled up and failed when
    they ran in those minutes (23:00-23:10 UTC in winter); the margin's own test sets it."""
    monkeypatch.setattr("metrics.controlling.rollup.OPEN_MONTH_MARGIN", datetime.timedelta(0))


@pytest.fixture(autouse=True)
def _second_factor_given(request, monkeypatch):
    """Test logins count as having given the second factor, so tests of other things need
    no authenticator; tests of the second factor itself are marked ``second_factor``."""
    if request.node.get_closest_marker("second_factor") is None:
        monkeypatch.setattr("accounts.second_factor.verification_needed", lambda request: False)


pytest_plugins = [
    "tests.samba_fixtures",
    "tests.directory_fixtures",
    "tests.api_support",
    "tests.mail_support",
    "tests.oidc_fixtures",
    "tests.hostile_support",
]


# Lines the tests record (``record_property(name, line)``) under these names, shown after the
# run: pytest-xdist captures what its workers print.
SUMMARIES = ("hostile input", "fault suite")


def pytest_terminal_summary(terminalreporter):
    reports = [report for group in terminalreporter.stats.values() for report in group]
    for title in SUMMARIES:
        lines = [
            value
            for report in reports
            if getattr(report, "when", "call") == "call"
            for name, value in getattr(report, "user_properties", ())
            if name == title
        ]
        if lines:
            terminalreporter.write_sep("-", title)
            for line in sorted(lines):
                terminalreporter.write_line(line)


class Org:
    """Department head → manager → two employees; IT admins; a service-owner group."""

    def __init__(self):
        self.it_admins = GroupFactory(name=roles.IT_ADMIN)
        self.controlling = GroupFactory(name=roles.CONTROLLING)
        self.service_desk = GroupFactory(name="Service Desk")
        self.cost_centre = CostCentreFactory(code="KS1000", name="Hauptamt")
        self.department = DepartmentFactory(code="FB10", cost_centre=self.cost_centre)
        self.head = EmployeeFactory(department=self.department, user__username="head")
        self.manager = EmployeeFactory(
            department=self.department, manager=self.head, user__username="manager"
        )
        self.alice = EmployeeFactory(
            department=self.department, manager=self.manager, user__username="alice"
        )
        self.bob = EmployeeFactory(
            department=self.department, manager=self.manager, user__username="bob"
        )
        self.cost_centre.owner = self.head
        self.cost_centre.save()
        self.admin = EmployeeFactory(
            department=self.department,
            user__username="admin",
            user__groups=[self.it_admins],
        )
        self.fulfiller = EmployeeFactory(
            department=self.department,
            user__username="desk",
            user__groups=[self.service_desk],
        )
        self.outsider = EmployeeFactory(department=DepartmentFactory(), user__username="outsider")


@pytest.fixture
def org(db):
    return Org()


@pytest.fixture
def manual_item(org):
    """An item fulfilled by the service desk that needs the line manager's approval."""
    item = CatalogueItemFactory(name="Notebook", slug="notebook", service_owner=org.service_desk)
    ApprovalPolicyStepFactory(item=item, position=1, approver_kind=ApproverKind.LINE_MANAGER)
    return item


@pytest.fixture
def place_order():
    def _place(item, requester, beneficiary=None, answers=None, cost_centre=None, **kwargs):
        beneficiary = beneficiary or requester.employee
        return services.request_create(
            requester=requester,
            item=item,
            item_version=item.version,
            beneficiary=beneficiary,
            cost_centre=cost_centre or beneficiary.effective_cost_centre,
            answers=answers or {},
            **kwargs,
        )

    return _place


@pytest.fixture
def group():
    def _group(name):
        return Group.objects.get_or_create(name=name)[0]

    return _group


__all__ = ["UserFactory"]
