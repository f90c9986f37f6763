"""A mail in flight when the worker's consumer restarts is sent exactly once.

The fault suite's Redis kind lost a mail now and then (tests/test_faults.py): it was being
sent when the mail worker's consumer restarted — because the worker saw its broker
connection drop, or because the worker watchdog (itportal/watchdog.py) restarted a
consumer that had stopped taking messages. Celery's restart terminates (SIGTERM) every
running task that acknowledges late, so the pool process died between committing the
attempt ("sending") and recording its outcome; the sweeper then marked the row "uncertain"
and, by design, nobody sent it again.

Here, with a real prefork worker, a real Redis, PostgreSQL and an SMTP server that holds
its answer to the mail until the test lets it go, the consumer restarts while the mail is
on the wire, both ways. The mail must arrive once and its row must say "sent"; the message
coming back (as Redis returns an unacknowledged one) must send nothing more.
"""

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from kombu import Connection

from itportal.celery import app
from notifications.choices import MailState
from notifications.models import OutgoingMail
from notifications.tasks import send_mail
from requests_app import services as request_services
from tests.fault_support import Broker, PrivateRedis, Worker, database_url
from tests.mail_support import SmtpSink, free_port

DEADLINE_SECONDS = 90  # a hang guard, not a timing assertion
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]


class HeldSink(SmtpSink):
    """Holds its answer to the greeting (``EHLO``) or to the mail's data (``DATA``) until
    ``release`` is set; ``arrived`` says a client waits there."""

    def __init__(self, hold: str):
        super().__init__()
        self.hold = hold
        self.arrived, self.release = threading.Event(), threading.Event()

    async def _held(self, command: str) -> None:
        if command == self.hold and not self.release.is_set():
            self.arrived.set()
            await asyncio.to_thread(self.release.wait, DEADLINE_SECONDS)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._held("EHLO")
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        await self._held("DATA")
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def held_smtp(request):
    from aiosmtpd.controller import Controller

    sink = HeldSink(getattr(request, "param", "DATA"))
    controller = Controller(
        sink, hostname="127.0.0.1", port=free_port(), loop=asyncio.new_event_loop()
    )
    controller.start()
    yield sink, controller.port
    sink.release.set()
    controller.stop()


def _wait(ready, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{worker.log_tail()}")
        time.sleep(0.05)


def _pool_processes(worker: Worker) -> list[int]:
    """The pool processes of a worker (children of its main process)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == worker.process.pid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def _hold(broker_url: str, queue: str, marks: Path, name: str) -> None:
    """A task that holds a worker slot until the test creates ``marks/release``."""
    with Connection(broker_url) as conn, conn.Producer() as producer:
        app.send_task(
            "tests.worker_tasks.hold", args=(str(marks), name), queue=queue, producer=producer
        )


def _log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _one_mail(org, manual_item, place_order) -> OutgoingMail:
    """A mail about Bob's approved order, written and not sent yet (no worker woke)."""
    req = place_order(manual_item, org.alice.user, beneficiary=org.bob)
    request_services.request_approve(request_id=req.pk, user=org.manager.user)
    sent = OutgoingMail.objects.filter(kind="request.approved", to=org.bob.user.email).get()
    return OutgoingMail.objects.create(
        kind=sent.kind, params=sent.params, recipient=sent.recipient, to=sent.to
    )


def _env(broker_url: str, smtp_port: int, queue: str, mail_queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ITPORTAL_TEST_QUEUE": queue,
        "ITPORTAL_TEST_MAIL_QUEUE": mail_queue,
        "ITPORTAL_TEST_SMTP_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "60",  # the server holds its answer; the restart must not end it
        "MAIL_RETRY_BASE_SECONDS": "0.5",
        "WORKER_WATCHDOG_SECONDS": "0.5",
        "WORKER_STALLED_AFTER_SECONDS": "3",
        "LANGUAGE_CODE": "en",
        "LOG_LEVEL": "WARNING",
    }


def _settled(mail: OutgoingMail) -> bool:
    mail.refresh_from_db()
    return mail.state not in (MailState.PENDING, MailState.SENDING, MailState.RETRYING)


@pytest.mark.parametrize("restart", ["connection_lost", "watchdog"])
def test_mail_on_the_wire_when_the_consumer_restarts_is_sent_exactly_once(
    restart,
    org,
    manual_item,
    place_order,
    held_smtp,
    settings,
    tmp_path,
):
    sink, smtp_port = held_smtp
    mail = _one_mail(org, manual_item, place_order)
    settings.CELERY_TASK_ALWAYS_EAGER = False  # this process publishes to the broker
    marks = tmp_path / "marks"
    marks.mkdir()
    broker = PrivateRedis(tmp_path)
    broker.start()
    queue = f"itportal-mail-restart-{uuid.uuid4().hex}"
    mail_queue = f"{queue}.mail"
    env = _env(broker.url, smtp_port, queue, mail_queue)
    log = tmp_path / "worker.log"
    # One worker for both queues: the mail and, on the other slot, a task the test holds.
    worker = Worker("mail", f"{mail_queue},{queue}", env, log, concurrency=2, restart_after=1)
    try:
        if restart == "watchdog":
            # Both slots busy (the mail on the wire, a held task) while Redis restarts: the
            # worker does not notice (celery/celery#10302). The held task ends, its
            # acknowledgement fails, messages wait, nothing comes: the watchdog restarts
            # the consumer while the mail is still on the wire.
            _hold(broker.url, queue, marks, "slot")
            _wait((marks / "slot.started").exists, "the held task to start", worker)
        Broker(broker.url, mail_queue).publish(send_mail, [str(mail.pk)])
        _wait(sink.arrived.is_set, "the mail to reach the SMTP server", worker)
        mail.refresh_from_db()
        assert mail.state == MailState.SENDING
        if restart == "watchdog":
            broker.stop()
            (marks / "release").touch()
            _wait((marks / "slot.done").exists, "the held task to finish", worker)
            broker.start()  # empty; the held task's acknowledgement failed meanwhile
            _hold(broker.url, queue, marks, "next")
            seen = "restarting the consumer"
        else:
            broker.restart(flush=True, down_seconds=1)
            seen = "Connection to broker lost"
        _wait(lambda: seen in _log(log), f"the consumer to restart ({seen!r})", worker)
        sink.release.set()
        _wait(lambda: _settled(mail), "the mail to settle", worker)
        # The message comes back (Redis returns an unacknowledged one): nothing more.
        Broker(broker.url, mail_queue).publish(send_mail, [str(mail.pk)])
        if restart == "watchdog":
            _wait((marks / "next.done").exists, "the worker to take work again", worker)
        _wait(lambda: Broker(broker.url, mail_queue).waiting() == 0, "the repeat", worker)
    finally:
        sink.release.set()
        worker.stop()
        broker.stop()
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1), (mail.last_error, _log(log))
    assert sink.received(mail) == 1
    assert worker.exits == []


@pytest.mark.parametrize("held_smtp", ["EHLO"], indirect=True)
def test_pool_process_stopped_before_the_handover_gives_the_attempt_back(
    org, manual_item, place_order, held_smtp, settings, tmp_path
):
    """SIGTERM reaches the pool process while it greets the server (a cold shutdown, a
    terminated task, a stop that signals the whole process group): nothing was handed
    over, so the row goes back to waiting instead of ending "uncertain", and the next
    attempt sends it once."""
    sink, smtp_port = held_smtp
    mail = _one_mail(org, manual_item, place_order)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    broker = PrivateRedis(tmp_path)
    broker.start()
    queue = f"itportal-mail-stop-{uuid.uuid4().hex}"
    mail_queue = f"{queue}.mail"
    log = tmp_path / "worker.log"
    env = _env(broker.url, smtp_port, queue, mail_queue)
    worker = Worker("mail", mail_queue, env, log, concurrency=1, restart_after=1)
    try:
        Broker(broker.url, mail_queue).publish(send_mail, [str(mail.pk)])
        _wait(sink.arrived.is_set, "the worker to greet the SMTP server", worker)
        (pool,) = _pool_processes(worker)
        os.kill(pool, signal.SIGTERM)

        def given_back() -> bool:
            mail.refresh_from_db()
            return mail.state == MailState.RETRYING

        _wait(given_back, "the attempt to be given back", worker)
        assert "handed to the mail server" in mail.last_error
        sink.release.set()
        # The killed task's message comes back at once (reject_on_worker_lost); the sweeper
        # would enqueue the row too. Either way: one more attempt, one mail.
        Broker(broker.url, mail_queue).publish(send_mail, [str(mail.pk)])
        _wait(lambda: _settled(mail), "the mail to be sent", worker)
    finally:
        sink.release.set()
        worker.stop()
        broker.stop()
    assert (mail.state, mail.attempts) == (MailState.SENT, 2), (mail.last_error, _log(log))
    assert sink.received(mail) == 1
