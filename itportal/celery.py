"""Celery application: configured from Django settings (CELERY_* names)."""

import gc
import os
import warnings

from celery import Celery, signals
from celery.exceptions import CPendingDeprecationWarning
from django_structlog.celery.steps import DjangoStructLogInitStep

from itportal.watchdog import WatchdogStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itportal.settings")

app = Celery("itportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Binds the request_id (and order) a task was published with to its log lines.
app.steps["worker"].add(DjangoStructLogInitStep)
# Brings back a worker whose consumer stopped taking messages (itportal/watchdog.py).
app.steps["consumer"].add(WatchdogStep)


@signals.celeryd_after_setup.connect(weak=False)
def _quiet_about_not_cancelling(**_kwargs) -> None:
    """Running tasks are not cancelled when the consumer restarts, on purpose (itportal/
    settings.py, CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS); Celery warns
    about that choice at every restart. After its logging set-up, which lets all of its
    deprecation warnings through."""
    warnings.filterwarnings(
        "ignore",
        message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
        category=CPendingDeprecationWarning,
    )


@signals.worker_process_init.connect(weak=False)
def _freeze_what_was_imported(**_kwargs) -> None:
    """A pool process starts with everything Django and Celery imported (~180,000 objects
    the garbage collector tracks), and every full collection walked them all: 0.16–0.23 s
    each on the 2-core machine. Provisioning batches allocate tens of thousands of objects
    each (rows, model instances, follow-ups) and so trigger one now and then. Frozen, a full
    collection looks only at what was allocated since; what is frozen was imported and
    lives as long as the process anyway."""
    gc.freeze()
