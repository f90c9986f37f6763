"""A throwaway Samba Active Directory domain controller for tests and development.

Samba's LDAP ports are fixed at 389/636 and may be taken on the host (e.g. by
Debian's slapd), so the DC runs in a private network namespace of its own
(``unshare --net``) and is reached from outside in two ways:

* its ``ldapi`` unix socket (``<root>/private/ldapi``): file-system sockets are
  not bound to a network namespace. No TLS; Samba accepts simple binds and
  ``unicodePwd`` writes on it once ``ldap server require strong auth = no``.
* a small forwarder process that listens on free ``127.0.0.1`` ports of the
  host namespace and connects to 636/389 inside the DC's namespace, so LDAPS
  and StartTLS with CA verification work like against a real AD. The server
  certificate is ours (Samba's own has no subjectAltName), valid for
  ``127.0.0.1``, ``localhost`` and the DC's host name.

Provisioning takes seconds, so a template is provisioned once under ``var/``
and copied for each run. Requires root (Samba and network namespaces).

Run as a script, this file also holds the two tiny helpers the DC needs
(stdlib only): ``_netns-exec`` and ``_forward``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE_DIR = PROJECT_ROOT / "var" / "samba-template"
# openssl makes the TLS certificates; unshare/nsenter come with util-linux (essential).
PACKAGES = ("samba", "samba-ad-dc", "samba-ad-provision", "openssl")
TEMPLATE_FORMAT = 1  # bump when the template layout changes, to re-provision
HOST_NAME = "dc1"
UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the NUL
TREE_DELETE_OID = "1.2.840.113556.1.4.805"
TRANSPORTS = ("ldapi", "ldaps", "starttls")


class SambaError(RuntimeError):
    """The private DC could not be installed, provisioned or started."""


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603
    if result.returncode != 0:
        output = result.stdout[-2000:] + result.stderr[-2000:]
        raise SambaError(f"{argv[0]} failed ({result.returncode}):\n{output}")
    return result


def _tool(name: str) -> str:
    for directory in (None, "/usr/sbin", "/sbin"):
        found = shutil.which(name, path=directory)
        if found:
            return found
    raise SambaError(f"{name} not found")


def base_dn_for(realm: str) -> str:
    return ",".join(f"DC={part}" for part in realm.lower().split("."))


def delete_subtree(connection, dn: str) -> None:
    """Delete ``dn`` and everything below it (tree-delete control, else leaf first)."""
    import ldap3

    if connection.delete(dn, controls=[(TREE_DELETE_OID, True, None)]):
        return
    if connection.result.get("result") == 32:  # noSuchObject: nothing to do
        return
    connection.search(dn, "(objectClass=*)", ldap3.SUBTREE, attributes=[])
    dns = [entry["dn"] for entry in connection.response if entry.get("type") == "searchResEntry"]
    for child in sorted(dns, key=lambda d: d.count(","), reverse=True):
        connection.delete(child)


class PrivateSambaDC:
    """One Samba AD DC living entirely in ``root``, in its own network namespace.

    ``with PrivateSambaDC(path) as dc: conn = dc.connection()`` is the whole API;
    ``start()``/``stop()`` do the same by hand.
    """

    def __init__(
        self,
        root: Path,
        realm: str = "AD.MUSTERSTADT.EXAMPLE",
        domain: str = "MUSTERSTADT",
        *,
        template_dir: Path | None = DEFAULT_TEMPLATE_DIR,
        forward_tcp: bool = True,
        start_timeout: float = 60.0,
    ):
        self.root = Path(root).resolve()
        self.realm = realm.upper()
        self.domain = domain.upper()
        self.template_dir = Path(template_dir).resolve() if template_dir else None
        self.forward_tcp = forward_tcp
        self.start_timeout = start_timeout
        self.timings: dict[str, float] = {}
        self.ldaps_port: int | None = None
        self.ldap_port: int | None = None
        self._samba: subprocess.Popen | None = None
        self._forwarder: subprocess.Popen | None = None
        self._log = None
        if len(str(self.root / "private" / "ldap_priv" / "ldapi")) > UNIX_PATH_MAX:
            raise SambaError(f"{self.root} is too long a path for Samba's ldapi socket")

    # --- connection parameters ----------------------------------------------------

    @property
    def dns_domain(self) -> str:
        return self.realm.lower()

    @property
    def host_name(self) -> str:
        return f"{HOST_NAME}.{self.dns_domain}"

    @property
    def base_dn(self) -> str:
        return base_dn_for(self.realm)

    @property
    def admin_user(self) -> str:
        return f"Administrator@{self.realm}"

    @property
    def admin_dn(self) -> str:
        return f"CN=Administrator,CN=Users,{self.base_dn}"

    @property
    def admin_password(self) -> str:
        return (self.root / "admin-password").read_text().strip()

    @property
    def ca_file(self) -> Path:
        return self.root / "private" / "tls" / "ca.pem"

    @property
    def ldapi_path(self) -> Path:
        return self.root / "private" / "ldapi"

    @property
    def ldapi_url(self) -> str:
        # Percent-encoded as RFC 4516 tools expect; ldap3 accepts it too.
        return "ldapi://" + quote(str(self.ldapi_path), safe="")

    @property
    def ldaps_url(self) -> str:
        self._require_forwarding()
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ldap_url(self) -> str:
        """Plain LDAP, for StartTLS (simple binds without it work too: strong auth is off)."""
        self._require_forwarding()
        return f"ldap://127.0.0.1:{self.ldap_port}"

    def url(self, transport: str = "ldapi") -> str:
        if transport == "ldapi":
            return self.ldapi_url
        if transport == "ldaps":
            return self.ldaps_url
        if transport == "starttls":
            return self.ldap_url
        raise ValueError(f"transport must be one of {TRANSPORTS}")

    def _require_forwarding(self) -> None:
        if not self.forward_tcp or self.ldaps_port is None:
            raise SambaError("TCP forwarding is off or the DC is not running")

    def tls(self):
        import ldap3

        return ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(self.ca_file),
            version=ssl.PROTOCOL_TLS_CLIENT,
        )

    def ldap_server(self, transport: str = "ldapi", **kwargs):
        """An ``ldap3.Server`` for ``ldapi`` (socket), ``ldaps`` or ``starttls``."""
        import ldap3

        kwargs.setdefault("get_info", ldap3.NONE)
        kwargs.setdefault("connect_timeout", 10)
        if transport == "ldapi":
            return ldap3.Server(self.ldapi_url, **kwargs)
        return ldap3.Server(
            self.url(transport), use_ssl=transport == "ldaps", tls=self.tls(), **kwargs
        )

    def connection(self, user=None, password=None, transport: str = "ldapi", **kwargs):
        """A bound ``ldap3.Connection`` (Administrator unless ``user`` is given)."""
        import ldap3

        if user is None:
            user, password = self.admin_user, self.admin_password
        kwargs.setdefault("receive_timeout", 30)
        conn = ldap3.Connection(self.ldap_server(transport), user=user, password=password, **kwargs)
        conn.open()
        if transport == "starttls":
            conn.start_tls()
        if not conn.bind():
            result = conn.result
            conn.unbind()
            raise SambaError(f"bind as {user} over {transport} failed: {result}")
        return conn

    def config_kwargs(self, transport: str = "ldaps") -> dict[str, str]:
        """Keyword arguments for ``provisioning.backends.base.DirectoryConfig``."""
        return {
            "url": self.url(transport),
            "bind_dn": self.admin_dn,
            "bind_password": self.admin_password,
            "tls": {"ldapi": "none", "ldaps": "ldaps", "starttls": "starttls"}[transport],
            "ca_file": str(self.ca_file),
        }

    # --- installation and provisioning --------------------------------------------

    @staticmethod
    def ensure_packages() -> None:
        """Install Debian's Samba AD packages where missing (root only)."""
        missing = [
            pkg
            for pkg in PACKAGES
            if subprocess.run(  # noqa: S603
                ["dpkg-query", "-W", "-f=${Status}", pkg],  # noqa: S607
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            != "install ok installed"
        ]
        if not missing:
            return
        if os.geteuid() != 0:
            raise SambaError(f"Debian packages missing and not root: {' '.join(missing)}")
        # RUNLEVEL=1 keeps sysvinit hosts from starting smbd/nmbd; we never use them.
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
        apt = _tool("apt-get")
        _run([apt, "update", "-qq"], env=env)
        _run([apt, "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)

    @staticmethod
    def samba_version() -> str:
        return _run([_tool("samba"), "-V"]).stdout.strip()

    @property
    def provisioned(self) -> bool:
        return (self.root / "etc" / "smb.conf").is_file()

    def prepare(self) -> None:
        """Make ``root`` a provisioned DC: a copy of the template, or provisioned in place."""
        if self.provisioned:
            return
        if os.geteuid() != 0:
            raise SambaError("Samba AD needs root (samba, network namespaces)")
        if self.template_dir is None:
            self.ensure_packages()
            self._provision(self.root)
            return
        template = self._ensure_template()
        started = time.monotonic()
        source_root = json.loads((template / ".template.json").read_text())["root"]
        shutil.copytree(
            template, self.root, symlinks=True, dirs_exist_ok=True, ignore=_ignore_runtime
        )
        (self.root / ".template.json").unlink()
        conf = self.root / "etc" / "smb.conf"
        conf.write_text(conf.read_text().replace(source_root, str(self.root)))
        self.timings["copy"] = time.monotonic() - started

    def _template_path(self) -> Path:
        return self.template_dir / f"{self.domain}-{self.realm}".lower()

    def _ensure_template(self) -> Path:
        """Provision the template once; a file lock keeps parallel workers to one."""
        self.template_dir.mkdir(parents=True, exist_ok=True)
        path = self._template_path()
        with open(self.template_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.ensure_packages()
            wanted = {
                "format": TEMPLATE_FORMAT,
                "samba": self.samba_version(),
                "realm": self.realm,
                "domain": self.domain,
            }
            marker = path / ".template.json"
            if marker.is_file():
                found = json.loads(marker.read_text())
                if {k: found.get(k) for k in wanted} == wanted:
                    return path
            # Provision next to it and rename, so a crash never leaves half a template.
            staging = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=self.template_dir))
            try:
                self._provision(staging)
                (staging / ".template.json").write_text(
                    json.dumps({**wanted, "root": str(staging)})
                )
                shutil.rmtree(path, ignore_errors=True)
                staging.rename(path)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            return path

    def _provision(self, target: Path) -> None:
        started = time.monotonic()
        target.mkdir(parents=True, exist_ok=True)
        # Random, but sure to meet AD's complexity rule (three character classes).
        password = secrets.token_urlsafe(18) + "aA1!"
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as empty:
            # An empty -s file keeps the host's /etc/samba/smb.conf out of the new one.
            # fmt: off
            _run([
                _tool("samba-tool"), "domain", "provision", "-s", empty.name,
                "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
                f"--realm={self.realm}", f"--domain={self.domain}",
                f"--host-name={HOST_NAME}", "--host-ip=127.0.0.1",
                f"--adminpass={password}",  # throwaway DC; briefly visible in ps
                f"--targetdir={target}",
                "--option=interfaces=127.0.0.1",
                "--option=bind interfaces only=yes",
                "--option=server services=ldap",
                "--option=disable netbios=yes",
            ])
            # fmt: on
        secret = target / "admin-password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        for directory in ("run", "log"):
            (target / directory).mkdir(exist_ok=True)
        self._patch_smb_conf(target)
        self._make_certificates(target / "private" / "tls")
        self.timings["provision"] = time.monotonic() - started

    def _patch_smb_conf(self, target: Path) -> None:
        """Keep every runtime path inside ``target``; allow binds over ldapi."""
        tls = target / "private" / "tls"
        extra = {
            "pid directory": target / "run",
            "ncalrpc dir": target / "run" / "ncalrpc",
            "winbindd socket directory": target / "run" / "winbindd",
            "ntp signd socket directory": target / "run" / "ntp_signd",
            "log file": target / "log" / "samba.log",
            # ldapi carries no TLS, and Samba counts it as unencrypted.
            "ldap server require strong auth": "no",
            "tls enabled": "yes",
            "tls keyfile": tls / "key.pem",
            "tls certfile": tls / "cert.pem",
            "tls cafile": tls / "ca.pem",
        }
        conf = target / "etc" / "smb.conf"
        lines = "".join(f"\t{key} = {value}\n" for key, value in extra.items())
        text = conf.read_text()
        if "[global]\n" not in text:
            raise SambaError(f"unexpected smb.conf from samba-tool: {conf}")
        conf.write_text(text.replace("[global]\n", "[global]\n" + lines, 1))

    def _make_certificates(self, tls: Path) -> None:
        """A private CA and a server certificate with subjectAltNames for 127.0.0.1.

        Samba's self-made certificate names only its host name (no subjectAltName),
        which fails hostname checks against ``ldaps://127.0.0.1:PORT``.
        """
        tls.mkdir(parents=True, exist_ok=True)
        openssl = _tool("openssl")
        ca_key, csr, ext = tls / "ca.key", tls / "cert.csr", tls / "cert.ext"
        new_key = ["-newkey", "rsa:2048", "-nodes", "-days", "3650"]
        ext.write_text(
            f"subjectAltName=DNS:{self.host_name},DNS:localhost,IP:127.0.0.1\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
        )
        # fmt: off
        _run([
            openssl, "req", "-x509", *new_key,
            "-subj", f"/O=itportal test/CN={self.domain} test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(ca_key), "-out", str(tls / "ca.pem"),
        ])
        _run([
            openssl, "req", *new_key, "-subj", f"/O=itportal test/CN={self.host_name}",
            "-keyout", str(tls / "key.pem"), "-out", str(csr),
        ])
        _run([
            openssl, "x509", "-req", "-days", "3650", "-in", str(csr), "-extfile", str(ext),
            "-CA", str(tls / "ca.pem"), "-CAkey", str(ca_key),
            "-set_serial", str(secrets.randbits(63)), "-out", str(tls / "cert.pem"),
        ])
        # fmt: on
        for leftover in (ca_key, csr, ext):
            leftover.unlink()
        # Samba refuses a private key that others can read.
        (tls / "key.pem").chmod(0o600)

    # --- running ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._samba is not None and self._samba.poll() is None

    def start(self) -> PrivateSambaDC:
        if self.running:
            return self
        self.prepare()
        started = time.monotonic()
        for stale in (self.ldapi_path, self.root / "private" / "ldap_priv" / "ldapi"):
            stale.unlink(missing_ok=True)
        self._log = open(self.root / "log" / "samba.stdout.log", "ab")  # noqa: SIM115
        # The helper brings up lo in the fresh namespace and execs samba, so the
        # child's pid is samba's; it also dies with us (PR_SET_PDEATHSIG).
        helper = [sys.executable, "-I", str(Path(__file__).resolve())]  # -I: stdlib only
        samba = [_tool("samba"), "-i", "-M", "single", "-s", str(self.root / "etc" / "smb.conf")]
        argv = [_tool("unshare"), "--net", "--", *helper, "_netns-exec", str(os.getpid()), "--"]
        argv += samba
        self._samba = subprocess.Popen(  # noqa: S603
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest must not kill it mid-test
        )
        try:
            self._wait_until(lambda: self._try_bind("ldapi"), "ldapi bind")
            self.timings["start"] = time.monotonic() - started
            if self.forward_tcp:
                self._start_forwarder()
                self._wait_until(lambda: self._try_bind("ldaps"), "LDAPS bind")
            self.timings["ready"] = time.monotonic() - started
        except BaseException:
            self.stop()
            raise
        return self

    def _start_forwarder(self) -> None:
        listeners = []
        for _ in range(2):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            listeners.append(listener)
        self.ldaps_port = listeners[0].getsockname()[1]
        self.ldap_port = listeners[1].getsockname()[1]
        fds = [listener.fileno() for listener in listeners]
        argv = [_tool("nsenter"), f"--net=/proc/{self._samba.pid}/ns/net", "--"]
        argv += [sys.executable, "-I", str(Path(__file__).resolve()), "_forward"]
        argv += [str(os.getpid()), f"{fds[0]}:636", f"{fds[1]}:389"]
        try:
            self._forwarder = subprocess.Popen(  # noqa: S603
                argv,
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            for listener in listeners:
                listener.close()  # the forwarder holds them now

    def _try_bind(self, transport: str) -> bool:
        if transport == "ldapi" and not self.ldapi_path.exists():
            return False
        try:
            self.connection(transport=transport, receive_timeout=5).unbind()
        except Exception:
            return False
        return True

    def _wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._samba.poll() is not None:
                raise SambaError(f"samba exited ({self._samba.returncode}){self._log_tail()}")
            if self._forwarder is not None and self._forwarder.poll() is not None:
                raise SambaError(f"the LDAP forwarder exited{self._log_tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise SambaError(f"no {what} after {self.start_timeout:.0f} s{self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self) -> str:
        path = self.root / "log" / "samba.stdout.log"
        with contextlib.suppress(OSError):
            return f"; log {path}:\n" + path.read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        """SIGTERM (Samba stops in under 2 s), SIGKILL after 15 s."""
        for attr in ("_forwarder", "_samba"):
            process = getattr(self, attr)
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            setattr(self, attr, None)
        self.ldaps_port = self.ldap_port = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> PrivateSambaDC:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _ignore_runtime(directory: str, names: list[str]) -> set[str]:
    """Leave sockets and run/log contents of the template behind."""
    ignored = set()
    for name in names:
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                ignored.add(name)
    return ignored


# --- helpers run as separate processes (python devsamba.py _netns-exec|_forward) ---


def _die_with_parent(parent: int) -> None:
    """Exit when the test process dies, even by SIGKILL, so no DC is left behind."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        sys.exit(1)


def _loopback_up() -> None:
    """``ip link set lo up`` without needing iproute2."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def _netns_exec(parent: int, argv: list[str]) -> None:
    _die_with_parent(parent)  # survives exec for non-setuid programs
    _loopback_up()
    os.execv(argv[0], argv)  # noqa: S606


def _pump(source: socket.socket, target: socket.socket, finished) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
    finished()


def _relay(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    lock, done = threading.Lock(), []

    def finished():
        with lock:
            done.append(True)
            if len(done) == 2:
                client.close()
                upstream.close()

    threading.Thread(target=_pump, args=(client, upstream, finished), daemon=True).start()
    threading.Thread(target=_pump, args=(upstream, client, finished), daemon=True).start()


def _accept_loop(listener: socket.socket, port: int) -> None:
    while True:
        client, _ = listener.accept()
        _relay(client, port)


def _forward(parent: int, specs: list[str]) -> None:
    """Relay connections on inherited host-side listeners to ports in this namespace."""
    _die_with_parent(parent)
    for spec in specs:
        fd, port = (int(part) for part in spec.split(":"))
        listener = socket.socket(fileno=fd)
        threading.Thread(target=_accept_loop, args=(listener, port), daemon=True).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    command, parent_pid, *rest = sys.argv[1:]
    if command == "_netns-exec":
        _netns_exec(int(parent_pid), rest[1:] if rest[:1] == ["--"] else rest)
    elif command == "_forward":
        _forward(int(parent_pid), rest)
    else:
        raise SystemExit(f"unknown command {command!r}")
