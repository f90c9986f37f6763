"""The worker watchdog (itportal/watchdog.py) brings back a worker that stopped consuming.

The trap (celery/celery#10302): every slot of a real worker runs a task, Redis goes away,
the tasks finish and their acknowledgements fail, Redis comes back empty. Nothing had read
the worker's sockets meanwhile, so it never noticed, and kombu still counts the two
messages as unacknowledged: the prefetch limit stays reached and the worker, alive, never
asks for a message again. With the watchdog the worker takes the next message.
"""

import os
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection

from itportal.celery import app
from itportal.watchdog import Verdict
from tests.fault_support import PrivateRedis, Worker

DEADLINE_SECONDS = 90  # a hang guard, not a timing assertion
pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")


def _publish(url: str, queue: str, marks: Path, *names: str) -> None:
    with Connection(url) as conn, conn.Producer() as producer:
        for name in names:
            app.send_task(
                "tests.worker_tasks.hold", args=(str(marks), name), queue=queue, producer=producer
            )


def _wait_for(paths: list[Path], worker: Worker, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{worker.log_tail()}")
        time.sleep(0.05)


def test_busy_worker_takes_work_again_after_redis_restarted_and_flushed(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    broker = PrivateRedis(tmp_path)
    broker.start()
    queue = f"itportal-watchdog-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "CELERY_BROKER_URL": broker.url,
        "ITPORTAL_TEST_QUEUE": queue,
        "WORKER_WATCHDOG_SECONDS": "0.5",
        "WORKER_STALLED_AFTER_SECONDS": "3",
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "worker.log"
    worker = Worker("watchdog", queue, env, log, concurrency=2, restart_after=1)
    try:
        _publish(broker.url, queue, marks, "a", "b")
        _wait_for([marks / "a.started", marks / "b.started"], worker, "both slots busy")
        broker.stop()
        (marks / "release").touch()
        _wait_for([marks / "a.done", marks / "b.done"], worker, "both tasks to finish")
        broker.start()  # empty: what it held is lost
        _publish(broker.url, queue, marks, "c")
        _wait_for([marks / "c.done"], worker, "the worker to take the next message")
    finally:
        worker.stop()
        broker.stop()
    text = log.read_text(errors="replace")
    assert "Couldn't ack" in text  # the trap was set
    assert "worker watchdog" in text  # and the watchdog, not luck, got the worker out
    # The consumer restarted inside the process; had it not helped, the worker would have
    # ended (exit code 75) and been started again by its supervisor.
    assert worker.exits in ([], [75])


def test_verdict_restarts_then_ends_only_a_worker_that_takes_nothing():
    verdict = Verdict(stalled_after=10, received=0)
    look = {"received": 0, "waiting": 5, "reserved": 0, "slots": 2}
    assert verdict.observe(now=0, **look) == Verdict.STALLED
    assert verdict.observe(now=9, **look) == Verdict.STALLED
    assert verdict.observe(now=10, **look) == Verdict.RESTART
    assert verdict.observe(now=15, **look) == Verdict.STALLED  # the remedy's period
    assert verdict.observe(now=20, **look) == Verdict.EXIT
    # Progress resets everything; a full worker, an empty queue or an unreachable broker
    # are no verdict.
    verdict = Verdict(stalled_after=10, received=0)
    assert verdict.observe(now=0, **look) == Verdict.STALLED
    assert verdict.observe(now=10, **{**look, "received": 1}) == Verdict.OK
    assert verdict.observe(now=30, **{**look, "received": 1, "reserved": 2}) == Verdict.OK
    assert verdict.observe(now=50, **{**look, "received": 1, "waiting": 0}) == Verdict.OK
    assert verdict.observe(now=70, **{**look, "received": 1, "waiting": None}) == Verdict.OK
    assert verdict.observe(now=80, **{**look, "received": 1}) == Verdict.STALLED
