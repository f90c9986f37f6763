"""Active Directory dialect: user objects, ``userAccountControl``, ``unicodePwd``, ``member``.

Passwords can only be written over an encrypted connection (LDAPS or StartTLS);
AD refuses them otherwise, and so do we before sending anything.
"""

import re

import ldap3

from provisioning.backends.base import DirectoryBackend, rdn_value
from provisioning.backends.errors import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    NO_SUCH_ATTRIBUTE,
    UNWILLING_TO_PERFORM,
    PermanentDirectoryError,
)

ACCOUNTDISABLE = 0x0002
NORMAL_ACCOUNT = 0x0200


RANGE_RE = re.compile(r"^member;range=(\d+)-(\d+|\*)$", re.IGNORECASE)


def encode_password(password: str) -> bytes:
    """AD wants the password in double quotes, UTF-16-LE encoded."""
    return f'"{password}"'.encode("utf-16-le")


class ActiveDirectoryBackend(DirectoryBackend):
    dialect = "ad"
    uid_attribute = "sAMAccountName"
    user_object_classes = ("top", "person", "organizationalPerson", "user")
    group_object_filter = "(objectClass=group)"
    group_owner_attribute = "managedBy"
    # AD answers a duplicate member with entryAlreadyExists and a missing one with
    # unwillingToPerform (WILL_NOT_PERFORM); both are confirmed by reading back.
    member_exists_codes = frozenset({ATTRIBUTE_OR_VALUE_EXISTS, ENTRY_ALREADY_EXISTS})
    member_missing_codes = frozenset({NO_SUCH_ATTRIBUTE, UNWILLING_TO_PERFORM})

    def group_members(self, group_dn: str) -> set[str]:
        """All members, also past Windows' cap of 1,500 values per read (ranged retrieval)."""
        result: set[str] = set()
        start = 0
        while True:
            found = self.search(
                group_dn,
                "(objectClass=*)",
                attributes=[f"member;range={start}-*"],
                scope=ldap3.BASE,
            )
            if not found:
                raise PermanentDirectoryError(f"No such group: {group_dn}", code=32)
            attrs = found[0][1]
            # ldap3 may file the values under "member", under "member;range=a-b", or both.
            end = "*"
            values = list(attrs.get("member") or [])
            for name, vals in attrs.items():
                match = RANGE_RE.match(name)
                if match:
                    end = match.group(2)
                    values.extend(vals or [])
            result.update(str(v).lower() for v in values)
            if end == "*" or not values:
                return result
            start = int(end) + 1

    @property
    def encrypted(self) -> bool:
        return self.config.tls in ("ldaps", "starttls") or self.config.url.startswith("ldapi")

    def user_dn_for(self, uid: str, attributes: dict) -> str:
        cn = attributes.get("cn") or uid
        return f"CN={rdn_value(cn)},{self.config.user_base}"

    def create_user(self, uid, attributes, password=None, *, before_write=None) -> bool:
        if self.find_user(uid) is not None:
            return False
        if password and not self.encrypted:
            raise PermanentDirectoryError(
                "Active Directory accepts passwords only over LDAPS or StartTLS."
            )
        values = {k: v for k, v in attributes.items() if v not in (None, "")}
        values["sAMAccountName"] = uid
        # Created disabled; enabled once the password is set (AD refuses the reverse).
        values["userAccountControl"] = str(NORMAL_ACCOUNT | ACCOUNTDISABLE)
        dn = self.user_dn_for(uid, values)
        if before_write is not None:
            before_write()
        if not self.add_user_entry(uid, dn, values):
            return False
        if password:
            self.set_password(dn, password)
            self.set_enabled(dn, True)
        return True

    def set_password(self, user_dn: str, password: str) -> None:
        if not self.encrypted:
            raise PermanentDirectoryError(
                "Active Directory accepts passwords only over LDAPS or StartTLS."
            )
        self.run(
            lambda c: c.modify(
                user_dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encode_password(password)])]}
            )
        )

    def _uac(self, user_dn: str) -> int:
        found = self.search(user_dn, "(objectClass=*)", ["userAccountControl"], scope=ldap3.BASE)
        if not found:
            raise PermanentDirectoryError(f"No such entry: {user_dn}", code=32)
        value = found[0][1].get("userAccountControl") or [NORMAL_ACCOUNT]
        return int(value[0])

    def is_enabled(self, user_dn: str) -> bool:
        return not self._uac(user_dn) & ACCOUNTDISABLE

    def set_enabled(self, user_dn: str, enabled: bool, *, before_write=None) -> bool:
        uac = self._uac(user_dn)
        wanted = uac & ~ACCOUNTDISABLE if enabled else uac | ACCOUNTDISABLE
        if wanted == uac:
            return False
        if before_write is not None:
            before_write()
        self.run(
            lambda c: c.modify(
                user_dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(wanted)])]}
            )
        )
        return True
