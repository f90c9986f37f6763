"""Directory backends: one interface, an OpenLDAP and an Active Directory dialect.

Each process keeps one backend per directory, and each backend one connection (a pool of
one), opened on first use and reopened after a failure (``DirectoryBackend.run``). A
Celery worker process therefore binds once and reuses its connection for every job. A
process made by fork (Celery's prefork pool, gunicorn) never uses its parent's: the
child forgets the backends it inherited and opens its own on first use; the worker's
shutdown signal unbinds (provisioning.apps).
"""

import os
import threading

from django.conf import settings
from django.utils.module_loading import import_string

from provisioning.backends.base import DirectoryBackend, DirectoryConfig

DIALECTS = {
    "openldap": "provisioning.backends.openldap.OpenLDAPBackend",
    "ad": "provisioning.backends.active_directory.ActiveDirectoryBackend",
}

_backends: dict[DirectoryConfig, DirectoryBackend] = {}
_lock = threading.Lock()


def config_from_settings() -> DirectoryConfig:
    return DirectoryConfig(**settings.DIRECTORY)


def get_backend(config: DirectoryConfig | None = None) -> DirectoryBackend:
    """The process-wide backend for a directory; it keeps its connection for reuse."""
    config = config or config_from_settings()
    with _lock:
        backend = _backends.get(config)
        if backend is None:
            backend = import_string(DIALECTS[config.dialect])(config)
            _backends[config] = backend
        return backend


def reset_backends() -> None:
    """Close and forget every backend (worker shutdown; tests point the settings at another
    server)."""
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()


def _forget_after_fork() -> None:
    """In a forked child: drop the parent's backends without unbinding. Their sockets are
    the parent's too (an unbind here would end the parent's session), and a lock a parent
    thread held at the fork would never be released in the child."""
    global _lock
    _lock = threading.Lock()
    _backends.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


__all__ = ["DirectoryBackend", "DirectoryConfig", "config_from_settings", "get_backend"]
