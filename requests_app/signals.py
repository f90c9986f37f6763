"""Signals that let higher apps (provisioning) react without requests_app importing them.

Both are sent inside the transaction of the change, so what receivers write commits
with it or not at all: ``request_approved`` lets an automation record its work (the
provisioning jobs) with the approval, and a crash or a lost broker message after the
commit cannot drop it; ``request_fulfilled`` lets provisioning write the entitlement, and
``requests_fulfilled`` does so for many requests fulfilled together (a provisioning batch),
so receivers can write and enqueue once for all of them.
Receivers enqueue work only through ``transaction.on_commit`` and never raise for
something a sweeper can do later.
"""

from django.dispatch import Signal

request_approved = Signal()  # kwargs: request_id
request_fulfilled = Signal()  # kwargs: service_request
requests_fulfilled = Signal()  # kwargs: service_requests (a list)
