"""The "done when" of issue #5: scripts/api_example.py, against the running portal."""

import subprocess
import sys
from pathlib import Path

import pytest

from catalogue.choices import ApproverKind, FieldType
from requests_app.choices import RequestState
from requests_app.models import ServiceRequest
from tests.api_support import token_key
from tests.factories import FormFieldFactory
from tests.workflow_support import make_item

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "api_example.py"


@pytest.fixture
def notebook(org):
    item = make_item(
        org.service_desk,
        {"approver_kind": ApproverKind.LINE_MANAGER},
        {"approver_kind": ApproverKind.COST_CENTRE_OWNER},
        name="Notebook",
        slug="notebook",
    )
    FormFieldFactory(item=item, key="room", label="Raum", field_type=FieldType.TEXT)
    FormFieldFactory(
        item=item, key="model", label="Modell", field_type=FieldType.CHOICE, choices="14\n16"
    )
    FormFieldFactory(item=item, key="dock", label="Dock", field_type=FieldType.YES_NO)
    FormFieldFactory(
        item=item, key="note", label="Notiz", field_type=FieldType.PERSON, required=False
    )
    return item


def run_script(live_server, *args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--base-url", live_server.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_script_orders_approves_twice_and_sees_it_fulfilled(live_server, org, notebook):
    result = run_script(
        live_server,
        "--item", "notebook",
        "--requester-token", token_key(org.alice.user),
        "--approver-token", token_key(org.manager.user),
        "--approver-token", token_key(org.head.user),
        "--admin-token", token_key(org.admin.user),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    service_request = ServiceRequest.objects.get()
    assert service_request.state == RequestState.FULFILLED
    assert service_request.requester == org.alice.user
    assert service_request.answers == {"room": "Per API bestellt", "model": "14", "dock": True,
                                       "note": None}  # fmt: skip
    decided_by = list(
        service_request.approvals.order_by("position").values_list(
            "decided_by__username", flat=True
        )
    )
    assert decided_by == ["manager", "head"]
    assert f"request #{service_request.pk} is fulfilled" in result.stdout


def test_script_fails_clearly_with_a_wrong_approver(live_server, org, notebook):
    result = run_script(
        live_server,
        "--item", "notebook",
        "--requester-token", token_key(org.alice.user),
        "--approver-token", token_key(org.bob.user),
    )  # fmt: skip
    assert result.returncode != 0
    assert "is not waiting for this approver" in result.stderr
    assert ServiceRequest.objects.get().state == RequestState.AWAITING_APPROVAL
