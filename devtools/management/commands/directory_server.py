"""Run the demo's private OpenLDAP server: ``directory_server start|stop|status|seed|env``.

Config, data and passwords live in ``var/slapd/``; the port comes from
``DIRECTORY_PORT`` (default 3890). ``start`` leaves slapd running in the
background and is a no-op when it already runs; ``seed`` loads the demo
organisation from the database (run ``seed_demo`` first) and may run again;
``env`` prints ``export DIRECTORY_...=`` lines for the portal (demo only: it
includes the service password).
"""

from __future__ import annotations

import os
import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.devdirectory import PrivateSlapd, SlapdError

DEFAULT_PORT = 3890


class Command(BaseCommand):
    help = "Start, stop, inspect or seed the demo's private OpenLDAP server (var/slapd)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status", "seed", "env"])
        parser.add_argument(
            "--root",
            default=str(settings.BASE_DIR / "var" / "slapd"),
            help="directory for config, data and passwords (default: var/slapd)",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("DIRECTORY_PORT") or DEFAULT_PORT),
            help="loopback port (default: $DIRECTORY_PORT or 3890)",
        )

    def handle(self, *args, action, root, port, **options):
        server = PrivateSlapd(root, port=port)
        try:
            getattr(self, f"do_{action}")(server)
        except SlapdError as exc:
            raise CommandError(str(exc)) from exc

    def _ensure_running(self, server: PrivateSlapd) -> bool:
        """Start unless running; True if this call started it."""
        if server.running:
            server.start()  # adopts the running instance's port and suffix
            return False
        server.start(daemon=True)
        return True

    def do_start(self, server: PrivateSlapd) -> None:
        started = self._ensure_running(server)
        state = "started" if started else "already running"
        self.stdout.write(self.style.SUCCESS(f"slapd {state} (pid {server.pid})"))
        self._describe(server)

    def do_stop(self, server: PrivateSlapd) -> None:
        if not server.running:
            self.stdout.write("slapd is not running")
            return
        server.stop()
        self.stdout.write(self.style.SUCCESS("slapd stopped"))

    def do_status(self, server: PrivateSlapd) -> None:
        if not server.running:
            self.stdout.write(f"slapd is not running (root {server.root})")
            raise SystemExit(3)  # LSB: program is not running
        server.start()  # adopt port and suffix of the running instance
        self.stdout.write(f"slapd is running (pid {server.pid})")
        self._describe(server)

    def do_seed(self, server: PrivateSlapd) -> None:
        from devtools.demo_directory import build_demo_ldif

        self._ensure_running(server)
        ldif = build_demo_ldif(server.suffix)
        # Entries already there are kept as they are: seeding twice is harmless.
        server.load_ldif(ldif, skip_existing=True)
        count = len(server.ldapsearch("-b", server.people_base, "-s", "one", "1.1").split("dn:"))
        self.stdout.write(
            self.style.SUCCESS(f"directory seeded: {count - 1} people at {server.url}")
        )

    def do_env(self, server: PrivateSlapd) -> None:
        if not server.running:
            raise CommandError("slapd is not running: run `directory_server start` first")
        server.start()
        values = {
            "DIRECTORY_DIALECT": "openldap",
            "DIRECTORY_URL": server.url,
            "DIRECTORY_BIND_DN": server.bind_dn,
            "DIRECTORY_BIND_PASSWORD": server.bind_password,
            "DIRECTORY_USER_BASE": server.people_base,
            "DIRECTORY_GROUP_BASE": server.group_base,
            "DIRECTORY_TLS": "none",
            "DIRECTORY_IT_ADMIN_GROUP": server.group_dn("itportal-admins"),
            "DIRECTORY_CONTROLLING_GROUP": server.group_dn("itportal-controlling"),
        }
        for name, value in values.items():
            self.stdout.write(f"export {name}={shlex.quote(value)}")

    def _describe(self, server: PrivateSlapd) -> None:
        self.stdout.write(
            f"  URL:            {server.url}\n"
            f"  bind DN:        {server.bind_dn}\n"
            f"  password file:  {server.bind_password_file}\n"
            f"  admin DN:       {server.admin_dn} (password in {server.admin_password_file})\n"
            f"  people, groups: {server.people_base}, {server.group_base}\n"
            f"  log:            {server.log_file}"
        )
