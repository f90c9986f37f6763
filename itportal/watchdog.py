"""A liveness watchdog for Celery workers: a worker that stopped taking work is brought back.

Why: a busy worker whose broker (Redis) restarts while all its slots run tasks never notices
the loss — nothing reads its sockets then, and kombu's timers swallow the errors. The tasks
finish, their acknowledgements fail ("Couldn't ack ... ConnectionError"), kombu keeps
counting them as delivered, so the prefetch limit stays reached and the consumer never
asks for a message again, while the process looks alive (celery/celery#10302).

What: a thread in the worker's main process checks every ``WORKER_WATCHDOG_SECONDS``
whether messages wait in the worker's queues (asked through a connection of its own) while
the worker has a free slot and has received nothing since the last check. Once that has
held for ``WORKER_STALLED_AFTER_SECONDS``, the consumer is restarted inside the process, as
Celery does for a connection loss it notices itself. Tasks running then are not cancelled
(CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS is off): they finish and record
their outcome; a mail cut off halfway would end "uncertain" and unsent
(tests/test_mail_consumer_restart.py). If the next period shows no progress
either (or ``WORKER_STALLED_RESTARTS_CONSUMER`` is off), the worker ends (warm shutdown,
exit code 75) and its supervisor (systemd ``Restart=always``, scripts/demo.sh) starts a
new one. While the broker cannot be reached
there is no verdict: reconnecting is the consumer's own job then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

from celery import bootsteps, signals
from celery.worker import state
from django.conf import settings
from kombu.exceptions import ChannelError

logger = logging.getLogger(__name__)

EXIT_STALLED = 75  # EX_TEMPFAIL: the supervisor starts the worker again


class ConsumerStalled(ConnectionError):
    """Raised in the worker's event loop: the consumer takes the path of a lost connection."""


class _Received:
    """Task messages this process has received (only ever grows)."""

    count = 0

    @classmethod
    def seen(cls, **_kwargs) -> None:
        cls.count += 1


signals.task_received.connect(_Received.seen, weak=False, dispatch_uid="itportal-watchdog")


class Verdict:
    """The watchdog's reasoning, apart from threads and the broker."""

    OK, STALLED, RESTART, EXIT = "ok", "stalled", "restart", "exit"

    def __init__(self, stalled_after: float, received: int = 0):
        self.stalled_after = stalled_after
        self.received = received
        self.since: float | None = None  # since when the worker has been seen stalled
        self.remedies = 0  # consumer restarts tried since the worker last made progress

    def observe(
        self, *, now: float, received: int, waiting: int | None, reserved: int, slots: int
    ) -> str:
        """``received``: the message count now; ``waiting``: messages in the worker's
        queues, None when the broker could not be asked; ``reserved``: tasks the worker
        holds; ``slots``: how many it may hold."""
        progressed, self.received = received != self.received, received
        if progressed:
            self.remedies = 0
        if progressed or not waiting or reserved >= slots:
            self.since = None
            return self.OK
        if self.since is None:
            self.since = now
        if now - self.since < self.stalled_after:
            return self.STALLED
        self.since = now  # each remedy gets a full period to work
        self.remedies += 1
        return self.RESTART if self.remedies == 1 else self.EXIT


def _nothing() -> None:
    pass


def _raise_stalled() -> None:
    raise ConsumerStalled("worker watchdog: the consumer takes no messages")


class Watchdog(threading.Thread):
    """The checking thread of one worker process."""

    def __init__(
        self, consumer, *, interval: float, stalled_after: float, restart_consumer: bool = True
    ):
        super().__init__(name="itportal-worker-watchdog", daemon=True)
        self.consumer, self.interval = consumer, interval
        self.restart_consumer = restart_consumer and consumer.hub is not None
        self.verdict = Verdict(stalled_after, _Received.count)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.check()
            except Exception:  # never let the watchdog itself end: it is only a safety net
                logger.exception("worker watchdog: check failed")

    def queues(self) -> list[str]:
        task_consumer = getattr(self.consumer, "task_consumer", None)
        names = [q.name for q in getattr(task_consumer, "queues", None) or ()]
        return names or [q.name for q in self.consumer.app.amqp.queues.consume_from.values()]

    def waiting(self) -> int | None:
        """Messages ready in the worker's queues, through a connection of our own."""
        app = self.consumer.app
        try:
            with app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, timeout=5)
                channel = conn.default_channel
                total = 0
                for name in self.queues():
                    with contextlib.suppress(ChannelError):  # no such queue: nothing waits
                        total += channel.queue_declare(queue=name, passive=True).message_count
                return total
        except Exception as exc:  # the broker is down: no verdict
            logger.debug("worker watchdog: broker not reachable (%r)", exc)
            return None

    def check(self) -> None:
        slots = max(1, getattr(self.consumer.controller, "concurrency", None) or 1)
        outcome = self.verdict.observe(
            now=time.monotonic(),
            received=_Received.count,
            waiting=self.waiting(),
            reserved=len(state.reserved_requests),
            slots=slots,
        )
        if outcome == Verdict.RESTART and self.restart_consumer:
            logger.warning(
                "worker watchdog: messages wait but the consumer has taken none for %.0f s; "
                "restarting the consumer",
                self.verdict.stalled_after,
            )
            self.consumer.hub.call_soon(_raise_stalled)  # thread-safe; runs in the event loop
        elif outcome in (Verdict.RESTART, Verdict.EXIT):
            logger.error(
                "worker watchdog: messages wait but the consumer takes none; ending the worker "
                "(exit code %d) for its supervisor to start a new one",
                EXIT_STALLED,
            )
            self.end()

    def end(self) -> None:
        """A warm shutdown with our exit code, as Celery's SIGTERM handler does it."""
        state.should_stop = EXIT_STALLED  # the event loop looks at it on every round
        if self.consumer.hub is not None:
            self.consumer.hub.call_soon(_nothing)  # wakes the loop at once
        # An event loop that never comes round again: the plain signal, then the hard way.
        if self.stopped.wait(self.verdict.stalled_after):
            return
        os.kill(os.getpid(), signal.SIGTERM)
        if not self.stopped.wait(settings.CELERY_TASK_TIME_LIMIT + self.verdict.stalled_after):
            os._exit(EXIT_STALLED)


class WatchdogStep(bootsteps.StartStopStep):
    """Consumer bootstep: one watchdog thread per worker process, for its whole life."""

    requires = ("celery.worker.consumer.tasks:Tasks",)
    label = "itportal watchdog"

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.watchdog: Watchdog | None = None

    def start(self, parent) -> None:  # again after every reconnect: start once
        stalled_after = settings.WORKER_STALLED_AFTER_SECONDS
        if self.watchdog is not None or stalled_after <= 0:
            return
        self.watchdog = Watchdog(
            parent,
            interval=settings.WORKER_WATCHDOG_SECONDS,
            stalled_after=stalled_after,
            restart_consumer=settings.WORKER_STALLED_RESTARTS_CONSUMER,
        )
        self.watchdog.start()

    def shutdown(self, parent) -> None:
        if self.watchdog is not None:
            self.watchdog.stopped.set()
