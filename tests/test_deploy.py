"""The deployment files are valid for the tools that read them: systemd units
(systemd-analyze verify), compose.yaml (Debian's docker-compose), the HAProxy
configuration (haproxy -c) and PgBouncer's (started on loopback and asked).

The tools come from Debian through scripts/bootstrap.sh; a missing one fails the test.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
QUEUES = settings.PORTAL_CELERY_QUEUES


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: scripts/bootstrap.sh installs it (make install)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_systemd_units_verify(tmp_path):
    analyze = tool("systemd-analyze")
    # The units name /opt/itportal; here the same files point at this checkout, so that
    # systemd-analyze finds the programs they start.
    units = []
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/itportal", str(ROOT))
        if unit.name.endswith("@.service"):
            for queue in QUEUES:
                instance = tmp_path / unit.name.replace("@.", f"@{queue}.")
                instance.write_text(text)
                units.append(instance)
        else:
            (tmp_path / unit.name).write_text(text)
            units.append(tmp_path / unit.name)
    assert {unit.name for unit in units} >= {
        "itportal-web.service",
        "itportal-beat.service",
        "itportal.target",
        *(f"itportal-worker@{queue}.service" for queue in QUEUES),
    }
    result = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=120
    )
    # It exits 0 on unknown keys and some missing files: the messages count too.
    ours = [line for line in result.stderr.splitlines() if "itportal" in line]
    assert (result.returncode, ours) == (0, []), result.stderr


def compose_config(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("docker-compose"), "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(ROOT / "var"), **env},
        timeout=120,
    )


def test_compose_describes_the_multi_host_layout():
    result = compose_config(
        SECRET_KEY="k" * 50,
        FIELD_ENCRYPTION_KEYS="a" * 43 + "=",
        METRICS_TOKEN="m" * 32,
        POSTGRES_PASSWORD="pw",
        PORTAL_HOST="it.example",
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    web = [name for name in services if name.startswith("web-")]
    assert len(web) >= 2
    for name in web:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://itportal:pw@pgbouncer:6432/")
        assert env["DATABASE_BEHIND_PGBOUNCER"] == "true"
        assert env["ALLOWED_HOSTS"] == "it.example"
    proxy_env = services["proxy"]["environment"]
    assert {proxy_env["ITPORTAL_WEB1"], proxy_env["ITPORTAL_WEB2"]} == {
        f"{name}:8000" for name in web[:2]
    }
    for queue in QUEUES:
        command = services[f"worker-{queue}"]["command"]
        assert command[command.index("-Q") + 1] == queue
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "beat" in services["beat"]["command"]
    assert {"pgbouncer", "db", "redis", "migrate"} <= set(services)


def test_compose_refuses_to_start_without_the_secrets():
    result = compose_config(POSTGRES_PASSWORD="pw", PORTAL_HOST="it.example")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_containerfile_copies_every_product_app_and_not_the_devtools():
    copied = set(re.findall(r"^COPY (\S+) ", (ROOT / "Containerfile").read_text(), re.M))
    ours = {app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app).is_dir()}
    assert ours - {"devtools"} <= copied
    assert "devtools" not in copied


def test_haproxy_configuration_is_valid(tmp_path):
    cert = tmp_path / "portal.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(cert), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        **os.environ,
        "HAPROXY_HTTP_BIND": "127.0.0.1:8080",
        "HAPROXY_HTTPS_BIND": "127.0.0.1:8443",
        "HAPROXY_CERT": str(cert),
        "HAPROXY_CHECK_HOST": "localhost",
        "ITPORTAL_WEB1": "127.0.0.1:8001",
        "ITPORTAL_WEB2": "127.0.0.1:8002",
    }
    result = subprocess.run(
        [tool("haproxy"), "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout + result.stderr


def render_pgbouncer(tmp_path, **values) -> Path:
    """deploy/pgbouncer/pgbouncer.ini with some keys set otherwise (addresses, auth)."""
    lines = []
    for line in (DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {values.pop(key)}" if key in values else line)
    assert not values, f"not in pgbouncer.ini: {values}"
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    return ini


@pytest.mark.django_db
def test_pgbouncer_pools_in_transaction_mode(tmp_path):
    db = connection.settings_dict
    port = free_port()
    userlist = tmp_path / "userlist.txt"
    userlist.write_text(f'"{db["USER"]}" ""\n')
    ini = render_pgbouncer(
        tmp_path,
        itportal=f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={db['NAME']}",
        listen_addr="127.0.0.1",
        listen_port=port,
        auth_type="trust",  # the test database trusts loopback; production uses SCRAM
        auth_file=userlist,
        admin_users=db["USER"],
        stats_users=db["USER"],
    )
    user = "nobody" if os.geteuid() == 0 else None  # PgBouncer refuses to run as root
    process = subprocess.Popen(
        [tool("pgbouncer"), *(["-u", user] if user else []), str(ini)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The parameters Django sends (including options=-c jit=off), to PgBouncer instead.
        params = {**connection.get_connection_params(), "host": "127.0.0.1", "port": port}
        params["dbname"] = "itportal"
        params.pop("cursor_factory", None)
        params.pop("context", None)
        deadline = time.monotonic() + 20
        while True:
            try:
                client = psycopg.connect(**params, autocommit=True)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    pytest.fail(f"PgBouncer did not answer: {process.stdout.read()}")
                time.sleep(0.1)
        with client:
            assert client.execute("SELECT current_database()").fetchone()[0] == db["NAME"]
        admin = {**params, "dbname": "pgbouncer"}
        with psycopg.connect(**admin, autocommit=True) as console:
            config = {row[0]: row[1] for row in console.execute("SHOW CONFIG").fetchall()}
        assert config["pool_mode"] == "transaction"
        assert "options" in config["ignore_startup_parameters"]
    finally:
        process.terminate()
        process.wait(10)
