"""How provisioning reacts to the request workflow (requests_app never imports us)."""

import logging

from celery import signals as celery_signals
from django.db import transaction
from django.dispatch import receiver

from provisioning import services
from requests_app.signals import request_approved, request_fulfilled, requests_fulfilled

logger = logging.getLogger(__name__)


@receiver(request_approved)
def start_provisioning(sender, request_id: int, **kwargs) -> None:
    """Inside the approving transaction: the jobs commit with the approval."""
    try:
        services.provision_request(request_id=request_id)  # in a savepoint of its own
    except Exception:
        connection = transaction.get_connection()
        if not connection.in_atomic_block or connection.needs_rollback:
            raise  # the approval itself cannot commit: say so, never pretend it was saved
        # The approval stands; the sweeper provisions the request later.
        logger.exception("could not start provisioning of approved request %s", request_id)


@receiver(request_fulfilled)
def grant_entitlement(sender, service_request, **kwargs) -> None:
    services.entitlement_grant(service_request=service_request)


@receiver(requests_fulfilled)
def grant_entitlements(sender, service_requests, **kwargs) -> None:
    services.entitlements_grant(service_requests=service_requests)


@celery_signals.worker_process_shutdown.connect(weak=False)
def close_directory_connections(**kwargs) -> None:
    """A worker process ends (pool shrink, max-tasks-per-child, warm shutdown): unbind its
    directory connection instead of leaving the server to time the session out."""
    from provisioning.backends import reset_backends

    try:
        reset_backends()
    except Exception:  # the process ends anyway; never block that
        logger.warning("could not close the directory connection", exc_info=True)
