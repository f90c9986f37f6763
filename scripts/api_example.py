#!/usr/bin/env python3
"""Order an item, approve it and see it fulfilled, using only the OpenAPI document and tokens.

Every URL comes from the document at /api/schema/ (by operationId), every answer of the
order form from the item's form definition there; no portal page is touched. Standard
library only, so it runs anywhere Python 3.11 runs:

    python3 scripts/api_example.py --base-url http://127.0.0.1:8000 --item notebook \\
        --requester-token itp_… --approver-token itp_… --admin-token itp_…

Tokens may also come from API_REQUESTER_TOKEN, API_APPROVER_TOKEN (comma-separated for
several steps) and API_ADMIN_TOKEN. Without an admin token the script waits for the
automation (directory provisioning) to fulfil the request. Exit code 0 when fulfilled.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request


class Api:
    """Calls operations by their operationId in the OpenAPI document."""

    def __init__(self, base_url: str, token: str, document: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.document = document or self.call_url("GET", "/api/schema/?format=json")
        self.operations = {
            operation["operationId"]: (method.upper(), path)
            for path, methods in self.document["paths"].items()
            for method, operation in methods.items()
            if isinstance(operation, dict) and "operationId" in operation
        }

    def as_user(self, token: str) -> Api:
        return Api(self.base_url, token, self.document)

    def call_url(self, method: str, url: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the portal given
            self.base_url + url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise SystemExit(f"{method} {url}: HTTP {exc.code}: {detail}") from exc
        return json.loads(raw) if raw else None

    def call(self, operation_id: str, body: dict | None = None, query: str = "", **path):
        method, template = self.operations[operation_id]
        url = re.sub(r"\{(\w+)\}", lambda m: str(path[m.group(1)]), template)
        return self.call_url(method, url + (f"?{query}" if query else ""), body)


def answer_for(field: dict):
    """A plausible answer for one form field, from its definition."""
    kind = field["field_type"]
    if kind in ("text", "long_text"):
        return "Per API bestellt"[: field.get("max_length") or None]
    if kind == "number":
        return field.get("min_value") or "1"
    if kind == "date":
        return (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    if kind == "choice":
        return field["choices"][0]
    if kind == "multiple_choice":
        return field["choices"][:1]
    if kind == "yes_no":
        return True
    return None  # person and directory-group fields need real data: left out if optional


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("API_BASE_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--item", required=True, help="slug of the catalogue item")
    parser.add_argument("--requester-token", default=os.environ.get("API_REQUESTER_TOKEN"))
    parser.add_argument(
        "--approver-token",
        action="append",
        default=[t for t in os.environ.get("API_APPROVER_TOKEN", "").split(",") if t],
        help="one per approval step, in order (repeat the option)",
    )
    parser.add_argument("--admin-token", default=os.environ.get("API_ADMIN_TOKEN"))
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for automation")
    parser.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an answer of the order form, e.g. a field with a pattern (repeat the option)",
    )
    args = parser.parse_args(argv)
    if not args.requester_token:
        parser.error("a requester token is needed")

    requester = Api(args.base_url, args.requester_token)
    item = requester.call("item_retrieve", slug=args.item)
    given = dict(pair.split("=", 1) for pair in args.answer if "=" in pair)
    answers = {}
    for field in item["form_fields"]:
        value = given.get(field["key"], answer_for(field))
        if value is not None:
            answers[field["key"]] = value
        elif field["required"]:
            raise SystemExit(f"Cannot answer the required field {field['key']!r} automatically.")
    order = requester.call(
        "request_create",
        {"item": item["slug"], "item_version": item["version"], "answers": answers},
    )
    request_id = order["id"]
    print(f"ordered {item['name']!r}: request #{request_id}, {order['state']}")

    for token in args.approver_token:
        approver = requester.as_user(token)
        waiting = approver.call("approval_list", query="limit=200")
        if request_id not in [r["id"] for r in waiting["results"]]:
            raise SystemExit(f"request #{request_id} is not waiting for this approver")
        current = approver.call("request_retrieve", id=request_id)
        step = next(a for a in current["approvals"] if a["status"] == "pending")
        order = approver.call(
            "request_approve",
            {"comment": "Genehmigt per API", "expected_approval": step["id"]},
            id=request_id,
        )
        print(f"approved step {step['position']} ({step['label'] or step['approver_kind']}): "
              f"{order['state']}")  # fmt: skip

    if order["state"] == "approved" and args.admin_token:
        admin = requester.as_user(args.admin_token)
        current = admin.call("request_retrieve", id=request_id)
        if "take" in current["actions"]:
            admin.call("request_take", {}, id=request_id)
            order = admin.call("request_complete", {"note": "Erledigt per API"}, id=request_id)
            print(f"fulfilled by hand: {order['state']}")
    deadline = time.monotonic() + args.wait
    while order["state"] not in ("fulfilled", "failed", "rejected", "cancelled"):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
        order = requester.call("request_retrieve", id=request_id)
    order = requester.call("request_retrieve", id=request_id)
    for event in order["timeline"]:
        actor = (event["actor"] or {}).get("username", "system")
        print(f"  {event['created_at']}  {event['kind']:<16} {actor}")
    print(f"request #{request_id} is {order['state']}")
    return 0 if order["state"] == "fulfilled" else 1


if __name__ == "__main__":
    sys.exit(main())
