"""Production never loads the development tools (devtools/): not installed, not imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
# Every app of this project the settings install (new ones included), devtools aside.
PRODUCT_APPS = sorted(
    app for app in settings.INSTALLED_APPS if (ROOT / app).is_dir() and app != "devtools"
)

# Imports every module of the product apps under production settings and reports what
# of devtools got loaded and which of its commands manage.py would offer.
PROBE = f"""
import importlib, json, pkgutil, sys
import django
django.setup()
from django.conf import settings
from django.core.management import get_commands
for app in {PRODUCT_APPS!r}:
    package = importlib.import_module(app)
    for module in pkgutil.walk_packages(package.__path__, app + "."):
        importlib.import_module(module.name)
print(json.dumps({{
    "installed": "devtools" in settings.INSTALLED_APPS,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] == "devtools"),
    "commands": sorted(c for c, app in get_commands().items() if app == "devtools"),
}}))
"""


def test_production_settings_never_import_devtools():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "DEV_TOOLS", "DJANGO_SETTINGS_MODULE")
    }
    env |= {"DJANGO_SETTINGS_MODULE": "itportal.settings", "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"installed": False, "modules": [], "commands": []}


def test_tests_have_the_devtools():
    from django.core.management import get_commands

    commands = {name for name, app in get_commands().items() if app == "devtools"}
    assert commands == {
        "seed_demo",
        "seed_demo_provisioning",
        "seed_demo_retention",
        "seed_history",
        "directory_server",
    }
