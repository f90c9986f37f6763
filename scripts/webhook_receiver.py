#!/usr/bin/env python3
"""A minimal webhook receiver that verifies the portal's signatures (docs/webhooks.md).

    WEBHOOK_SECRET=whsec_… python3 scripts/webhook_receiver.py [--port 9000]

Answers 204 to a correctly signed message (once per Itportal-Delivery; repeats are
acknowledged without processing them again) and 401 to anything else, and prints one line
per message. Standard library only: copy it as the starting point of a real receiver.
"""

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_SECONDS = 300


def verify(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent) > TOLERANCE_SECONDS:  # refuse old (replayed) messages
        return False
    expected = hmac.new(secret.encode(), f"{sent}.".encode() + body, hashlib.sha256).hexdigest()
    return any(
        part.strip().startswith("v1=") and hmac.compare_digest(part.strip()[3:], expected)
        for part in signature.split(",")
    )


def make_handler(secret: str):
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            delivery = self.headers.get("Itportal-Delivery", "")
            if not verify(
                secret,
                body,
                self.headers.get("Itportal-Timestamp", ""),
                self.headers.get("Itportal-Signature", ""),
            ):
                print(f"refused {delivery or '-'}: bad signature", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            if delivery in seen:
                print(f"repeat  {delivery}", flush=True)
            else:
                seen.add(delivery)
                event = json.loads(body)
                print(f"event   {delivery} {event['type']} {json.dumps(event['data'])}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format, *args):
            pass

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        print("Set WEBHOOK_SECRET to the endpoint's secret (whsec_…).", file=sys.stderr)
        return 2
    server = HTTPServer((args.host, args.port), make_handler(secret))
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
