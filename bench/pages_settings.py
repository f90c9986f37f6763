"""Settings for bench/bench_pages.py only: the production settings, plus the "floor" view.

The floor is a trivial login-required view on the same stack (every middleware, the
session, the user); the benchmark measures each page against it in the same run. It lives
in this URLconf and nowhere else, so production never serves it.
"""

import os

os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # plain HTTP on the loopback
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1maWVsZC1lbmNyeXB0aW9uLWtleTE=")

from itportal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.pages_urls"
# No collectstatic for a benchmark: templates name files as they are.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
