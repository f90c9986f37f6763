"""Test settings: production settings with test-only defaults for the environment."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/itportal")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# A fixed test key (Fernet): secrets at rest are encrypted in tests as in production.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5LTE=")
os.environ.setdefault("DEV_TOOLS", "true")  # private slapd, demo city and history

from itportal.settings import *  # noqa: F403

RUNS_OWN_CONNECTION = False  # progress rows inside the test's transaction, rolled back
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405 - WhiteNoise warns about a missing root
# Counted on every page: tests check counts right after another user's action;
# tests/test_nav_counts_cache.py covers the session copy production uses.
PORTAL_NAV_COUNTS_SECONDS = 0
