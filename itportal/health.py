"""Liveness and readiness probes: ``/healthz`` and ``/readyz``.

``/healthz`` answers as long as the process serves requests and touches nothing else, so
a restart is only triggered by a stuck process, never by an outage elsewhere.
``/readyz`` checks what the portal depends on — database, pending migrations, broker,
directory — each with a short timeout, and names in a JSON body what failed (503).
``?check=database&check=migrations`` limits it to the named checks: a load balancer asks
only what one node can get wrong on its own (its database connection, a code version the
schema does not have yet), so a directory outage does not take every node out of service.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_migrations_complete = False  # once applied, migrations stay applied for this process
_redis_clients: dict[str, object] = {}


def timeout() -> float:
    return settings.READYZ_TIMEOUT


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_migrations() -> None:
    """Every migration on disk is applied (a new release before ``migrate`` is not ready)."""
    global _migrations_complete
    if _migrations_complete:
        return
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied: {names}")
    _migrations_complete = True


def check_broker() -> None:
    import redis

    url = settings.CELERY_BROKER_URL
    with _lock:
        client = _redis_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout(), socket_timeout=timeout()
            )
            _redis_clients[url] = client
    client.ping()


def check_directory() -> str | None:
    """Bind and read the user base (skipped without a directory: nothing is automated)."""
    if not settings.DIRECTORY["url"]:
        return "skipped: no directory configured"
    from provisioning.backends import config_from_settings, get_backend

    config = config_from_settings()
    probe = dataclasses.replace(config, timeout=min(config.timeout, max(1, int(timeout()))))
    get_backend(probe).check()


CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "broker": check_broker,
    "directory": check_directory,
}


def run_checks(names) -> dict[str, dict]:
    results = {}
    for name in names:
        started = time.monotonic()
        try:
            note = CHECKS[name]()
        except Exception as exc:  # any failure means "not ready"; the body names it
            # The probe is unauthenticated: the body names the error class only (messages
            # carry host names and addresses); the log has the message.
            logger.warning("readiness check %s failed: %s", name, exc)
            result = {"ok": False, "error": type(exc).__name__}
        else:
            result = {"ok": True, **({"note": note} if note else {})}
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = result
    return results


@login_not_required
@never_cache
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


@login_not_required
@never_cache
def readyz(request):
    requested = request.GET.getlist("check") or list(CHECKS)
    unknown = sorted(set(requested) - set(CHECKS))
    if unknown:
        return JsonResponse(
            {"error": f"unknown check: {', '.join(unknown)}", "checks": list(CHECKS)},
            status=400,
        )
    results = run_checks(dict.fromkeys(requested))
    failed = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": results}
    return JsonResponse(body, status=503 if failed else 200)
