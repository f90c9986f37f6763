"""Brokers for tests: the Celery app pointed elsewhere, and a private redis-server.

Never the shared Redis: a test that stops or restarts a broker starts its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from itportal.celery import app


def free_port() -> int:
    """A port nobody listens on (once the probe is closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _reconnect() -> None:
    """Forget which pool to publish through: the next publish uses the current URL's
    (kombu keeps one pool per broker URL; the others stay open for later tests)."""
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def publishing_to(settings, url: str):
    """This process publishes tasks (not eager) to ``url`` for the duration."""
    previous = settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER
    environment = os.environ.get("CELERY_BROKER_URL")  # Celery prefers it to the setting
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"] = url
    _reconnect()
    try:
        yield
    finally:
        settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER = previous
        if environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = environment
        _reconnect()


def broker_down(settings):
    """Tasks are published to a broker that refuses connections."""
    return publishing_to(settings, f"redis://127.0.0.1:{free_port()}/0")


class PrivateRedis:
    """A redis-server of this test on a free port, without persistence: a restart loses
    everything in it, as a flushed broker does."""

    def __init__(self, directory: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [
            *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
        ]
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
