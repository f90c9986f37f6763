"""OpenLDAP dialect: inetOrgPerson accounts, groupOfNames groups with ``member``.

Disabling uses the password-policy attribute ``pwdAccountLockedTime`` with the
value that locks an account until an administrator unlocks it.
"""

from provisioning.backends.base import DirectoryBackend, rdn_value

LOCKED_FOREVER = "000001010000Z"


class OpenLDAPBackend(DirectoryBackend):
    dialect = "openldap"
    uid_attribute = "uid"
    user_object_classes = ("top", "person", "organizationalPerson", "inetOrgPerson")

    def user_dn_for(self, uid: str) -> str:
        return f"uid={rdn_value(uid)},{self.config.user_base}"

    def create_user(self, uid, attributes, password=None, *, before_write=None) -> bool:
        if self.find_user(uid) is not None:
            return False
        values = {k: v for k, v in attributes.items() if v not in (None, "")}
        values.setdefault("cn", uid)
        values.setdefault("sn", uid)
        values["uid"] = uid
        if password:
            values["userPassword"] = password
        if before_write is not None:
            before_write()
        return self.add_user_entry(uid, self.user_dn_for(uid), values)

    def is_enabled(self, user_dn: str) -> bool:
        found = self.search(user_dn, "(objectClass=*)", ["pwdAccountLockedTime"], scope="BASE")
        return not (found and found[0][1].get("pwdAccountLockedTime"))

    def set_enabled(self, user_dn: str, enabled: bool, *, before_write=None) -> bool:
        if self.is_enabled(user_dn) == enabled:
            return False
        return self.set_attributes(
            user_dn,
            {"pwdAccountLockedTime": "" if enabled else LOCKED_FOREVER},
            before_write=before_write,
        )
