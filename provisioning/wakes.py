"""One waiting wake-up message per group and direction for coalesced membership jobs.

Why: a batch (provisioning.batch) runs up to PROVISIONING_BATCH_SIZE due jobs of one group.
When every approval still sent a message of its own, a worker consumed thousands of
messages of jobs a batch had run already, each a Celery round trip (14 ms on the loaded
2-core machine): at 10,000 orders more than the batches themselves took.

How: after commit, a coalescible job's wake-up sets a key in the broker's Redis for its
group and direction (``SET NX`` with a TTL) and sends its message only if it set the key;
otherwise a message for the same group waits still and its worker takes this job along.
The worker clears the key (``taken``) before it claims the group's due jobs: a job
committed before the clear is claimed by that worker (or by the next batch it wakes when
its claim was full), one committed after it finds no key and sends its own message. A
message whose own job needs nothing any more runs another due job of its group instead
(``services.job_run``).

The outbox guarantee stays: every job row is committed before any of this. A lost message
(a broker flushed, a worker killed) or a key left behind (it expires after
WAKE_TTL_SECONDS) only delays its group's jobs until the sweeper sends them again, and the
sweeper always sends. In eager mode (tests, the demo) and on other brokers every job sends
its own message, as before.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from django.conf import settings

from provisioning import batch

logger = logging.getLogger(__name__)

WAKE_TTL_SECONDS = 30  # a key whose message got lost holds its group back this long at most
KEY_PREFIX = "itportal:provisioning:wake:"
_lock = threading.Lock()
_clients: dict[str, object] = {}


def _client():
    """The broker's Redis, or None when wake-ups are not shared (eager, another broker)."""
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    with _lock:
        client = _clients.get(url)
        if client is None:
            # Short timeouts: this runs after an approval's commit; on trouble the job
            # sends its own message instead.
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            _clients[url] = client
    return client


def key(job) -> str:
    """The key of the job's group and direction, exactly as ``batch.claim`` groups jobs
    (the DN as written: a batch claims only jobs with the same target)."""
    digest = hashlib.blake2b(job.target_dn.encode(), digest_size=16).hexdigest()
    return f"{KEY_PREFIX}{job.direction}:{digest}"


def to_send(jobs, *, client=None) -> list:
    """The jobs whose message must be sent: all but coalescible ones whose group has a
    message waiting already. ``client``: another broker's Redis (the fault suite's)."""
    client = client or _client()
    if client is None:
        return list(jobs)
    sending = []
    for job in jobs:
        if not batch.eligible(job):
            sending.append(job)
            continue
        try:
            if client.set(key(job), job.pk, nx=True, ex=WAKE_TTL_SECONDS):
                sending.append(job)
        except Exception:  # Redis unreachable: send; the message will fail or wake it
            logger.warning("wake-up key for job %s not set; sending", job.pk, exc_info=True)
            sending.append(job)
    return sending


def taken(job) -> None:
    """A worker is about to claim the due jobs of the job's group: from now on a new job of
    the group sends its own message."""
    client = _client()
    if client is None:
        return
    try:
        client.delete(key(job))
    except Exception:  # the key expires; until then the sweeper sends what waits
        logger.warning("wake-up key of job %s not cleared", job.pk, exc_info=True)
