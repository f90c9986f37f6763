"""Directory backends: one interface, an OpenLDAP and an Active Directory dialect."""

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
    """Close and forget every backend (tests point the settings at another server)."""
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()


__all__ = ["DirectoryBackend", "DirectoryConfig", "config_from_settings", "get_backend"]
