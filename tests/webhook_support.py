"""A real HTTP receiver on 127.0.0.1 for the webhook tests, and helpers around it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import AF_INET6


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    headers: dict = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict  # lower-case names
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Answers POSTs with the queued replies (200 when none is queued) and records them."""

    def __init__(self, path: str = "/hooks/itportal", *, host="127.0.0.1", tls=None):
        """``tls``: an ``ssl.SSLContext`` (server side) to answer HTTPS."""
        self.path = path
        self.scheme = "https" if tls is not None else "http"
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = receiver.replies.pop(0) if receiver.replies else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format, *args):
                pass

        server_class = ThreadingHTTPServer
        if ":" in host:
            server_class = type("Server6", (ThreadingHTTPServer,), {"address_family": AF_INET6})
        self.server = server_class((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    def queue(self, *replies: Reply | int) -> None:
        with self._lock:
            self.replies.extend(r if isinstance(r, Reply) else Reply(status=r) for r in replies)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def allow_local_receiver(settings) -> None:
    """Tests send plain HTTP to 127.0.0.1: both need the operators' explicit consent."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 10.0
    settings.WEBHOOKS_RETRY_MAX_SECONDS = 600.0
    settings.WEBHOOKS_MAX_ATTEMPTS = 5
    settings.WEBHOOKS_CONNECT_TIMEOUT = 2.0
    settings.WEBHOOKS_READ_TIMEOUT = 2.0
