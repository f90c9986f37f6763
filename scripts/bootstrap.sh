#!/usr/bin/env bash
# Install what the project needs into .venv (and Debian packages where missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        apt_install python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
command -v msgfmt >/dev/null 2>&1 || apt_install gettext
# Browser for tests/test_accessibility.py (Playwright drives it; never `playwright install`).
apt_install chromium
# Throwaway Samba AD DC for the Active Directory tests (devtools/devsamba.py).
apt_install samba samba-ad-dc samba-ad-provision openssl
apt_install slapd ldap-utils
# Deployment checks and the scale-out benchmark (tests/test_deploy.py, bench/scaleout.py):
# systemd-analyze, Debian's docker-compose (validates compose.yaml without an engine),
# HAProxy, PgBouncer, wrk.
apt_install systemd haproxy pgbouncer docker-compose wrk
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
# The OpenID provider the SSO tests start on loopback (npm oidc-provider, from the lockfile).
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
(cd scripts/oidc-provider && npm ci --no-audit --no-fund --silent)
# KERN, the German administration's design system (npm @kern-ux/native, from the lockfile):
# the portal serves its CSS and fonts itself as static files (settings.KERN_DIST), no CDN.
(cd frontend && npm ci --no-audit --no-fund --silent)
# oidc-provider 9 needs Node.js 20.18 or later (Debian 13 ships 20.19; Debian 12 only 18).
if ! node scripts/oidc-provider/check-node.mjs; then
    echo "warning: the SSO tests and the demo's OpenID provider need Node.js >= 20.18" \
         "(Debian 13's nodejs, or NodeSource's nodejs 20/22 on Debian 12); see README" >&2
fi
