"""Fixtures for tests against a throwaway Samba AD DC (see devtools/devsamba.py).

One DC per test process: under pytest-xdist every worker starts its own from the
shared template, each in its own network namespace, so nothing collides. Tests
still get their own OU (``ad_ou``) so they never see each other's entries.
"""

import shutil
import tempfile
import uuid

import pytest

from devtools.devsamba import PrivateSambaDC, delete_subtree


@pytest.fixture(scope="session")
def samba_dc():
    """A running ``PrivateSambaDC`` (realm AD.MUSTERSTADT.EXAMPLE), stopped after the run."""
    # mkdtemp rather than tmp_path: a short path keeps the ldapi socket under 108 bytes.
    root = tempfile.mkdtemp(prefix="itportal-samba-")
    dc = PrivateSambaDC(root)
    try:
        dc.start()
        yield dc
    finally:
        dc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ad_ou(samba_dc):
    """DN of a fresh organizationalUnit below the base DN, deleted with its content after."""
    dn = f"OU=test-{uuid.uuid4().hex[:12]},{samba_dc.base_dn}"
    conn = samba_dc.connection()
    try:
        if not conn.add(dn, ["top", "organizationalUnit"]):
            raise RuntimeError(f"cannot create {dn}: {conn.result}")
    finally:
        conn.unbind()
    yield dn
    conn = samba_dc.connection()
    try:
        delete_subtree(conn, dn)
    finally:
        conn.unbind()
