"""Signals that let higher apps (provisioning) react without requests_app importing them.

``request_approved`` is sent after the approving transaction committed: receivers
start their own work (and transactions). ``request_fulfilled`` is sent inside the
fulfilling transaction, so receivers' rows (the entitlement) commit with it.
"""

from django.dispatch import Signal

request_approved = Signal()  # kwargs: request_id
request_fulfilled = Signal()  # kwargs: service_request
