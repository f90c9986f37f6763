"""Structured JSON logs: one order's path from the click through a real Celery worker to the
directory change, found by its request_id and its order number."""

import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid

import pytest
import structlog
from django.db import connection

from itportal import logs
from itportal.celery import app
from provisioning.choices import JobState
from provisioning.models import ProvisioningJob
from tests.fault_support import BASE_DIR, Broker, database_url
from tests.provisioning_support import add_person, members

DEADLINE_SECONDS = 60


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def use_routes(routes) -> None:
    """Route this process's tasks; the router Celery built at the first publish is replaced."""
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()


@pytest.fixture
def web_log():
    """What this process logs, rendered by the production formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    options = {key: value for key, value in logs.formatter("json").items() if key != "()"}
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(**options))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


@pytest.mark.django_db(transaction=True)
def test_one_search_finds_an_order_from_the_click_to_the_directory(
    org, provisioning_directory, vpn, place_order, client, settings, tmp_path, web_log
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process shares the test database: PostgreSQL only")
    item, group = vpn
    bob_dn = add_person(provisioning_directory, org.bob)
    order = place_order(item, org.alice.user, beneficiary=org.bob)

    queue = f"itportal-test-logs-{uuid.uuid4().hex}"
    broker = Broker(settings.CELERY_BROKER_URL, queue)
    broker.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker.url,
        "ITPORTAL_TEST_QUEUE": queue,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        **{
            f"DIRECTORY_{key.upper()}": value
            for key, value in provisioning_directory.config_kwargs().items()
        },
    }
    worker_log = tmp_path / "worker.log"
    with open(worker_log, "wb") as out:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "itportal", "worker", "-Q", queue),
                *("--pool=solo", "-n", f"logs-{queue}@%h", "--without-heartbeat"),
                *("--without-mingle", "--without-gossip", "-l", "info"),
            ],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # This process publishes every task to the test's queue, where only that worker reads.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    routes = app.conf.task_routes
    use_routes({"*": {"queue": queue}})
    try:
        client.force_login(org.manager.user)
        response = client.post(f"/antraege/{order.pk}/approve/", {"text": "ok"})
        assert response.status_code == 302
        job = ProvisioningJob.objects.get(request=order)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while job.state != JobState.SUCCEEDED:
            if time.monotonic() > deadline:
                pytest.fail(f"job not done in time: {job.state}\n{worker_log.read_text()[-3000:]}")
            time.sleep(0.2)
            job.refresh_from_db()
    finally:
        use_routes(routes)
        worker.terminate()
        worker.wait(20)
        broker.purge()
    assert bob_dn.lower() in members(provisioning_directory, group)

    web = json_lines(web_log.getvalue())
    finished = [
        line
        for line in web
        if line["event"] == "request_finished" and line["request"].endswith(f"/{order.pk}/approve/")
    ]
    assert len(finished) == 1, web
    click = finished[0]
    request_id = click["request_id"]
    assert click["order"] == order.pk
    assert click["code"] == 302
    decision = [
        line for line in web if line["event"] == "order.event" and line["kind"] == "approve"
    ]
    assert [(line["order"], line["request_id"]) for line in decision] == [(order.pk, request_id)]

    worker_lines = json_lines(worker_log.read_text())
    task = [
        line
        for line in worker_lines
        if line["event"] == "task_started" and line["task"].endswith("run_provisioning_job")
    ]
    assert task, worker_log.read_text()[-3000:]
    assert (task[0]["request_id"], task[0]["order"]) == (request_id, order.pk)
    change = [line for line in worker_lines if line["event"] == "directory.change"]
    assert len(change) == 1
    assert change[0]["request_id"] == request_id
    assert change[0]["task_id"] == task[0]["task_id"]
    assert (change[0]["order"], change[0]["job"], change[0]["account"]) == (
        order.pk,
        job.pk,
        org.bob.personnel_number,
    )
    assert change[0]["target"] == group
    assert change[0]["level"] == "info"
    assert "time" in change[0]


def test_probes_are_quiet_unless_they_fail(client, web_log):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz?check=coffee").status_code == 400
    lines = [
        line
        for line in json_lines(web_log.getvalue())
        if line["logger"] == "django_structlog.middlewares.request"
    ]
    assert [(line["event"], line["request"], line["code"]) for line in lines] == [
        ("request_finished", "GET /readyz?check=coffee", 400)
    ]
