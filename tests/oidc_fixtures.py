"""A real OpenID provider on loopback for the single-sign-on tests: npm ``oidc-provider``
(OpenID-certified), installed from scripts/oidc-provider/package-lock.json by
scripts/bootstrap.sh, one process per test worker, stopped after the run."""

import json
import re
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

PROVIDER_DIR = Path(settings.BASE_DIR) / "scripts" / "oidc-provider"
CLIENT_ID, CLIENT_SECRET = "itportal", "test-only-client-secret"
PORTAL = "http://testserver"

# The people the provider knows: subject → claims.
ACCOUNTS = {
    "s-anna": {
        "preferred_username": "M10042",
        "given_name": "Anna",
        "family_name": "Schmidt",
        "email": "anna.schmidt@musterstadt.example",
        "groups": ["staff"],
    },
    "s-markus": {
        "preferred_username": "itadmin",
        "given_name": "Markus",
        "family_name": "Richter",
        "email": "markus.richter@musterstadt.example",
        "groups": ["staff", "portal-admins"],
    },
    "s-fremd": {"preferred_username": "fremd1", "email": "fremd@musterstadt.example"},
    "s-root": {"preferred_username": "root", "email": "root@musterstadt.example"},
}


@dataclass
class Provider:
    issuer: str

    def settings(self) -> dict:
        return {
            "OIDC_ENABLED": True,
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/auth",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/me",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/jwks",
            "OIDC_OP_LOGOUT_ENDPOINT": f"{self.issuer}/session/end",
            "OIDC_IT_ADMIN_GROUP": "portal-admins",
        }

    def sign_in(self, browser: requests.Session, authorize_url: str, subject: str) -> str:
        """Log in at the provider as ``subject``; returns the portal callback URL it sends
        the browser to."""
        response = browser.get(authorize_url, allow_redirects=False)
        for _hop in range(10):
            location = response.headers.get("Location", "")
            if location.startswith(PORTAL):
                return location
            if response.status_code in (302, 303):
                response = browser.get(self._absolute(location), allow_redirects=False)
                continue
            action = re.search(r'action="([^"]+)"', response.text)
            assert action, response.text[:500]
            fields = {"prompt": "login", "login": subject, "password": "any"}
            if 'value="consent"' in response.text:
                fields = {"prompt": "consent"}
            response = browser.post(
                self._absolute(action.group(1)), data=fields, allow_redirects=False
            )
        raise AssertionError("the provider never sent the browser back to the portal")

    def _absolute(self, location: str) -> str:
        return location if urlsplit(location).scheme else f"{self.issuer}{location}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_provider(config: dict, log_path: Path):
    """provider.mjs with ``config`` until the block ends; yields once it answers."""
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node and scripts/oidc-provider/node_modules are needed: run make install")
    issuer = config["issuer"]
    log = log_path.open("w")
    process = subprocess.Popen(
        [node, str(PROVIDER_DIR / "provider.mjs"), json.dumps(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start: {log_path}")
            time.sleep(0.1)
        yield Provider(issuer)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = {
        "port": port,
        "issuer": issuer,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{PORTAL}/oidc/callback/"],
                "post_logout_redirect_uris": [f"{PORTAL}/accounts/login/"],
                "token_endpoint_auth_method": "client_secret_post",
            }
        ],
        "accounts": ACCOUNTS,
    }
    with running_provider(config, tmp_path_factory.mktemp("oidc") / "provider.log") as provider:
        yield provider
