"""A real SMTP server for tests: aiosmtpd on a free loopback port, and Django's SMTP
backend pointed at it (``smtp`` fixture). Every accepted message is kept, parsed."""

import asyncio
import contextlib
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller


class SmtpSink:
    """aiosmtpd handler: keeps every accepted message; refuses the next ``refuse`` DATA."""

    def __init__(self):
        self.messages = []
        self.refuse = 0
        self.refusal = "451 4.3.0 Please try again later"
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refuse:
                self.refuse -= 1
                return self.refusal
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 2.0.0 OK"

    def received(self, mail) -> int:
        """How many copies of ``mail`` the server accepted."""
        return sum(1 for message in self.messages if message["Message-ID"] == mail.message_id)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_smtp_server() -> tuple[SmtpSink, Controller]:
    """A running aiosmtpd server on a free loopback port; ``controller.stop()`` ends it."""
    sink = SmtpSink()
    controller = Controller(
        sink, hostname="127.0.0.1", port=free_port(), loop=asyncio.new_event_loop()
    )
    controller.start()
    return sink, controller


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1, and Django's SMTP backend pointed at it."""
    sink, controller = start_smtp_server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield sink
    controller.stop()
