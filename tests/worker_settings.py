"""Settings for a real Celery worker started by a test (tests/test_worker_crash.py).

The test settings run tasks eagerly, whatever the environment says; a worker
subprocess must not. Everything else comes from tests.settings and the
environment the test passes (DATABASE_URL of the test database, the broker,
DIRECTORY_*). ``ITPORTAL_TEST_QUEUE`` is the test's own queue: every task the
worker publishes (the sweeper's re-enqueues, mail) goes there, so it never
reaches another worker on the same Redis; ``ITPORTAL_TEST_MAIL_QUEUE``, if set,
parks the mail notifications in a queue of their own that no worker reads.
"""

import os

from tests.settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("ITPORTAL_TEST_QUEUE", "celery")
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False  # no pidbox traffic with other workers
CELERY_IMPORTS = ("tests.worker_tasks",)  # tasks that hold a slot as long as a test wants
CELERY_TASK_ROUTES = {}  # not the production queues: those may have workers on this Redis
if os.environ.get("ITPORTAL_TEST_MAIL_QUEUE"):
    CELERY_TASK_ROUTES = {
        name: {"queue": os.environ["ITPORTAL_TEST_MAIL_QUEUE"]}
        for name in ("notifications.tasks.send_mail", "notifications.tasks.wake_mails")
    }
# tests/test_faults.py: mail to its SMTP sink, and beat's sweeps every few seconds.
if os.environ.get("ITPORTAL_TEST_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = int(os.environ["ITPORTAL_TEST_SMTP_PORT"])
    EMAIL_USE_TLS = EMAIL_USE_SSL = False
    EMAIL_HOST_USER = EMAIL_HOST_PASSWORD = ""
if os.environ.get("ITPORTAL_TEST_SWEEP_EVERY_SECONDS"):
    _every = float(os.environ["ITPORTAL_TEST_SWEEP_EVERY_SECONDS"])
    CELERY_BEAT_SCHEDULE = {
        name: {**entry, "schedule": _every}
        for name, entry in CELERY_BEAT_SCHEDULE.items()  # noqa: F405
        if name in ("provisioning-sweep", "notifications-sweep-mails")
    }
