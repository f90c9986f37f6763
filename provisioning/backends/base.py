"""The directory interface the provisioning jobs use, on top of ldap3.

Every method reads first and writes only the difference, so running an action
twice leaves the directory as running it once. Every value placed in a filter
or DN is escaped here, not by callers.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from provisioning.backends.errors import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    NO_SUCH_ATTRIBUTE,
    DirectoryError,
    PermanentDirectoryError,
    classify,
    connection_lost,
    result_error,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectoryConfig:
    """Where the directory is and how to talk to it (from the DIRECTORY_* settings)."""

    dialect: str = "openldap"
    url: str = "ldap://127.0.0.1:3890"
    bind_dn: str = ""
    bind_password: str = ""
    user_base: str = ""
    group_base: str = ""
    tls: str = "none"  # none | starttls | ldaps
    ca_file: str = ""
    timeout: int = 10

    def __repr__(self) -> str:  # never show the password, not even in tracebacks
        return (
            f"DirectoryConfig(dialect={self.dialect!r}, url={self.url!r}, bind_dn={self.bind_dn!r})"
        )


@dataclass
class DirectoryUser:
    dn: str
    uid: str
    attributes: dict


def _announce(before_write) -> None:
    if before_write is not None:
        before_write()


def filter_value(value: str) -> str:
    return escape_filter_chars(str(value))


def rdn_value(value: str) -> str:
    # ldap3's escape_rdn leaves NUL raw; a DN needs it as \00.
    escaped = escape_rdn(str(value))
    return escaped.replace("\\\x00", "\\00").replace("\x00", "\\00")


class DirectoryBackend(ABC):
    """One directory dialect. Thread-safe: operations share one connection under a lock."""

    dialect = ""
    uid_attribute = "uid"
    user_object_classes: tuple[str, ...] = ()

    def __init__(self, config: DirectoryConfig):
        self.config = config
        self._connection: ldap3.Connection | None = None
        self._lock = threading.RLock()

    # --- connection -------------------------------------------------------------

    def server(self) -> ldap3.Server:
        tls = None
        if self.config.tls in ("starttls", "ldaps"):
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=self.config.ca_file or None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return ldap3.Server(
            self.config.url,
            use_ssl=self.config.tls == "ldaps",
            tls=tls,
            connect_timeout=self.config.timeout,
            get_info=ldap3.NONE,
        )

    def _connect(self) -> ldap3.Connection:
        connection = ldap3.Connection(
            self.server(),
            user=self.config.bind_dn or None,
            password=self.config.bind_password or None,
            receive_timeout=self.config.timeout,
            raise_exceptions=True,
            auto_referrals=False,
            read_only=False,
        )
        connection.open()
        if self.config.tls == "starttls":
            connection.start_tls()
        connection.bind()
        return connection

    def connection(self) -> ldap3.Connection:
        """The shared connection, opened on first use and again after a failure."""
        if self._connection is None or self._connection.closed:
            self._connection = self._connect()
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(Exception):  # closing a broken connection
                    self._connection.unbind()
                self._connection = None

    def run(self, operation, *args, **kwargs):
        """Run ``operation(connection, ...)``; map errors; drop the connection on failure.

        A connection kept from an earlier call may have died since (slapd restarted, an
        idle connection cut by AD or a firewall); that shows only when it is used. Then
        one fresh connection is tried at once, so the first call after an outage does not
        fail a user's order. Operations are safe to send twice: reads are, and the writes
        are either idempotent or their "already so" answers are checked by the callers.
        """
        with self._lock:
            reused = self._connection is not None and not self._connection.closed
            try:
                return operation(self.connection(), *args, **kwargs)
            except Exception as exc:
                if not (reused and connection_lost(exc)):
                    raise self._failed(exc) from exc
                logger.info("directory connection lost (%s); reconnecting", type(exc).__name__)
                self.close()
            try:
                return operation(self.connection(), *args, **kwargs)
            except Exception as exc:
                raise self._failed(exc) from exc

    def _failed(self, exc: Exception) -> DirectoryError:
        error = classify(exc)
        if error.transient:
            self.close()
        return error

    # --- reads --------------------------------------------------------------------

    def search(self, base: str, search_filter: str, attributes=(), scope=ldap3.SUBTREE):
        def _search(conn):
            conn.search(base, search_filter, search_scope=scope, attributes=list(attributes))
            # ldap3 does not raise for "time limit exceeded" but returns what it got so far;
            # a partial answer would pass for "not a member" or "no such group".
            error = result_error(conn.result)
            if error is not None and error.transient:
                raise error
            return [(entry.entry_dn, entry.entry_attributes_as_dict) for entry in conn.entries]

        return self.run(_search)

    def find_user(self, uid: str, attributes=()) -> DirectoryUser | None:
        found = self.search(
            self.config.user_base,
            f"(&(objectClass={self.user_object_classes[-1]})({self.uid_attribute}={filter_value(uid)}))",
            attributes=attributes,
        )
        if not found:
            return None
        dn, attrs = found[0]
        return DirectoryUser(dn=dn, uid=uid, attributes=attrs)

    def require_user(self, uid: str, attributes=()) -> DirectoryUser:
        user = self.find_user(uid, attributes)
        if user is None:
            raise PermanentDirectoryError(f"No such user in the directory: {uid}", code=32)
        return user

    def group_members(self, group_dn: str) -> set[str]:
        found = self.search(group_dn, "(objectClass=*)", attributes=["member"], scope=ldap3.BASE)
        if not found:
            raise PermanentDirectoryError(f"No such group: {group_dn}", code=32)
        return {m.lower() for m in found[0][1].get("member", [])}

    def is_member(self, group_dn: str, user_dn: str) -> bool:
        """Asks the server about this one member: no read of a large group's member list."""
        found = self.search(
            group_dn,
            f"(member={filter_value(user_dn)})",
            attributes=["1.1"],
            scope=ldap3.BASE,
        )
        if found:
            return True
        if not self.search(group_dn, "(objectClass=*)", attributes=["1.1"], scope=ldap3.BASE):
            raise PermanentDirectoryError(f"No such group: {group_dn}", code=32)
        return False

    # --- reads for many jobs at once (provisioning.batch) --------------------------------

    FILTER_CHUNK = 100  # values per filter: keeps a filter far below any server's limit

    def find_user_dns(self, uids) -> dict[str, str]:
        """The DNs of the accounts ``uids`` that exist, keyed by lower-cased uid: one search
        per hundred accounts instead of one each."""
        uids = sorted({str(uid) for uid in uids})
        found: dict[str, str] = {}
        for start in range(0, len(uids), self.FILTER_CHUNK):
            chunk = uids[start : start + self.FILTER_CHUNK]
            wanted = "".join(f"({self.uid_attribute}={filter_value(uid)})" for uid in chunk)
            entries = self.search(
                self.config.user_base,
                f"(&(objectClass={self.user_object_classes[-1]})(|{wanted}))",
                attributes=[self.uid_attribute],
            )
            for dn, attrs in entries:
                values = attrs.get(self.uid_attribute) or []
                for value in values if isinstance(values, list) else [values]:
                    found.setdefault(str(value).lower(), dn)
        return found

    def _base_match(self, group_dn: str, search_filter: str) -> bool:
        return bool(self.search(group_dn, search_filter, attributes=["1.1"], scope=ldap3.BASE))

    def members_present(self, group_dn: str, member_dns) -> set[str]:
        """Which of ``member_dns`` are members of the group (lower-cased), asking the server
        about these members only: "is any of them a member" per hundred, halved where the
        answer is yes. New members (the usual add) cost one search per hundred."""
        return self._bisect_members(group_dn, member_dns, present=True)

    def members_absent(self, group_dn: str, member_dns) -> set[str]:
        """Which of ``member_dns`` are not members (lower-cased): "are all of them members"
        per hundred, halved where the answer is no. Members to remove, usually all there,
        cost one search per hundred."""
        return self._bisect_members(group_dn, member_dns, present=False)

    def _bisect_members(self, group_dn: str, member_dns, *, present: bool) -> set[str]:
        """The DNs (lower-cased) that are members (``present``) or are not: one base-scope
        check per hundred, "any of them" (|) or "all of them" (&), halved where it says so."""
        operator = "|" if present else "&"
        found: set[str] = set()

        def walk(dns: list[str]) -> None:
            wanted = "".join(f"(member={filter_value(dn)})" for dn in dns)
            if self._base_match(group_dn, f"({operator}{wanted})") is not present:
                return  # none of them present / all of them present: nothing to find here
            if len(dns) == 1:
                found.add(dns[0].lower())
                return
            walk(dns[: len(dns) // 2])
            walk(dns[len(dns) // 2 :])

        dns = sorted({str(dn) for dn in member_dns})
        for start in range(0, len(dns), self.FILTER_CHUNK):
            walk(dns[start : start + self.FILTER_CHUNK])
        return found

    group_object_filter = "(objectClass=groupOfNames)"
    group_owner_attribute = "owner"

    def list_groups(self, base: str) -> list[dict]:
        """Groups below ``base``: dn, name, description and owner DN, sorted by name."""
        found = self.search(
            base,
            self.group_object_filter,
            attributes=["cn", "description", self.group_owner_attribute],
        )
        groups = []
        for dn, attrs in found:
            owner = attrs.get(self.group_owner_attribute) or [""]
            groups.append(
                {
                    "dn": dn,
                    "name": str((attrs.get("cn") or [dn])[0]),
                    "description": str((attrs.get("description") or [""])[0]),
                    "owner": str(owner[0] if isinstance(owner, list) else owner),
                }
            )
        return sorted(groups, key=lambda g: g["name"].lower())

    def group_owner_uid(self, group_dn: str) -> str | None:
        """The uid of the person in the group's owner attribute, if any."""
        found = self.search(
            group_dn, "(objectClass=*)", [self.group_owner_attribute], scope=ldap3.BASE
        )
        if not found:
            raise PermanentDirectoryError(f"No such group: {group_dn}", code=32)
        owners = found[0][1].get(self.group_owner_attribute) or []
        if not owners:
            return None
        owner_dn = str(owners[0] if isinstance(owners, list) else owners)
        entry = self.search(owner_dn, "(objectClass=*)", [self.uid_attribute], scope=ldap3.BASE)
        if not entry:
            return None
        uid = entry[0][1].get(self.uid_attribute) or [None]
        return str(uid[0]) if uid[0] else None

    # --- writes (idempotent) --------------------------------------------------------

    # Answers to a membership write that mean "already as wanted" in this dialect. They
    # come from a concurrent job, or from our own write resent after a lost connection
    # (see ``run``); a read-back decides, so a real refusal is never swallowed.
    member_exists_codes = frozenset({ATTRIBUTE_OR_VALUE_EXISTS})
    member_missing_codes = frozenset({NO_SUCH_ATTRIBUTE})

    def add_member(self, group_dn: str, user_dn: str, *, before_write=None) -> bool:
        """Add unless present; True if this call added. ``before_write()`` runs just
        before the write is sent (the job log records the intended change there)."""
        if self.is_member(group_dn, user_dn):
            return False
        _announce(before_write)
        try:
            self.run(lambda c: c.modify(group_dn, {"member": [(ldap3.MODIFY_ADD, [user_dn])]}))
        except DirectoryError as exc:
            if exc.code in self.member_exists_codes and self.is_member(group_dn, user_dn):
                return False
            raise
        return True

    def remove_member(self, group_dn: str, user_dn: str, *, before_write=None) -> bool:
        """Remove if present; True if this call removed."""
        if not self.is_member(group_dn, user_dn):
            return False
        _announce(before_write)
        try:
            self.run(lambda c: c.modify(group_dn, {"member": [(ldap3.MODIFY_DELETE, [user_dn])]}))
        except DirectoryError as exc:
            if exc.code in self.member_missing_codes and not self.is_member(group_dn, user_dn):
                return False
            raise
        return True

    def modify_members(self, group_dn: str, *, add=(), delete=()) -> None:
        """One modify adding and removing many members; the caller has read that every
        added member is absent and every removed one present. Not idempotent by itself: an
        "already so" answer fails the whole modify, and the caller falls back to the
        one-member methods above."""
        changes = []
        if add:
            changes.append((ldap3.MODIFY_ADD, list(add)))
        if delete:
            changes.append((ldap3.MODIFY_DELETE, list(delete)))
        if changes:
            self.run(lambda c: c.modify(group_dn, {"member": changes}))

    def set_attributes(self, dn: str, attributes: dict[str, str], *, before_write=None) -> bool:
        """Replace the given attributes where they differ; empty values delete."""
        if not attributes:
            return False
        found = self.search(dn, "(objectClass=*)", attributes=list(attributes), scope=ldap3.BASE)
        if not found:
            raise PermanentDirectoryError(f"No such entry: {dn}", code=32)
        current = found[0][1]
        changes = {}
        for name, value in attributes.items():
            have = [str(v) for v in current.get(name, [])]
            want = [] if value in (None, "") else [str(value)]
            if have != want:
                changes[name] = [(ldap3.MODIFY_REPLACE, want)]
        if changes:
            _announce(before_write)
            self.run(lambda c: c.modify(dn, changes))
        return bool(changes)

    def add_user_entry(self, uid: str, dn: str, values: dict) -> bool:
        """Add the account's entry; False if it turns out to be there already (our own
        add resent after a lost connection, or a concurrent job)."""
        try:
            self.run(lambda c: c.add(dn, list(self.user_object_classes), values))
        except DirectoryError as exc:
            if exc.code == ENTRY_ALREADY_EXISTS and self.find_user(uid) is not None:
                return False
            raise
        return True

    @abstractmethod
    def create_user(
        self, uid: str, attributes: dict[str, str], password: str | None, *, before_write=None
    ) -> bool:
        """Create the account unless it exists; True if created."""

    @abstractmethod
    def is_enabled(self, user_dn: str) -> bool: ...

    @abstractmethod
    def set_enabled(self, user_dn: str, enabled: bool, *, before_write=None) -> bool:
        """Enable or disable the account; True if that changed anything."""

    def check(self) -> None:
        """Bind and read the base: raises a DirectoryError if the directory is not usable."""
        self.search(self.config.user_base, "(objectClass=*)", scope=ldap3.BASE)
