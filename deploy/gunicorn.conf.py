"""gunicorn configuration: ``gunicorn -c deploy/gunicorn.conf.py itportal.wsgi``.

Every value comes from the environment so that one file serves the demo, a systemd unit
and a container. Static files are served by WhiteNoise inside the application.
"""

import multiprocessing
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for itportal.logs

from itportal import logs

bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
# Threads: a request waiting on PostgreSQL or the directory (login) does not block a process.
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
# Above the slowest report page; a request beyond it is cut and its worker replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
# On SIGTERM (systemd stop, rolling upgrade) requests in flight finish first.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = 5
# Recycle workers now and then, so slow leaks in a library never accumulate.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = max_requests // 10
# The proxy in front terminates TLS and sets X-Forwarded-Proto; trust it only from there.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The portal logs every request as JSON (request_finished, with request_id and user_id);
# gunicorn's own access lines only if asked for. Its other lines are JSON too (below).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "itportal"
# No gunicornc control socket: one fixed path per user would collide between two nodes on
# one host, and systemd or the container runtime manages the processes.
control_socket_disable = True


def post_worker_init(worker):
    """Import every view now and freeze what the process holds from then on.

    The URLconf is otherwise imported by the first request, which pays for it. Frozen, the
    ~200,000 objects Django and the portal import are no longer walked by each full garbage
    collection (about 0.1 s every few hundred views on the 2-core machine, which showed in
    the pages' p95); they live as long as the process anyway.
    """
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
    gc.freeze()


logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": logs.formatter(os.environ.get("LOG_FORMAT", "json"))},
    "handlers": {
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "stream": "ext://sys.stderr",
        },
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "stream": "ext://sys.stdout",
        },
    },
    # Only to these handlers: the root logger (the portal's, once Django is configured)
    # would print every line a second time.
    "loggers": {
        "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {
            "handlers": ["console"],
            "level": "INFO" if accesslog else "WARNING",
            "propagate": False,
        },
    },
}
