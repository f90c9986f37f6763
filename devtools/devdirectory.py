"""A private OpenLDAP ``slapd`` for tests and the demo.

Everything lives under one directory (config, data, passwords, pid file, log);
the server listens on a loopback port of its own and never touches the system
slapd (port 389, ``/etc/ldap/slapd.d``). It needs no root: a ``slapd.conf``
(not cn=config), the Debian schema files and modules are all it reads.

The tree::

    <suffix>
    ├── cn=admin          organizationalRole; the rootdn (its password is in ``admin.secret``)
    ├── ou=people         inetOrgPerson entries
    ├── ou=groups         groupOfNames entries (members get ``memberOf``)
    ├── ou=departments    organizationalUnit entries
    ├── ou=services       cn=itportal: the portal's service account (``service.secret``)
    └── ou=policies       cn=default: the password policy (``pwdAccountLockedTime`` disables)

The service account may write below ou=people and ou=groups (that is all the
portal needs: accounts, attributes, enable/disable, memberships) and read the
rest; it can never read password hashes. People bind with their own password.

``with PrivateSlapd(path) as slapd: ...`` starts and stops it; ``start(daemon=True)``
leaves it running after this process exits (the demo's ``directory_server`` command).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from pathlib import Path

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

DEFAULT_SUFFIX = "dc=musterstadt,dc=example"
PACKAGES = ("slapd", "ldap-utils")
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
# The portal's own attributes (a joiner's start date), after the standard schemas.
PORTAL_SCHEMA = Path(__file__).resolve().parent / "schema" / "itportal.schema"
MODULE_DIR = Path("/usr/lib/ldap")
SERVICE_CN = "itportal"
BASE_OUS = ("people", "groups", "departments", "services", "policies")
# Below these the test fixture wipes the tree between tests; groups first, so that
# deleting people does not make the refint overlay rewrite every group they were in.
RESETTABLE_OUS = ("groups", "departments", "people")
MAX_DB_SIZE = 1 << 30  # mdb's default map is 10 MiB, too small for the large sync tests
START_ATTEMPTS = 5  # a free port picked by us can be taken before slapd binds it


class SlapdError(RuntimeError):
    """The private slapd could not be installed, started or used."""


# --- escaping ---------------------------------------------------------------------------


def rdn_value(value: object) -> str:
    """``value`` escaped for use as an RDN value (RFC 4514).

    ldap3's ``escape_rdn`` puts a backslash before a NUL instead of writing ``\\00``,
    which no server accepts, and fails on the empty string.
    """
    text = str(value)
    if not text:
        raise ValueError("an RDN value cannot be empty")
    return escape_rdn(text).replace("\\\x00", "\\00")


def filter_value(value: object) -> str:
    """``value`` escaped for use inside an LDAP filter (RFC 4515)."""
    return escape_filter_chars(str(value))


def _unescape_rdn(value: str) -> str:
    """Undo RFC 4514 escapes: ``\\c`` and ``\\XX`` (a hex byte of the UTF-8 encoding)."""
    out, i = bytearray(), 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in string.hexdigits for c in pair):
                out.append(int(pair, 16))
                i += 3
            else:
                out += value[i + 1].encode()
                i += 2
        else:
            out += value[i].encode()
            i += 1
    return out.decode("utf-8", "replace")


def normalize_dn(dn: str) -> str:
    """One spelling per DN, to compare ours with the server's.

    slapd returns DNs in its own escaping (``uid=a\\2Cb`` for ``uid=a\\,b``);
    attribute types are lowercased, values re-escaped with :func:`rdn_value`.
    """
    return "".join(
        f"{attr.lower()}={rdn_value(_unescape_rdn(value))}{sep}"
        for attr, value, sep in parse_dn(dn)
    )


def ssha(password: str) -> str:
    """A salted SHA-1 ``userPassword`` value, the hash every slapd understands.

    Good enough for random service secrets and the demo password; production
    directories set their own hashing policy.
    """
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - {SSHA} is SHA-1
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


# --- LDIF ----------------------------------------------------------------------------------


def _ldif_safe(value: str) -> bool:
    """RFC 2849 SAFE-STRING: plain ASCII, no CR/LF/NUL, no leading space, colon or '<'."""
    if not value:
        return True
    if value[0] in " :<" or value[-1] == " ":
        return False
    return all(0x01 <= ord(ch) <= 0x7F and ch not in "\r\n" for ch in value)


def ldif_line(attribute: str, value: str) -> str:
    if _ldif_safe(value):
        return f"{attribute}: {value}"
    return f"{attribute}:: {base64.b64encode(value.encode()).decode()}"


def ldif_entry(dn: str, attributes: dict[str, object]) -> str:
    """One LDIF content record; list values become several lines, empty values are left out."""
    lines = [ldif_line("dn", dn)]
    for name, values in attributes.items():
        for value in values if isinstance(values, list | tuple) else [values]:
            if value not in (None, ""):
                lines.append(ldif_line(name, str(value)))
    return "\n".join(lines) + "\n"


def parse_ldif(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Parse ``ldapsearch -LLL`` output into ``[(dn, {attribute: [values]})]``.

    Attribute names keep the server's spelling; base64 (``::``) values are decoded.
    """
    entries: list[tuple[str, dict[str, list[str]]]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines: list[str] = []
        for line in block.split("\n"):
            if line.startswith(" ") and lines:
                lines[-1] += line[1:]  # folded continuation line
            elif line and not line.startswith("#"):
                lines.append(line)
        dn, attributes = None, {}
        for line in lines:
            name, _, rest = line.partition(":")
            if rest.startswith(":"):
                value = base64.b64decode(rest[1:].strip()).decode("utf-8", "replace")
            else:
                value = rest[1:] if rest.startswith(" ") else rest
            if dn is None and name.lower() == "dn":
                dn = value
            else:
                attributes.setdefault(name, []).append(value)
        if dn is not None:
            entries.append((dn, attributes))
    return entries


# --- helpers ---------------------------------------------------------------------------


def _tool(name: str) -> str | None:
    # slapd lives in /usr/sbin, which a normal user's PATH may lack.
    for directory in (None, "/usr/sbin", "/usr/bin", "/sbin"):
        found = shutil.which(name, path=directory)
        if found:
            return found
    return None


def _require_tool(name: str) -> str:
    found = _tool(name)
    if found is None:
        raise SlapdError(f"{name} not found (Debian packages: {' '.join(PACKAGES)})")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_secret(path: Path, value: str) -> None:
    """Create a 0600 file without a trailing newline (``ldapsearch -y`` reads it all)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _die_with_parent():
    """A preexec function: the child gets SIGTERM when this process dies, even by SIGKILL."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    parent = os.getpid()

    def preexec():
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG; survives exec of slapd (not setuid)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


# --- the server --------------------------------------------------------------------------


class PrivateSlapd:
    """One OpenLDAP server living entirely in ``root``, on ``127.0.0.1:port``.

    ``port=None`` picks a free port at the first start and keeps it for restarts.
    ``dbnosync`` trades durability for write speed: throwaway test servers only.
    """

    def __init__(
        self,
        root: Path | str,
        port: int | None = None,
        suffix: str = DEFAULT_SUFFIX,
        *,
        dbnosync: bool = False,
        start_timeout: float = 15.0,
    ):
        self.root = Path(root).resolve()
        self.port = port
        self.suffix = suffix
        self.dbnosync = dbnosync
        self.start_timeout = start_timeout
        self.timings: dict[str, float] = {}
        self._process: subprocess.Popen | None = None
        self._log = None

    # --- names and credentials -------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.root / "slapd.conf"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.root / "slapd.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "slapd.log"

    @property
    def admin_password_file(self) -> Path:
        return self.root / "admin.secret"

    @property
    def bind_password_file(self) -> Path:
        return self.root / "service.secret"

    @property
    def state_file(self) -> Path:
        return self.root / "instance.json"

    @property
    def url(self) -> str:
        if self.port is None:
            raise SlapdError("the server has no port yet: start it first")
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def admin_password(self) -> str:
        return self.admin_password_file.read_text()

    @property
    def bind_dn(self) -> str:
        """The portal's service account."""
        return f"cn={SERVICE_CN},ou=services,{self.suffix}"

    @property
    def bind_password(self) -> str:
        return self.bind_password_file.read_text()

    def ou_dn(self, name: str) -> str:
        return f"ou={rdn_value(name)},{self.suffix}"

    @property
    def people_base(self) -> str:
        return self.ou_dn("people")

    @property
    def group_base(self) -> str:
        return self.ou_dn("groups")

    @property
    def department_base(self) -> str:
        return self.ou_dn("departments")

    def user_dn(self, uid: str) -> str:
        return f"uid={rdn_value(uid)},{self.people_base}"

    def group_dn(self, cn: str, *ous: str) -> str:
        """``cn=<cn>,[ou=<ou>,...]ou=groups,<suffix>``, every value escaped."""
        parents = "".join(f"ou={rdn_value(ou)}," for ou in ous)
        return f"cn={rdn_value(cn)},{parents}{self.group_base}"

    def config_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``provisioning.backends.base.DirectoryConfig``."""
        return {
            "dialect": "openldap",
            "url": self.url,
            "bind_dn": self.bind_dn,
            "bind_password": self.bind_password,
            "user_base": self.people_base,
            "group_base": self.group_base,
            "tls": "none",
        }

    # --- installation ----------------------------------------------------------------

    @staticmethod
    def ensure_packages() -> None:
        """Install Debian's slapd and ldap-utils where missing (root, or password-less sudo)."""
        if _tool("slapd") and _tool("ldapsearch") and (SCHEMA_DIR / "core.schema").is_file():
            return
        # One installer at a time: pytest-xdist workers all arrive here at once.
        lock_path = Path(tempfile.gettempdir()) / "itportal-slapd-install.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _tool("slapd") and _tool("ldapsearch"):
                return
            sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
            if sudo and not _tool("sudo"):
                raise SlapdError(f"install as root: apt-get install {' '.join(PACKAGES)}")
            # RUNLEVEL=1: sysvinit hosts do not start the system slapd, which we never use.
            env = ["env", "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1"]
            apt = [*sudo, *env, "apt-get"]
            for argv in (
                [*apt, "update", "-qq"],
                [*apt, "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
            ):
                result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
                if result.returncode != 0:
                    raise SlapdError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
            # Where the host allowed it, the package started a system slapd on port 389.
            # Ours never uses it; stop it so it does not linger (best effort).
            for stop in (["systemctl", "stop", "slapd"], ["service", "slapd", "stop"]):
                if _tool(stop[0]):
                    subprocess.run(  # noqa: S603
                        [*sudo, *stop], capture_output=True, check=False, timeout=30
                    )
                    break

    # --- configuration ---------------------------------------------------------------

    def prepare(self) -> None:
        """Create ``root`` with passwords and data directory; (re)write ``slapd.conf``."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # passwords and data: ours only
        self.data_dir.mkdir(exist_ok=True)
        for path in (self.admin_password_file, self.bind_password_file):
            if not path.exists():
                _write_secret(path, secrets.token_urlsafe(24))
        text = self.render_config()
        tmp = self.conf_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)  # holds the root password hash
        tmp.replace(self.conf_path)

    def render_config(self) -> str:
        s, svc = self.suffix, self.bind_dn
        people, groups = self.people_base, self.group_base
        schemas = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
        schemas += f"\ninclude {PORTAL_SCHEMA}"
        # Access rules: first match wins, per entry and attribute.
        # fmt: off
        return f"""\
# Written by devtools/devdirectory.py at every start; edits are lost.
{schemas}

modulepath {MODULE_DIR}
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload ppolicy
moduleload lastbind

pidfile {self.pid_file}
argsfile {self.root / "slapd.args"}
loglevel none
sizelimit 500

database mdb
suffix "{s}"
rootdn "{self.admin_dn}"
rootpw {ssha(self.admin_password)}
directory {self.data_dir}
maxsize {MAX_DB_SIZE}
{"dbnosync" if self.dbnosync else "# dbnosync: only for throwaway test servers"}

index objectClass eq
index uid,cn,mail,member,memberOf,owner,manager,employeeNumber,departmentNumber eq

# The service account reads whole subtrees (sync of thousands of people).
limits dn.exact="{svc}" size=unlimited time=unlimited

# People get memberOf for every groupOfNames that lists them.
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

# Deleting or renaming a person fixes member/manager/owner values pointing at them;
# a group losing its last member keeps the admin DN (groupOfNames needs one member).
overlay refint
refint_attributes member manager owner
refint_nothing "{self.admin_dn}"

# pwdAccountLockedTime 000001010000Z disables an account (the OpenLDAP dialect's switch).
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{s}"

# Every successful bind stamps authTimestamp (at most once a minute per person): the sync
# reads it as the last sign-in, a sign of unused accounts and access (BSI APP.2.2).
overlay lastbind
lastbind-precision 60

# Passwords below ou=people: the service may set them but never read them.
access to dn.children="{people}" attrs=userPassword
    by dn.exact="{svc}" =w
    by self =w
    by anonymous auth
    by * none
access to attrs=userPassword
    by anonymous auth
    by * none
# Entries below ou=people and ou=groups (any depth, e.g. ou=fileshares) are the service's
# to add, change and delete; the two ous themselves and everything else it only reads.
access to dn.base="{people}" attrs=children
    by dn.exact="{svc}" write
    by users read
    by * none
access to dn.children="{people}"
    by dn.exact="{svc}" write
    by users read
    by * none
access to dn.base="{groups}" attrs=children
    by dn.exact="{svc}" write
    by users read
    by * none
access to dn.children="{groups}"
    by dn.exact="{svc}" write
    by users read
    by * none
access to *
    by users read
    by * none
"""
        # fmt: on

    def base_entries(self) -> list[tuple[str, list[str], dict[str, object]]]:
        """(dn, objectClasses, attributes) of the tree every server starts with."""
        attr, _, value = self.suffix.split(",")[0].partition("=")
        attr = attr.strip().lower()
        if attr == "dc":
            top = (["top", "dcObject", "organization"], {"dc": value, "o": value})
        elif attr == "o":
            top = (["top", "organization"], {"o": value})
        else:
            top = (["top", "organizationalUnit"], {"ou": value})
        entries = [
            (self.suffix, *top),
            (
                self.admin_dn,
                ["top", "organizationalRole"],
                {"cn": "admin", "description": "Directory administrator (rootdn)"},
            ),
        ]
        entries += [
            (self.ou_dn(name), ["top", "organizationalUnit"], {"ou": name}) for name in BASE_OUS
        ]
        entries += [
            (
                self.bind_dn,
                ["top", "applicationProcess", "simpleSecurityObject"],
                {
                    "cn": SERVICE_CN,
                    "description": "IT portal service account",
                    "userPassword": ssha(self.bind_password),
                },
            ),
            (
                f"cn=default,{self.ou_dn('policies')}",
                ["top", "organizationalRole", "pwdPolicy"],
                # pwdLockout: honour pwdAccountLockedTime. No pwdMaxFailure: wrong
                # passwords in tests must never lock anyone out.
                {"cn": "default", "pwdAttribute": "userPassword", "pwdLockout": "TRUE"},
            ),
        ]
        return entries

    # --- running -------------------------------------------------------------------------

    def _daemon_pid(self) -> int | None:
        """PID of a slapd started (possibly by another process) on this root's config."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        if str(self.conf_path).encode() not in cmdline or not _pid_alive(pid):
            return None
        return pid

    @property
    def pid(self) -> int | None:
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        return self._daemon_pid()

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self, *, daemon: bool = False) -> PrivateSlapd:
        """Start slapd and wait until a bind works; a no-op when it already runs.

        ``daemon=True`` detaches it from this process (it outlives it); otherwise it
        is our child and dies with us.
        """
        if self._process is not None and self._process.poll() is None:
            return self
        if self._daemon_pid() is not None:
            self._load_state()
            return self
        started = time.monotonic()
        slapd = _tool("slapd")
        if slapd is None:
            self.ensure_packages()
            slapd = _require_tool("slapd")
        self.prepare()
        self.timings["prepare"] = time.monotonic() - started
        fixed_port = self.port is not None
        for attempt in range(START_ATTEMPTS):
            if not fixed_port:
                self.port = _free_port()
            self._spawn(slapd, daemon)
            try:
                self._wait_for_bind()
                break
            except SlapdError:
                port_taken = "Address already in use" in self._log_tail()
                self.stop()
                if fixed_port or not port_taken or attempt == START_ATTEMPTS - 1:
                    raise
        self.timings["bind"] = time.monotonic() - started
        try:
            self._ensure_base_tree()
        except BaseException:
            self.stop()
            raise
        self._save_state()
        self.timings["ready"] = time.monotonic() - started
        return self

    def _spawn(self, slapd: str, daemon: bool) -> None:
        self.pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self._log.tell()
        # -d: stay in the foreground, so the PID we hold is slapd's own. "none" rather
        # than 0: errors such as "bind failed (Address already in use)" reach the log.
        argv = [slapd, "-h", f"{self.url}/", "-f", str(self.conf_path), "-d", "none"]
        self._process = subprocess.Popen(  # noqa: S603
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest must not hit it mid-test
            preexec_fn=None if daemon else _die_with_parent(),
            close_fds=True,
        )
        if daemon:
            # slapd writes its pid file only once ready; ours is there for stop() at once.
            self.pid_file.write_text(f"{self._process.pid}\n")

    def _try_bind(self) -> bool:
        import ldap3

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
            conn = ldap3.Connection(
                ldap3.Server(f"127.0.0.1:{self.port}", get_info=ldap3.NONE, connect_timeout=2),
                user=self.admin_dn,
                password=self.admin_password,
                receive_timeout=5,
            )
            ok = conn.bind()
            conn.unbind()
            return ok
        except (OSError, ldap3.core.exceptions.LDAPException):
            return False

    def _wait_for_bind(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        delay = 0.002
        while True:
            if self._process.poll() is not None:
                raise SlapdError(f"slapd exited ({self._process.returncode}){self._log_hint()}")
            if self._try_bind():
                return
            if time.monotonic() > deadline:
                raise SlapdError(f"no bind after {self.start_timeout:.0f} s{self._log_hint()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError), open(self.log_file, "rb") as log:
            log.seek(getattr(self, "_log_offset", 0))
            return log.read()[-3000:].decode(errors="replace")
        return ""

    def _log_hint(self) -> str:
        tail = self._log_tail().strip()
        return f"; {self.log_file}:\n{tail}" if tail else f"; log: {self.log_file}"

    def _ensure_base_tree(self) -> None:
        """Add the base entries on first start (and any that went missing)."""
        conn = self.connection()
        try:
            for dn, object_classes, attributes in self.base_entries():
                added = conn.add(dn, object_classes, attributes)
                if not added and conn.result["result"] != 68:  # 68: exists from an earlier run
                    raise SlapdError(f"cannot add {dn}: {conn.result['description']}")
        finally:
            conn.unbind()

    def _save_state(self) -> None:
        self.state_file.write_text(json.dumps({"port": self.port, "suffix": self.suffix}) + "\n")

    def _load_state(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(self.state_file.read_text())
            self.port, self.suffix = state["port"], state["suffix"]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (slapd stops in milliseconds), SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        else:
            pid = self._daemon_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while _pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> PrivateSlapd:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- using it ------------------------------------------------------------------------

    def connection(self, user: str | None = None, password: str | None = None, **kwargs):
        """A bound ``ldap3.Connection``; the rootdn unless ``user`` is given."""
        import ldap3

        if user is None:
            user, password = self.admin_dn, self.admin_password
        kwargs.setdefault("receive_timeout", 30)
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        conn = ldap3.Connection(server, user=user, password=password, **kwargs)
        if not conn.bind():
            result = conn.result
            conn.unbind()
            raise SlapdError(f"bind as {user} failed: {result['description']}")
        return conn

    def _tool_argv(self, tool: str, bind: str | None) -> list[str]:
        argv = [_require_tool(tool), "-x", "-H", self.url]
        if bind == "admin":
            argv += ["-D", self.admin_dn, "-y", str(self.admin_password_file)]
        elif bind == "service":
            argv += ["-D", self.bind_dn, "-y", str(self.bind_password_file)]
        elif bind is not None:
            raise ValueError("bind must be 'admin', 'service' or None (anonymous)")
        return argv

    @staticmethod
    def _tool_env() -> dict[str, str]:
        # LDAPNOINIT: ignore /etc/ldap/ldap.conf and ~/.ldaprc, which may point elsewhere.
        return {**os.environ, "LDAPNOINIT": "1"}

    def load_ldif(self, text: str, *, skip_existing: bool = False) -> None:
        """Add (or apply, with ``changetype``) the LDIF records online, as the rootdn.

        ``skip_existing`` leaves entries that are already there as they are, so
        loading the same LDIF twice succeeds.
        """
        argv = [*self._tool_argv("ldapmodify", "admin"), "-a"]
        if skip_existing:
            argv.append("-c")
        result = subprocess.run(  # noqa: S603
            argv,
            input=text.encode(),
            capture_output=True,
            env=self._tool_env(),
            check=False,
            timeout=600,
        )
        if result.returncode == 0:
            return
        errors = result.stderr.decode(errors="replace")
        # With -c, ldapmodify reports each failure as "ldap_add: Already exists (68)".
        codes = {
            line.rsplit("(", 1)[-1].rstrip(")")
            for line in errors.splitlines()
            if line.startswith("ldap_") and line.endswith(")")
        }
        if skip_existing and codes == {"68"}:  # every failure was "Already exists"
            return
        raise SlapdError(f"ldapmodify failed ({result.returncode}):\n{errors[-3000:]}")

    def ldapsearch(self, *args: str, bind: str | None = "admin", check: bool = True) -> str:
        """Run the real ``ldapsearch`` binary against this server; its LDIF output.

        Arguments go to ldapsearch after ``-x -LLL -o ldif-wrap=no -H URL -D DN -y FILE``;
        ``-b`` defaults to the suffix. ``bind``: "admin", "service" or None (anonymous).
        """
        argv = [*self._tool_argv("ldapsearch", bind), "-LLL", "-o", "ldif-wrap=no"]
        if "-b" not in args:
            argv += ["-b", self.suffix]
        result = subprocess.run(  # noqa: S603
            [*argv, *args],
            capture_output=True,
            env=self._tool_env(),
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise SlapdError(
                f"ldapsearch {' '.join(args)} failed ({result.returncode}): "
                + result.stderr.decode(errors="replace")[-2000:]
            )
        return result.stdout.decode(errors="replace")

    def reset(self) -> None:
        """Empty ou=people, ou=groups and ou=departments (the ous are recreated)."""
        import ldap3

        conn = self.connection()
        try:
            for name in RESETTABLE_OUS:
                base = self.ou_dn(name)
                conn.search(base, "(objectClass=*)", ldap3.SUBTREE, attributes=["1.1"])
                dns = [e["dn"] for e in conn.response if e.get("type") == "searchResEntry"]
                if dns == [base]:
                    continue  # already empty: nothing to redo
                # Leaves first: slapd refuses to delete an entry that has children.
                for dn in sorted(dns, key=lambda d: d.count(","), reverse=True):
                    if not conn.delete(dn) and conn.result["result"] != 32:
                        raise SlapdError(f"cannot delete {dn}: {conn.result['description']}")
                conn.add(base, ["top", "organizationalUnit"], {"ou": name})
                if conn.result["result"] not in (0, 68):
                    raise SlapdError(f"cannot add {base}: {conn.result['description']}")
        finally:
            conn.unbind()
