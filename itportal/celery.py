"""Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
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
