"""Windows-only Active Directory behaviour that Samba does not reproduce: focused unit tests."""

import pytest

from provisioning.backends.active_directory import ActiveDirectoryBackend, encode_password
from provisioning.backends.base import DirectoryConfig
from provisioning.backends.errors import PermanentDirectoryError


class RangedAD(ActiveDirectoryBackend):
    """Answers member reads like Windows: at most 1,500 values, then a range to continue."""

    CAP = 1500

    def __init__(self, members):
        super().__init__(DirectoryConfig(dialect="ad", url="ldaps://dc.example", tls="ldaps"))
        self.members = members
        self.reads = []

    def search(self, base, search_filter, attributes=(), scope="SUBTREE"):
        (attribute,) = attributes
        start = int(attribute.split("=")[1].split("-")[0])
        self.reads.append(start)
        chunk = self.members[start : start + self.CAP]
        last = start + len(chunk) - 1
        end = "*" if start + self.CAP >= len(self.members) else str(last)
        return [(base, {f"member;range={start}-{end}": chunk})]


def test_group_members_reads_past_the_1500_value_cap():
    members = [f"CN=user{i},OU=people,DC=ad,DC=example" for i in range(4000)]
    backend = RangedAD(members)
    assert backend.group_members("CN=big,DC=ad,DC=example") == {m.lower() for m in members}
    assert backend.reads == [0, 1500, 3000]


def test_missing_group_is_permanent():
    class Empty(RangedAD):
        def search(self, *args, **kwargs):
            return []

    with pytest.raises(PermanentDirectoryError):
        Empty([]).group_members("CN=gone,DC=ad,DC=example")


def test_password_needs_an_encrypted_connection_before_anything_is_sent():
    backend = ActiveDirectoryBackend(
        DirectoryConfig(dialect="ad", url="ldap://dc.example", tls="none")
    )
    assert not backend.encrypted
    with pytest.raises(PermanentDirectoryError, match="LDAPS or StartTLS"):
        backend.set_password("CN=x,DC=ad,DC=example", "Geheim-123!")


def test_password_is_quoted_utf16le():
    assert encode_password("Geheim") == '"Geheim"'.encode("utf-16-le")


def test_config_repr_hides_the_password():
    config = DirectoryConfig(bind_password="s3cret-Pass")
    assert "s3cret-Pass" not in repr(config)
