"""A real Celery worker on the Redis broker delivers a webhook, retrying a failing receiver
with Celery's countdown as in production (the other webhook tests call the service
attempt by attempt). Uses the worker machinery of tests/test_worker_crash.py: the test's
own queue, the test database through the environment, eager mode off in the worker.
And the task meets a restarting database: it retries with backoff and delivers once.
"""

import os
import time
import uuid
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from tests.fault_support import Broker, Worker, database_url
from tests.webhook_support import Receiver, allow_local_receiver
from webhooks import services, signing
from webhooks.choices import AttemptOutcome, DeliveryState, EventType
from webhooks.models import WebhookDelivery
from webhooks.tasks import deliver_webhook

DEADLINE_SECONDS = 60


def _due_delivery(org, receiver) -> tuple[WebhookDelivery, str]:
    endpoint, secret = services.endpoint_create(
        url=receiver.url, events=[EventType.REQUEST_APPROVED], user=org.admin.user
    )
    with transaction.atomic():
        delivery = services.endpoint_send_test(endpoint_id=endpoint.pk, user=None)
        # The eager in-process send at commit finds it not due; the test sends it.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() + timedelta(days=1)
        )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return delivery, secret


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_and_delivers_once(org, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process shares the test database: PostgreSQL only")
    queue = f"itportal-test-webhooks-{uuid.uuid4().hex}"
    broker = Broker(settings.CELERY_BROKER_URL, queue)
    broker.purge()
    allow_local_receiver(settings)
    with Receiver() as receiver:
        receiver.queue(500, 503)  # then 200
        delivery, secret = _due_delivery(org, receiver)
        assert receiver.received == []

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "ITPORTAL_TEST_QUEUE": queue,
            "WEBHOOKS_ALLOW_HTTP": "true",
            "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
            "WEBHOOKS_RETRY_BASE_SECONDS": "0.5",
            "WEBHOOKS_RETRY_MAX_SECONDS": "2",
        }
        worker = Worker("hooks", queue, env, tmp_path / "worker.log")
        try:
            settings.CELERY_TASK_ALWAYS_EAGER = False  # this process publishes to the broker
            deliver_webhook.apply_async((str(delivery.pk),), queue=queue)
            deliver_webhook.apply_async((str(delivery.pk),), queue=queue)  # a duplicate
            deadline = time.monotonic() + DEADLINE_SECONDS
            while True:
                delivery.refresh_from_db()
                if delivery.state in (DeliveryState.DELIVERED, DeliveryState.FAILED):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"not delivered in time: {delivery.state}\n{worker.log_tail()}")
                time.sleep(0.2)
            time.sleep(1)  # let a stray duplicate run, if there were one
        finally:
            worker.stop()
            broker.purge()

    assert delivery.state == DeliveryState.DELIVERED, worker.log_tail()
    assert [(a.outcome, a.status_code) for a in delivery.attempt_log.order_by("started_at")] == [
        (AttemptOutcome.RETRY, 500),
        (AttemptOutcome.RETRY, 503),
        (AttemptOutcome.DELIVERED, 200),
    ]
    assert len(receiver.received) == 3
    for got in receiver.received:
        assert got.headers["itportal-delivery"] == str(delivery.pk)
        assert signing.verify(
            secret, got.body, got.headers["itportal-timestamp"], got.headers["itportal-signature"]
        )


@pytest.mark.django_db(transaction=True)
def test_delivery_retries_a_database_outage_and_delivers_once(org, settings):
    allow_local_receiver(settings)
    with Receiver() as receiver:
        delivery, _secret = _due_delivery(org, receiver)

        def restarting_server(execute, sql, params, many, context):
            # The claim of the delivery meets a server that is going down.
            if "FOR UPDATE" in sql and "webhooks_webhookdelivery" in sql:
                raise OperationalError("terminating connection due to administrator command")
            return execute(sql, params, many, context)

        with connection.execute_wrapper(restarting_server), pytest.raises(Retry) as retry:
            deliver_webhook.apply(args=(str(delivery.pk),))  # as a worker runs it
        assert receiver.received == []
        assert 0 < retry.value.when <= settings.WEBHOOKS_RETRY_MAX_SECONDS
        retry.value.sig.apply()  # the worker runs the retry after its countdown
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert len(receiver.received) == 1
