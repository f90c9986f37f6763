"""Settings for bench/bench_provisioning_bulk.py and the Celery workers it starts: the test
settings (DATABASE_URL, CELERY_BROKER_URL and DIRECTORY_* from the environment) with tasks
sent to the broker instead of run in place. Production's queues: the benchmark's workers
read only ``provisioning``; mail and the segregation-of-duties rescans a fulfilment
enqueues wait in their own queues for workers of their own, as in production, and are
purged afterwards."""

from tests.settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False  # no pidbox traffic with other workers
