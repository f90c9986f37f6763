"""The worker watchdog (itportal/watchdog.py) brings back a worker that stopped consuming.

The trap (celery/celery#10302): every slot of a real worker runs a task, Redis goes away,
the tasks finish and their acknowledgements fail, Redis comes back empty. Nothing had read
the worker's sockets meanwhile, so it never noticed, and kombu still counts the two
messages as unacknowledged: the prefetch limit stays reached and the worker, alive, never
asks for a message again. With the watchdog the worker takes the next message: after its
consumer restarted in the process, or (WORKER_STALLED_RESTARTS_CONSUMER off) after it ended
with exit code 75 and its supervisor started it again, as systemd and scripts/demo.sh do.
"""

import os
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection

from itportal.celery import app
from itportal.watchdog import EXIT_STALLED, Verdict
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


@pytest.mark.parametrize(
    ("restart_consumer", "exits"),
    [
        ("true", []),  # the consumer restarts inside the process
        ("false", [EXIT_STALLED]),  # the worker ends, its supervisor starts a new one
    ],
)
def test_busy_worker_takes_work_again_after_redis_restarted_and_flushed(
    restart_consumer, exits, tmp_path
):
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
        "WORKER_STALLED_RESTARTS_CONSUMER": restart_consumer,
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "worker.log"
    worker = Worker("watchdog", queue, env, log, concurrency=2, restart_after=1)
    held = ["a", "b"]
    try:
        _publish(broker.url, queue, marks, *held)
        _wait_for([marks / f"{n}.started" for n in held], worker, "every slot busy")
        broker.stop()
        (marks / "release").touch()
        _wait_for([marks / f"{n}.done" for n in held], worker, "the tasks to finish")
        broker.start()  # empty: what it held is lost
        _publish(broker.url, queue, marks, "next")
        _wait_for([marks / "next.done"], worker, "the worker to take the next message")
    finally:
        worker.stop()
        broker.stop()
    text = log.read_text(errors="replace")
    assert "Couldn't ack" in text  # the trap was set
    assert "worker watchdog" in text  # and the watchdog, not luck, got the worker out
    assert worker.exits == exits


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
